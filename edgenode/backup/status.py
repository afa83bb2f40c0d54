"""The backup's state as `node status`, /admin and /metrics show it.

Read from the supervisor's ``DATA/backup/status.json``; a supervisor that no longer writes it
(killed, or never started) is reported as such, with the lag grown by the time since.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from edgenode.backup import config
from edgenode.durable import parse_time, pid_alive
from edgenode.errors import ConfigError, EdgenodeError
from edgenode.settings import Settings

#: Japanese labels of the states, for the admin page.
STATES_JA = {
    "not_configured": "未設定",
    "not_running": "停止中 (監視プロセスなし)",
    "starting": "開始中",
    "running": "正常",
    "stalled": "滞留 (バックアップが進んでいません)",
    "dead": "異常終了 (再起動待ち)",
    "error": "設定または保存先の異常",
    "stopped": "停止",
}
STATES = tuple(STATES_JA)


def backup_status(data: Path, settings: Settings) -> dict[str, Any]:
    """The backup object of `node status`: state, target, lag, positions, last error with a hint."""
    try:
        tgt = config.target(settings)
    except ConfigError as exc:
        return {"state": "error", "state_ja": STATES_JA["error"], "hint": str(exc), "lag_seconds": None}
    if tgt is None:
        return {
            "state": "not_configured",
            "state_ja": STATES_JA["not_configured"],
            "hint": "set backup_path (a USB disk or NAS mount) or backup_s3_bucket in node.toml",
            "lag_seconds": None,
        }
    try:
        st: dict[str, Any] = json.loads((data / config.FOLDER / config.STATUS_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        st = {}
    st["target"] = tgt.where
    now = _dt.datetime.now(_dt.UTC)
    age = (now - parse_time(st["checked_at"])).total_seconds() if st.get("checked_at") else None
    fresh = age is not None and age <= max(10.0, 5 * float(st.get("check_interval") or 1.0))
    if not st or (st.get("state") != "stopped" and not (fresh and pid_alive(st.get("supervisor_pid")))):
        who = "`node serve`" if settings["backup_in_serve"] else "the edgenode-backup unit (`node backup`)"
        st.update(
            state="not_running",
            hint=f"no backup supervisor is running: start {who}",
            litestream_pid=None,
        )
    if st.get("state") in ("not_running", "stopped") and age is not None:
        # nobody is replicating: a file written since the last look is not in the backup
        checked = now.timestamp() - age
        if _newest_write(data) > checked:
            st["lag_seconds"] = round(max(float(st.get("lag_seconds") or 0.0), age), 3)
    st.setdefault("lag_seconds", None)
    st["state_ja"] = STATES_JA.get(str(st.get("state")), str(st.get("state")))
    return st


def _newest_write(data: Path) -> float:
    newest = 0.0
    try:
        dbs = config.databases(data)
    except EdgenodeError:
        return newest
    for db in dbs:
        for suffix in ("", "-wal"):
            try:
                newest = max(newest, os.stat(f"{db.path}{suffix}").st_mtime)
            except FileNotFoundError:
                pass
    return newest
