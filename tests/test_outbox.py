"""The node's queue: items waiting for a verdict stay in order, whether sent already or not."""

from __future__ import annotations

from pathlib import Path

from edgenode.outbox import Outbox
from tests.outbox_items import queue_issuances


def test_a_sent_item_without_an_answer_is_sent_again_and_shown_as_sent(tmp_path: Path) -> None:
    db = tmp_path / "node.db"
    items = queue_issuances(db, 3)
    box = Outbox(db)
    box.mark_sent([items[0]["key"], items[1]["key"]])  # the request went out; the answer never came
    assert box.summary()["by_state"] == {"pending": 1, "sent": 2, "accepted": 0, "conflict": 0, "rejected": 0}
    assert [i["key"] for i in box.pending()] == [i["key"] for i in items]  # re-sent, in order
    box.record([{"key": items[0]["key"], "status": "duplicate"}, {"key": items[1]["key"], "status": "rejected"}])
    summary = box.summary()
    assert summary["by_state"] == {"pending": 1, "sent": 0, "accepted": 1, "conflict": 0, "rejected": 1}
    assert summary["oldest_pending_at"] == items[2]["created_at"]
