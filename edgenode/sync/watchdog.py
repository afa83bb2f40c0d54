"""The silent-staleness watchdog, and the health facts `node status` reports beside the lag.

Silent staleness: the node keeps hearing from the hub (so it is not offline, and its hub head
moves on), but its own cursor does not move — an apply that fails the same way every time, a
wedged thread. Lag alone can look small for a while; this alarm says "stuck" outright.

The running node calls `observe` at each lag sample; it remembers (durably, in ``node.db``)
when the cursor last moved and what the hub head was then, and logs one line when the alarm
starts and one when it ends. `staleness` reads the same keys, so `node status`, `/metrics`,
the admin page and the heartbeat all agree with the log.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from typing import Any

from edgenode.durable import parse_time
from edgenode.sync.state import NodeState

log = logging.getLogger("edgenode.sync")


def staleness(st: dict[str, Any], cursor: int | None, hub_head: int | None, after: float, now: float) -> dict[str, Any]:
    """The alarm state from the node's stored keys: alarm, since when the cursor is still, threshold."""
    seen, moved_at, head_then = st.get("cursor_seen"), st.get("cursor_moved_at"), st.get("head_at_cursor_move")
    still = None
    alarm = False
    if cursor is not None and seen == cursor and isinstance(moved_at, (int, float)):
        still = max(0.0, now - float(moved_at))
        alarm = still >= after and hub_head is not None and hub_head > int(head_then or 0) and hub_head > cursor
    return {
        "alarm": alarm,
        "cursor_still_seconds": None if still is None else round(still, 1),
        "after_seconds": after,
    }


def observe(state: NodeState, cursor: int | None, hub_head: int | None, after: float, now: float | None = None) -> bool:
    """Note where the cursor is; log when the alarm starts or ends. Returns whether it is on."""
    now = time.time() if now is None else now
    st = state.all()
    if cursor is not None and st.get("cursor_seen") != cursor:
        state.update(cursor_seen=cursor, cursor_moved_at=now, head_at_cursor_move=hub_head)
        st = {**st, "cursor_seen": cursor, "cursor_moved_at": now, "head_at_cursor_move": hub_head}
    alarm = bool(staleness(st, cursor, hub_head, after, now)["alarm"])
    if alarm != bool(st.get("stale_alarm")):
        if alarm:
            log.error(
                "watchdog: cursor stuck at %s for %.0fs while the hub head moved to %s",
                cursor,
                now - float(st["cursor_moved_at"]),
                hub_head,
            )
        else:
            log.warning("watchdog: cursor moving again (now %s, hub head %s)", cursor, hub_head)
        state.update(stale_alarm=alarm)
    return alarm


def health(
    st: dict[str, Any], queue: dict[str, Any], cursor: int | None, hub_head: int | None, after: float
) -> dict[str, Any]:
    """Keys `node_status` adds for operators: oldest unsent item's age, staleness, recent errors."""
    now = _dt.datetime.now(_dt.UTC)
    oldest = queue.get("oldest_pending_at")
    return {
        "queue_oldest_age_seconds": round((now - parse_time(oldest)).total_seconds(), 1) if oldest else None,
        "stale": staleness(st, cursor, hub_head, after, now.timestamp()),
        "recent_errors": list(st.get("recent_errors") or []),
        "last_verify_seq": st.get("last_verify_seq"),
        "last_verify_detail": st.get("last_verify_detail"),
    }
