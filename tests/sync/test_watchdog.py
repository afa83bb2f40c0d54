"""Silent staleness: the cursor still while the hub head moves raises one alarm, logged once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edgenode.sync.state import NodeState
from edgenode.sync.watchdog import observe, staleness

T0 = 1_800_000_000.0


def test_the_alarm_starts_after_the_threshold_and_ends_when_the_cursor_moves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = NodeState(tmp_path / "node.db")
    caplog.set_level(logging.WARNING, "edgenode.sync")
    assert not observe(state, 100, 100, 300, T0)
    assert not observe(state, 100, 120, 300, T0 + 299)  # head moved, but not long enough
    assert observe(state, 100, 130, 300, T0 + 301)
    assert observe(state, 100, 140, 300, T0 + 400)
    alarms = [r for r in caplog.records if "cursor stuck" in r.getMessage()]
    assert len(alarms) == 1 and alarms[0].levelno == logging.ERROR
    st = staleness(state.all(), 100, 140, 300, T0 + 400)
    assert st["alarm"] and st["cursor_still_seconds"] == 400
    assert not observe(state, 101, 140, 300, T0 + 410)
    assert sum("moving again" in r.getMessage() for r in caplog.records) == 1


def test_a_node_without_news_from_the_hub_is_not_stale(tmp_path: Path) -> None:
    state = NodeState(tmp_path / "node.db")
    observe(state, 100, 100, 300, T0)
    # offline: the head the node knows does not move, so this is not silent staleness
    assert not observe(state, 100, 100, 300, T0 + 3600)
    # caught up with a head that did not move: nothing to apply, nothing to alarm about
    assert not staleness(state.all(), 100, 100, 300, T0 + 7200)["alarm"]
