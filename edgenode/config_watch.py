"""Reloading a running node's configuration when its files are edited.

`node serve` holds its settings in a `LiveSettings`: a `Settings` whose current value is one
frozen `Settings` object, replaced whole (one reference assignment) on a reload. Everything
that reads a setting when it needs it (the sync loop, the counter, status) sees the new
values from its next read; a reader never sees half of an edit.

When ``node.toml`` changes, `ConfigReloader.check` loads it with the same precedence as at
start (the process's flags and environment still win) and validates it. An invalid file is
refused with one log line naming the file and what is wrong (key, or TOML line and column),
and the running configuration stays in force. Of a valid file, the settings in `RUNTIME` take
effect at once; any other changed setting is logged as needing a restart and not applied
(the running process keeps its old value, so what it reports stays true). Each reload is
written to the audit log with the names of the changed settings, never their values.

``certs.toml`` is read by the counter when it issues a certificate; the reloader checks an
edited one and logs whether it is valid (an invalid one leaves the last good one in use).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from edgenode.audit import AuditLog
from edgenode.durable import utcnow
from edgenode.errors import ConfigError, EdgenodeError
from edgenode.settings import Settings
from edgenode.sync.nodeconfig import CONFIG_NAME, load_node_settings
from edgenode.sync.state import NodeState

log = logging.getLogger("edgenode.config")

#: Node settings a running `node serve` applies without a restart.
RUNTIME = frozenset(
    {
        "bandwidth_limit",
        "feed_wait",
        "feed_max_bytes",
        "request_timeout",
        "backoff_initial",
        "backoff_max",
        "heartbeat_interval",
        "digest_buckets",
        "approval_lag_seconds",
        "offline_after",
        "rebootstrap_fraction",
        "inbox_settle_seconds",
        "log_level",
    }
)


class LiveSettings(Settings):
    """`Settings` whose values are those of `current`, which a reload replaces as a whole."""

    def __init__(self, initial: Settings) -> None:  # the base class's fields stay unused
        self._current = initial

    @property
    def current(self) -> Settings:
        """The settings in force now."""
        return self._current

    def swap(self, new: Settings) -> None:
        """Put `new` in force (one reference assignment: readers see old or new, never a mix)."""
        self._current = new

    def __getitem__(self, key: str) -> Any:
        return self._current[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current)

    def __len__(self) -> int:
        return len(self._current)

    def __repr__(self) -> str:
        return f"LiveSettings({self._current.render()!r})"

    def render(self) -> dict[str, Any]:
        return self._current.render()

    def replace(self, **changes: Any) -> Settings:
        return self._current.replace(**changes)


def apply_log_level(settings: Mapping[str, Any], verbose: bool) -> None:
    """Set the root logger's level from `log_level` (the `-v` flag keeps debug)."""
    level = "debug" if verbose else str(settings["log_level"])
    logging.getLogger().setLevel(level.upper())


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


class ConfigReloader:
    """Notices edits of node.toml (and certs.toml) and applies, refuses or reports them."""

    def __init__(
        self,
        data: Path,
        live: LiveSettings,
        *,
        env: Mapping[str, str],
        flags: Mapping[str, Any],
        state: NodeState,
        audit: AuditLog,
        on_change: Callable[[], None] | None = None,
        settle: float = 0.0,
    ) -> None:
        self.data = data
        self.live = live
        self.env = dict(env)
        self.flags = dict(flags)
        self.state = state
        self.audit = audit
        self.on_change = on_change
        self.settle = settle
        self._seen = {name: _digest(data / name) for name in (CONFIG_NAME, "certs.toml")}
        # name -> (digest, monotonic time first seen): an editor that truncates and then writes
        # must not get its empty or half-written file applied
        self._pending: dict[str, tuple[str | None, float]] = {}
        self.state.update(config=self._in_force({"state": "loaded", "at": utcnow()}))

    def _in_force(self, result: dict[str, Any]) -> dict[str, Any]:
        # the values a person may want to confirm after an edit; none of them is a secret
        return {**result, "in_force": {k: self.live[k] for k in sorted(RUNTIME)}}

    def check(self, now: float | None = None) -> dict[str, Any] | None:
        """Reload whatever file changed and then held still for `settle` seconds.

        Returns the outcome, or None if nothing was (yet) to be done.
        """
        now = time.monotonic() if now is None else now
        result = None
        for name in (CONFIG_NAME, "certs.toml"):
            digest = _digest(self.data / name)
            if digest == self._seen[name]:
                self._pending.pop(name, None)
                continue
            pending = self._pending.get(name)
            if pending is None or pending[0] != digest:
                self._pending[name] = pending = (digest, now)
            if now - pending[1] < self.settle:
                continue
            del self._pending[name]
            self._seen[name] = digest
            result = self._reload_node() if name == CONFIG_NAME else self._check_certs()
        return result

    def _reload_node(self) -> dict[str, Any]:
        old = self.live.current
        try:
            new = load_node_settings(self.data, self.env, self.flags)
            missing = [k for k in ("lg_code", "hub_public_key", "node_id") if not new[k]]
            if missing:
                # the node could not even start with this file
                raise ConfigError(f"{CONFIG_NAME} lacks {', '.join(missing)} (restore the lines `node init` wrote)")
        except ConfigError as exc:
            log.error("config: %s refused, the running configuration stays in force: %s", CONFIG_NAME, exc)
            return self._record({"state": "rejected", "file": CONFIG_NAME, "error": str(exc)})
        changed = sorted(k for k in new if new[k] != old[k])
        restart = [k for k in changed if k not in RUNTIME]
        applied = [k for k in changed if k in RUNTIME]
        if applied:
            # keep the old value of what needs a restart, so that status stays true meanwhile
            self.live.swap(new.replace(**{k: old[k] for k in restart}) if restart else new)
            if self.on_change is not None:
                self.on_change()
            log.info("config: %s reloaded; now in force: %s", CONFIG_NAME, ", ".join(applied))
        if restart:
            log.warning(
                "config: %s changes %s, which need(s) a restart of `node serve`; not applied until then",
                CONFIG_NAME,
                ", ".join(restart),
            )
        if not changed:
            log.info("config: %s edited, no setting changed", CONFIG_NAME)
        return self._record({"state": "reloaded", "file": CONFIG_NAME, "applied": applied, "needs_restart": restart})

    def _check_certs(self) -> dict[str, Any]:
        from edgenode.issuance import load_cert_config

        try:
            load_cert_config(self.data, self.live)
        except EdgenodeError as exc:
            log.error("config: certs.toml refused, certificates keep the last good settings: %s", exc)
            return self._record({"state": "rejected", "file": "certs.toml", "error": str(exc)})
        log.info("config: certs.toml is valid; the counter uses it from the next certificate")
        return self._record({"state": "reloaded", "file": "certs.toml", "applied": ["certs.toml"], "needs_restart": []})

    def _record(self, result: dict[str, Any]) -> dict[str, Any]:
        result = self._in_force({**result, "at": utcnow()})
        detail = {k: v for k, v in result.items() if k in ("state", "file", "applied", "needs_restart", "error")}
        self.audit.append("config_reload", None, detail)
        self.state.update(config=result)
        return result
