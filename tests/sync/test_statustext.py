"""`node status` in a terminal: the admin page's facts, and the day's lag as a sparkline."""

from __future__ import annotations

import time
from pathlib import Path

from edgenode.settings import NODE_SETTINGS, load
from edgenode.sync.laghistory import LagHistory, Sample
from edgenode.sync.state import NodeState
from edgenode.sync.statustext import duration, status_text

SETTINGS = load(NODE_SETTINGS, None, {}, {"node_id": "honcho-1", "lg_code": "454214"})


def _status(**over: object) -> dict[str, object]:
    st: dict[str, object] = {
        "node_id": "honcho-1",
        "lg_code": "454214",
        "version": "0.1.0",
        "mode": "online",
        "cursor": 90,
        "hub_head": 100,
        "lag_changes": 10,
        "lag_seconds": 125.0,
        "queue": {"by_state": {"pending": 3, "accepted": 7, "conflict": 0, "rejected": 1}},
        "queue_oldest_age_seconds": 4000.0,
        "last_verify_ok": False,
        "last_verify_at": "2026-11-27T01:00:00.000000Z",
        "backup": {"state": "replicating", "lag_seconds": 2.5},
        "stale": {"alarm": True, "cursor_still_seconds": 1200.0},
        "last_error": "HubUnreachable: hub not reachable",
        "last_error_hint": "check the WAN link",
    }
    st.update(over)
    return st


def test_the_terminal_status_names_every_fact_and_draws_the_day(tmp_path: Path) -> None:
    now = time.time()
    h = LagHistory(tmp_path / "node.db")
    for k in range(60):
        h.record(Sample(now - 3600 + 60 * k, k, k, 0, 600.0 if k == 30 else 0.0, "online", 60))
    NodeState(tmp_path / "node.db").update(x=1)
    text = status_text(tmp_path, SETTINGS, _status(), now)
    lines = {line[:14].strip(): line[15:] for line in text.splitlines() if line[:14].strip()}
    assert lines["cursor / head"] == "90 / 100"
    assert lines["lag"] == "10 changes, 2 min"
    assert lines["apply rate"] == "1.00 changes/s (15 min)"
    assert lines["outbox"] == "pending 3, accepted 7, conflict 0, rejected 1; oldest pending 1 h 6 min old"
    assert lines["verify"].startswith("DIFFERED at 11/27(金) 10:00 JST")
    assert lines["backup"] == "state=replicating, lag_seconds=2.5"
    assert lines["watchdog"].startswith("ALARM: cursor stuck 20 min")
    assert lines["audit log"] == "0 entries, chain intact"
    assert lines["last error"] == "HubUnreachable: hub not reachable — hint: check the WAN link"
    spark = lines["lag 24 h"].split("|")[1]
    assert len(spark) == 48 and spark[:-2] == "·" * 46 and "█" in spark[-2:]


def test_durations_read_naturally() -> None:
    assert [duration(s) for s in (5, 125, 3600, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "5 s",
        "2 min",
        "1 h",
        "3 h 5 min",
        "2 d 4 h",
    ]
