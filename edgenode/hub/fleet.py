"""The hub's fleet view: every node's last heartbeat, judged against the tenant's head.

Each node is classed, worst first:

- ``diverged``: its last verify found its copy different from the hub's;
- ``silent``: no heartbeat for ``fleet_silent_after`` seconds (nodes send one at least
  every 60 s while they reach the hub);
- ``behind``: ``fleet_behind_changes`` or more changes behind the tenant's head as the hub
  knows it now, or a reported lag of ``fleet_behind_seconds``, or its staleness watchdog on;
- ``ok``.

Troubled nodes sort first. The heartbeat body is whatever the node sent (a JSON object), so
every field is read defensively: a wrong type shows as unknown, never as an error page.
Functions take an optional tenant (``lg_code``) so a viewer can be limited to their own.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from edgenode.durable import parse_time, utcnow
from edgenode.hub.store import HubStore
from edgenode.settings import Settings
from edgenode.wareki import short_time_label

CLASSES = ("diverged", "silent", "behind", "ok")
LABELS = {"diverged": "不一致 diverged", "silent": "無応答 silent", "behind": "遅延 behind", "ok": "正常 ok"}
_env = Environment(loader=PackageLoader("edgenode.hub", "templates"), autoescape=select_autoescape())


@dataclass(frozen=True)
class Thresholds:
    """When a node counts as silent or behind (from the hub's settings)."""

    silent_after: float
    behind_seconds: float
    behind_changes: int

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        """The thresholds declared in the hub's settings."""
        return cls(settings["fleet_silent_after"], settings["fleet_behind_seconds"], settings["fleet_behind_changes"])


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _text(v: Any, limit: int = 80) -> str | None:
    return v[:limit] if isinstance(v, str) else None


def _time(v: Any) -> str | None:
    if not isinstance(v, str):
        return None
    try:
        parse_time(v)
    except ValueError:
        return None
    return v


def row(node: dict[str, Any], head: int | None, now: _dt.datetime, th: Thresholds) -> dict[str, Any]:
    """One node's line of the fleet view, with its class and the reasons for it."""
    st = node.get("status") if isinstance(node.get("status"), dict) else {}
    assert isinstance(st, dict)
    seen = _time(node.get("last_seen_at"))
    silence = (now - parse_time(seen)).total_seconds() if seen else None
    cursor = _int(st.get("cursor"))
    lag = max(0, head - cursor) if head is not None and cursor is not None else None
    lag_s = _num(st.get("lag_seconds"))
    stale = st.get("stale") if isinstance(st.get("stale"), dict) else {}
    assert isinstance(stale, dict)
    verify_ok = st.get("last_verify_ok") if isinstance(st.get("last_verify_ok"), bool) else None
    reasons: list[str] = []
    if verify_ok is False:
        reasons.append("diverged")
    if silence is None or silence >= th.silent_after:
        reasons.append("silent")
    if (
        (lag is not None and lag >= th.behind_changes)
        or (lag_s is not None and lag_s >= th.behind_seconds)
        or stale.get("alarm") is True
    ):
        reasons.append("behind")
    cls = next((c for c in CLASSES if c in reasons), "ok")
    return {
        "lg_code": node.get("lg_code"),
        "node_id": node.get("node_id"),
        "class": cls,
        "reasons": reasons,
        "last_seen_at": seen,
        "silence_seconds": None if silence is None else round(silence, 1),
        "mode": _text(st.get("mode"), 20),
        "cursor": cursor,
        "hub_head": head,
        "lag_changes": lag,
        "lag_seconds": lag_s,
        "queue_depth": _int(st.get("queue_depth")),
        "queue_oldest_age_seconds": _num(st.get("queue_oldest_age_seconds")),
        "queue_oldest_at": _time(
            (st.get("queue") or {}).get("oldest_pending_at") if isinstance(st.get("queue"), dict) else None
        ),
        "last_verify_ok": verify_ok,
        "last_verify_at": _time(st.get("last_verify_at")),
        "stale_alarm": stale.get("alarm") is True,
        "version": _text(st.get("version"), 40),
        "status": st,
    }


def fleet(
    store: HubStore, settings: Settings, lg_code: str | None = None, now: _dt.datetime | None = None
) -> dict[str, Any]:
    """The fleet view as data (what ``/fleet.json`` serves): tenants, thresholds, nodes worst first."""
    now = now or _dt.datetime.now(_dt.UTC)
    th = Thresholds.of(settings)
    tenants = {k: v for k, v in store.tenants().items() if lg_code is None or k == lg_code}
    heads = {lg: store.tenant(lg).head() for lg in tenants}
    rows = [row(n, heads.get(n["lg_code"]), now, th) for n in store.nodes(lg_code)]
    rows.sort(key=lambda r: (CLASSES.index(r["class"]), -(r["lag_changes"] or 0), r["lg_code"], r["node_id"]))
    counts = {c: sum(1 for r in rows if r["class"] == c) for c in CLASSES}
    return {
        "generated_at": utcnow(),
        "tenants": tenants,
        "heads": heads,
        "thresholds": asdict(th),
        "counts": counts,
        "nodes": rows,
    }


def template_context(doc: dict[str, Any]) -> dict[str, Any]:
    """What ``fleet.html`` needs besides the page frame (the staff pages add user and CSRF)."""
    return {"doc": doc, "labels": LABELS, "jst": short_time_label, "ago": _ago}


def render_html(doc: dict[str, Any]) -> str:
    """The fleet view as a page (server-rendered, no script, refreshes itself every 30 s)."""
    return _env.get_template("fleet.html").render(template_context(doc))


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 120:
        return f"{s}秒前"
    if s < 7200:
        return f"{s // 60}分前"
    if s < 172800:
        return f"{s // 3600}時間前"
    return f"{s // 86400}日前"
