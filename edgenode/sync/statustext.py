"""`edgenode node status` for a terminal: the admin page's facts as aligned lines.

Same sources as the admin page (status, lag history, audit log, disk), plus a one-line text
sparkline of the last 24 hours of lag (``x`` offline, ``·`` not running).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from edgenode.audit import AuditLog
from edgenode.counter_ui.lagchart import jst
from edgenode.durable import parse_time
from edgenode.settings import Settings
from edgenode.sync.laghistory import LagHistory, apply_rate, slots, sparkline

SPARK_SLOTS = 48  # half an hour each


def disk(data: Path) -> dict[str, Any]:
    """Free and total space of the filesystem holding the data folder."""
    u = shutil.disk_usage(data)
    return {
        "total_gb": round(u.total / 1e9, 1),
        "free_gb": round(u.free / 1e9, 1),
        "free_percent": round(100 * u.free / u.total, 1) if u.total else 0.0,
        "low": u.total > 0 and u.free / u.total < 0.10,
    }


def flat(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A nested status object as (key, text) rows, for showing any backup state generically."""
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for k, v in value.items():
            rows += flat(v, f"{prefix}{k}." if isinstance(v, dict) else f"{prefix}{k}")
        return rows
    return [(prefix.rstrip("."), "—" if value is None else str(value))]


def duration(seconds: float) -> str:
    """「45 s」「12 min」「3 h 5 min」「2 d 4 h」."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} h" + (f" {m} min" if m else "")
    d, h = divmod(s // 3600, 24)
    return f"{d} d" + (f" {h} h" if h else "")


def _when(iso: Any) -> str:
    if not iso:
        return "never"
    try:
        return jst(parse_time(str(iso)).timestamp(), True) + " JST"
    except ValueError:
        return str(iso)


def status_text(data: Path, settings: Settings, st: dict[str, Any], now: float | None = None) -> str:
    """The terminal form of `node status`."""
    now = time.time() if now is None else now
    interval = float(settings["lag_sample_interval"])
    samples = LagHistory(data / "node.db").samples(now - 86400)
    rate = apply_rate(samples, 900, now)
    n, problem = AuditLog(data / "node.db").verify()
    d = disk(data)
    q = st.get("queue") or {}
    stale = st.get("stale") or {}
    lag_s = st.get("lag_seconds")
    verify = "never"
    if st.get("last_verify_ok") is not None:
        verify = ("identical" if st["last_verify_ok"] else "DIFFERED") + f" at {_when(st.get('last_verify_at'))}"
    lines = [
        ("node", f"{st.get('node_id')} ({st.get('lg_code')}), edgenode {st.get('version', '')}"),
        (
            "mode",
            f"{st['mode']}"
            + (" (forced offline)" if st.get("forced_offline") else "")
            + (f" since {_when(st.get('mode_since'))}" if st.get("mode_since") else "")
            + (f" — {st['mode_reason']}" if st.get("mode_reason") else ""),
        ),
        ("cursor / head", f"{st.get('cursor')} / {st.get('hub_head')}"),
        (
            "lag",
            f"{st.get('lag_changes') if st.get('lag_changes') is not None else '?'} changes, "
            + (duration(lag_s) if lag_s is not None else "unknown"),
        ),
        ("apply rate", f"{rate:.2f} changes/s (15 min)" if rate is not None else "—"),
        ("last sync", _when(st.get("last_sync_at"))),
        (
            "watchdog",
            ("ALARM: cursor stuck " + duration(stale.get("cursor_still_seconds") or 0) + " while the hub head moved")
            if stale.get("alarm")
            else "ok",
        ),
        (
            "outbox",
            ", ".join(f"{k} {v}" for k, v in (q.get("by_state") or {}).items())
            + (
                f"; oldest pending {duration(st['queue_oldest_age_seconds'])} old"
                if st.get("queue_oldest_age_seconds")
                else ""
            ),
        ),
        ("verify", verify),
        ("backup", ", ".join(f"{k}={v}" for k, v in flat(st.get("backup") or {})) or "—"),
        (
            "disk (data)",
            f"{d['free_gb']} GB free of {d['total_gb']} GB ({d['free_percent']}%)" + (" LOW" if d["low"] else ""),
        ),
        ("audit log", f"{n} entries, " + (f"BROKEN at {problem.seq}: {problem.reason}" if problem else "chain intact")),
        (
            "last error",
            (st.get("last_error") or "none")
            + (f" — hint: {st['last_error_hint']}" if st.get("last_error_hint") else ""),
        ),
    ]
    out = [f"{k:14} {v}" for k, v in lines]
    parts = slots(samples, now - 86400, now, SPARK_SLOTS, interval)
    peak = max((s.lag_seconds or 0.0 for s in samples), default=0.0)
    out.append(f"{'lag 24 h':14} |{sparkline(parts)}| peak {duration(peak)}")
    out.append(
        f"{'':14}  {jst(now - 86400):<{SPARK_SLOTS // 2}}{jst(now - 43200):<{SPARK_SLOTS // 2}}"
        "now (JST; x offline, · no data)"
    )
    for e in (st.get("recent_errors") or [])[1:5]:
        out.append(f"{'earlier error':14} {_when(e.get('last_at'))} ×{e.get('count', 1)} {e.get('error')}")
    return "\n".join(out)
