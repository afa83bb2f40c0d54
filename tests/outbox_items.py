"""Queueing made-up 交付記録 in a node's outbox, for tests of the upload path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgenode import outbox
from edgenode.durable import open_db, write_tx


def queue_issuances(db: Path, n: int, node: str = "honcho-1", pad: int = 0) -> list[dict[str, Any]]:
    """Append `n` issuance items (ids iss-NODE-i) to the outbox in `db`; return them."""
    conn = open_db(db, outbox.SQL)
    items = []
    with write_tx(conn):
        for i in range(n):
            payload = {
                "id": f"iss-{node}-{i:05d}",
                "issued_at": "2026-11-27T01:00:00.000000Z",
                "day": "2026-11-27",
                "kind": "住民票の写し",
                "requester": "本人",
                "subjects": [],
                "replica": {"cursor": 0},
            }
            if pad:
                payload["pad"] = "x" * pad
            items.append(outbox.append_in(conn, node, "issuance", "tanaka", payload, {"cursor": 0}))
    conn.close()
    return items


def queue_item(
    db: Path, kind: str, payload: dict[str, Any], base: dict[str, Any] | None = None, node: str = "honcho-1"
) -> dict[str, Any]:
    """Append one item of any kind (clerk tanaka) to the outbox in `db`; return it."""
    conn = open_db(db, outbox.SQL)
    with write_tx(conn):
        item = outbox.append_in(conn, node, kind, "tanaka", payload, {"cursor": 0} if base is None else base)
    conn.close()
    return item
