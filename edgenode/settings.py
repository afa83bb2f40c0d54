"""Settings, declared once as data.

Each side (hub, node) has a list of `Setting`s. The TOML file in the data folder
(``hub.toml`` / ``node.toml``), environment variables (``EDGENODE_<NAME>``) and command-line
flags are projections of that list, with precedence flag > environment > file > default. The
result is validated once into a frozen mapping; library code never reads the environment.
Secret settings never print (`render` masks them, and so does `repr`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgenode.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One setting: name, type, default, help text, and whether it is a secret."""

    name: str
    type: type
    default: Any
    help: str
    secret: bool = False
    minimum: float | None = None
    choices: tuple[str, ...] = ()


HUB_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "db",
        str,
        "",
        "hub store URL: empty for SQLite files under the data folder, or postgresql://USER:PASSWORD@HOST:PORT/DB",
        secret=True,
    ),
    Setting("db_pool_size", int, 10, "PostgreSQL connections each hub process keeps open at most", minimum=1),
    Setting("host", str, "127.0.0.1", "address `hub serve` listens on"),
    Setting("port", int, 8700, "port `hub serve` listens on", minimum=0),
    Setting("feed_max_bytes", int, 1 << 20, "upper bound of one feed batch before compression", minimum=4096),
    Setting("feed_max_wait", float, 30.0, "longest long-poll a node may ask for, seconds", minimum=0),
    Setting("snapshot_chunk_size", int, 256 * 1024, "bytes per snapshot chunk", minimum=4096),
    Setting("snapshot_max_age", float, 600.0, "reuse a cached snapshot for this many seconds", minimum=0),
    Setting("snapshot_keep", int, 2, "snapshots kept per tenant (older ones are deleted)", minimum=1),
    Setting(
        "snapshot_hold",
        float,
        21600.0,
        "keep a superseded snapshot this many seconds after its last chunk was read",
        minimum=0,
    ),
    Setting(
        "staff_cookie_secure",
        bool,
        False,
        "mark the staff pages' login cookies Secure (set true whenever staff reach the hub over HTTPS)",
    ),
    Setting(
        "fleet_silent_after", float, 300.0, "fleet view: a node without a heartbeat this long is silent", minimum=1
    ),
    Setting("fleet_behind_seconds", float, 900.0, "fleet view: a node whose lag reaches this is behind", minimum=0),
    Setting(
        "fleet_behind_changes", int, 1000, "fleet view: a node this many changes behind the head is behind", minimum=1
    ),
)

NODE_SETTINGS: tuple[Setting, ...] = (
    Setting("hub_url", str, "", "base URL of the hub, e.g. http://hub.example.lg.jp:8700"),
    Setting("token", str, "", "this node's bearer token from `edgenode hub token`", secret=True),
    Setting("node_id", str, "", "this node's id (also its terminal name on certificates)"),
    Setting("lg_code", str, "", "municipality code the token is bound to (learnt at init)"),
    Setting("hub_public_key", str, "", "the hub's Ed25519 public key, pinned at init (base64)"),
    Setting("host", str, "127.0.0.1", "address `node serve` listens on"),
    Setting("port", int, 8800, "port `node serve` listens on", minimum=0),
    Setting("bandwidth_limit", int, 0, "cap on bytes/s received from the hub; 0 means no cap", minimum=0),
    Setting("feed_wait", float, 20.0, "long-poll wait asked of the hub, seconds", minimum=0),
    Setting("feed_max_bytes", int, 1 << 20, "largest feed batch asked of the hub", minimum=4096),
    Setting("request_timeout", float, 30.0, "seconds without progress before a request fails", minimum=1),
    Setting("backoff_initial", float, 1.0, "first retry delay after an error, seconds", minimum=0),
    Setting("backoff_max", float, 60.0, "longest retry delay, seconds", minimum=0),
    Setting(
        "heartbeat_interval", float, 30.0, "seconds between heartbeats to the hub (at most 60 are used)", minimum=1
    ),
    Setting("lag_sample_interval", float, 60.0, "seconds between lag-history samples (admin charts)", minimum=1),
    Setting(
        "stale_alarm_after",
        float,
        900.0,
        "watchdog: alarm when the cursor has not moved for this many seconds while the hub head has",
        minimum=1,
    ),
    Setting("digest_buckets", int, 256, "buckets of the anti-entropy digest", minimum=1),
    Setting(
        "approval_lag_seconds",
        float,
        3600.0,
        "代理人・第三者の請求に監督者の承認が要るデータの遅れ (requests by proxies or third parties need a"
        " supervisor when the data may be older than this, seconds)",
        minimum=0,
    ),
    Setting(
        "cookie_secure",
        bool,
        True,
        "send the session cookie only over HTTPS (false only for a counter PC on the node itself over plain HTTP)",
    ),
    Setting("offline_after", float, 8.0, "seconds of hub silence before the counter switches to offline", minimum=1),
    Setting(
        "rebootstrap_fraction",
        float,
        0.25,
        "re-bootstrap instead of repair above this share of differing buckets",
        minimum=0,
    ),
    Setting("inbox_dir", str, "", "folder watched for snapshot files on physical media; empty means DATA/inbox"),
    Setting(
        "inbox_settle_seconds",
        float,
        2.0,
        "a file in the inbox is read only after its size has not changed for this long, seconds",
        minimum=0,
    ),
    Setting(
        "log_level",
        str,
        "info",
        "log detail of `node serve`: debug, info, warning or error",
        choices=("debug", "info", "warning", "error"),
    ),
    Setting(
        "backup_path",
        str,
        "",
        "folder of the continuous backup (Litestream file replica) on a second disk: a USB disk or NAS mount;"
        " empty (and no backup_s3_bucket) means backup is not configured",
    ),
    Setting(
        "backup_s3_bucket",
        str,
        "",
        "S3-compatible bucket at the datacenter to back up to instead of backup_path (Litestream 0.5 keeps one"
        " replica per database)",
    ),
    Setting("backup_s3_path", str, "edgenode", "key prefix inside backup_s3_bucket (one per node)"),
    Setting("backup_s3_endpoint", str, "", "URL of the S3-compatible service (empty: AWS)"),
    Setting("backup_s3_region", str, "", "region of backup_s3_bucket"),
    Setting("backup_s3_access_key_id", str, "", "access key id for backup_s3_bucket", secret=True),
    Setting("backup_s3_secret_access_key", str, "", "secret access key for backup_s3_bucket", secret=True),
    Setting("backup_sync_interval", float, 1.0, "seconds between Litestream's uploads of new changes", minimum=0.1),
    Setting(
        "backup_stall_after",
        float,
        60.0,
        "a change not in the backup after this many seconds (or a replicator that stops answering that long)"
        " makes the backup stalled",
        minimum=1,
    ),
    Setting(
        "backup_in_serve",
        bool,
        True,
        "`node serve` runs the backup replicator itself; false when the edgenode-backup systemd unit"
        " (`node backup`) runs it",
    ),
    Setting(
        "restore_serial_skip",
        int,
        1000,
        "a restored node resumes its 発行番号 this far above the highest one known (covers numbers issued after"
        " the backup point that the hub never received)",
        minimum=0,
    ),
)


class Settings(Mapping[str, Any]):
    """A frozen, validated mapping of setting name to value."""

    def __init__(self, schema: tuple[Setting, ...], values: dict[str, Any]) -> None:
        self._schema = {s.name: s for s in schema}
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Settings({self.render()!r})"

    def render(self) -> dict[str, Any]:
        """The values with every secret masked, safe to print or log."""
        return {k: ("********" if self._schema[k].secret and v else v) for k, v in self._values.items()}

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (validated like everything else)."""
        merged = {**self._values, **changes}
        return Settings(tuple(self._schema.values()), _validate(tuple(self._schema.values()), merged, "change"))


def _coerce(s: Setting, raw: Any, origin: str) -> Any:
    try:
        if s.type is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if s.type is int and isinstance(raw, float):
            raise ValueError(raw)
        value = s.type(raw)
    except (TypeError, ValueError) as exc:
        shown = "(hidden)" if s.secret else repr(raw)
        raise ConfigError(f"{origin}: setting {s.name} must be {s.type.__name__}, got {shown}") from exc
    if s.minimum is not None and value < s.minimum:
        raise ConfigError(f"{origin}: setting {s.name} must be at least {s.minimum}")
    if s.choices and value not in s.choices:
        raise ConfigError(f"{origin}: setting {s.name} must be one of {', '.join(s.choices)}, got {value!r}")
    return value


def _validate(schema: tuple[Setting, ...], merged: dict[str, Any], origin: str) -> dict[str, Any]:
    return {s.name: _coerce(s, merged.get(s.name, s.default), origin) for s in schema}


def load(
    schema: tuple[Setting, ...],
    path: Path | None,
    env: Mapping[str, str],
    flags: Mapping[str, Any],
) -> Settings:
    """Merge default < file < environment < flags, validate, and freeze."""
    names = {s.name: s for s in schema}
    values: dict[str, Any] = {s.name: s.default for s in schema}
    if path is not None and path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path.name} is not valid TOML: {exc}") from exc
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"{path.name}: unknown setting(s) {', '.join(unknown)}")
        for k, v in data.items():
            values[k] = _coerce(names[k], v, path.name)
    for s in schema:
        ev = env.get(f"EDGENODE_{s.name.upper()}")
        if ev is not None:
            values[s.name] = _coerce(s, ev, f"EDGENODE_{s.name.upper()}")
    for k, v in flags.items():
        if v is not None:
            values[k] = _coerce(names[k], v, f"--{k.replace('_', '-')}")
    return Settings(schema, _validate(schema, values, "settings"))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def write(schema: tuple[Setting, ...], path: Path, values: Mapping[str, Any]) -> None:
    """Write the non-default values as TOML, atomically, mode 0600 (it may hold a token)."""
    lines = ["# edgenode settings; see docs/settings.md. Flags and EDGENODE_* variables override."]
    for s in schema:
        if s.name in values and values[s.name] != s.default:
            lines.append(f"# {s.help}")
            lines.append(f"{s.name} = {_toml_value(values[s.name])}")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def markdown() -> str:
    """docs/settings.md, generated from the declarations (a test keeps the file in step)."""
    out = [
        "# Settings",
        "",
        "Generated from `edgenode/settings.py`; precedence: command-line flag > environment variable",
        "`EDGENODE_<NAME>` > the data folder's TOML file (`hub.toml` / `node.toml`) > default.",
        "Secret settings are never printed.",
    ]
    for title, schema in (("Hub (`hub.toml`)", HUB_SETTINGS), ("Node (`node.toml`)", NODE_SETTINGS)):
        out += ["", f"## {title}", "", "| name | type | default | meaning |", "| --- | --- | --- | --- |"]
        for s in schema:
            default = "" if s.secret else repr(s.default)
            secret = " (secret)" if s.secret else ""
            out.append(f"| `{s.name}` | {s.type.__name__} | `{default}` | {s.help}{secret} |")
    return "\n".join(out) + "\n"
