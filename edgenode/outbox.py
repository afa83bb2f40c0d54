"""The node's write queue (outbox) in ``node.db``: everything the counter did, for the hub.

An item is appended in the same transaction as the local record it describes (an issuance, a
処分), committed with full durability before the clerk is told it is done. Items are chained
by hash in sequence order (see `edgenode.hub.uploads`), carry an idempotency key, the node, the
actor, the time, the replica position the work was based on, and the schema they were written
under. Upload is at-least-once; the hub's ledger makes it exactly-once in effect.

States: pending → sent (in a request the hub has not answered yet; sent again with the next
upload) → accepted | conflict (taken in, but a person at the datacenter must decide it) |
rejected (with the hub's reason; quarantined, never retried, and never blocking the items
behind it).

Schema history (``schema`` in every item; the hub upgrades older items, see
`edgenode.hub.uploads.upgrade`):
1. the first queue format.
2. a 届出受付 (``intake``) carries the as-of time of the data the clerk saw in ``base.as_of``,
   and ``payload.newcomers`` (the people a 転入届 brings in; empty for 転居届/転出届).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from typing import Any

from edgenode.durable import open_db, utcnow, write_tx
from edgenode.wire import canonical_bytes

SQL = """
CREATE TABLE IF NOT EXISTS outbox (
  seq        INTEGER PRIMARY KEY,
  key        TEXT NOT NULL UNIQUE,
  kind       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  item       TEXT NOT NULL,
  hash       TEXT NOT NULL,
  state      TEXT NOT NULL DEFAULT 'pending',
  reason     TEXT,
  acked_at   TEXT
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, seq);
"""
SCHEMA = 2
GENESIS = "0" * 64
STATES = ("pending", "sent", "accepted", "conflict", "rejected")
#: states still waiting for the hub's verdict
WAITING = ("pending", "sent")


def append_in(
    conn: sqlite3.Connection, node_id: str, kind: str, actor: str, payload: dict[str, Any], base: dict[str, Any]
) -> dict[str, Any]:
    """Queue one item inside the caller's write transaction on node.db; return it."""
    row = conn.execute("SELECT seq, hash FROM outbox ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    item: dict[str, Any] = {
        "key": secrets.token_hex(16),
        "seq": seq,
        "node_id": node_id,
        "kind": kind,
        "created_at": utcnow(),
        "actor": actor,
        "payload": payload,
        "base": base,
        "schema": SCHEMA,
        "prev": prev,
    }
    item["hash"] = hashlib.sha256(bytes.fromhex(prev) + canonical_bytes(item)).hexdigest()
    conn.execute(
        "INSERT INTO outbox (seq, key, kind, created_at, item, hash) VALUES (?, ?, ?, ?, ?, ?)",
        (seq, item["key"], kind, item["created_at"], json.dumps(item, ensure_ascii=False), item["hash"]),
    )
    return item


class Outbox:
    """Reading the queue and recording the hub's verdicts."""

    def __init__(self, path: Any) -> None:
        self.path = path

    def _db(self) -> sqlite3.Connection:
        return open_db(self.path, SQL)

    def pending(self, limit: int = 200) -> list[dict[str, Any]]:
        """The oldest items the hub has not given a verdict on yet (pending or sent), in order."""
        conn = self._db()
        try:
            rows = conn.execute(
                "SELECT item FROM outbox WHERE state IN ('pending', 'sent') ORDER BY seq LIMIT ?", (limit,)
            )
            return [json.loads(r[0]) for r in rows]
        finally:
            conn.close()

    def mark_sent(self, keys: list[str]) -> None:
        """Note that these items are on their way (one small transaction before each upload)."""
        conn = self._db()
        try:
            with write_tx(conn):
                conn.executemany(
                    "UPDATE outbox SET state = 'sent' WHERE key = ? AND state = 'pending'", [(k,) for k in keys]
                )
        finally:
            conn.close()

    def record(self, results: list[dict[str, Any]]) -> dict[str, int]:
        """Store the hub's verdicts (accepted / duplicate / rejected); return counts by verdict."""
        counts: dict[str, int] = {}
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for r in results:
                status = r.get("status")
                counts[str(status)] = counts.get(str(status), 0) + 1
                state = {
                    "accepted": "accepted",
                    "duplicate": "accepted",
                    "rejected": "rejected",
                    "conflict": "conflict",
                }.get(str(status))
                if state is None:
                    continue  # unknown answer: keep it pending
                conn.execute(
                    "UPDATE outbox SET state = ?, reason = ?, acked_at = ?"
                    " WHERE key = ? AND state IN ('pending', 'sent')",
                    (state, r.get("reason"), utcnow(), r.get("key")),
                )
            conn.execute("COMMIT")
        finally:
            conn.close()
        return counts

    def problems(self, limit: int = 200) -> list[dict[str, Any]]:
        """Quarantined (rejected) and conflict items, newest first, with the hub's reason."""
        conn = self._db()
        try:
            rows = conn.execute(
                "SELECT seq, kind, created_at, state, reason, acked_at, item FROM outbox"
                " WHERE state IN ('rejected', 'conflict') ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        finally:
            conn.close()
        out = []
        for seq, kind, created_at, state, reason, acked_at, raw in rows:
            item = json.loads(raw)
            payload = item.get("payload", {})
            out.append(
                {
                    "seq": seq,
                    "kind": kind,
                    "created_at": created_at,
                    "state": state,
                    "reason": reason,
                    "acked_at": acked_at,
                    "actor": item.get("actor"),
                    "id": payload.get("id"),
                    "type": payload.get("type"),
                    "serials": payload.get("serials", []),
                }
            )
        return out

    def summary(self) -> dict[str, Any]:
        """Items by state and the creation time of the oldest pending one."""
        conn = self._db()
        try:
            by_state = dict(conn.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
            oldest = conn.execute("SELECT min(created_at) FROM outbox WHERE state IN ('pending', 'sent')").fetchone()[0]
        finally:
            conn.close()
        return {"by_state": {s: int(by_state.get(s, 0)) for s in STATES}, "oldest_pending_at": oldest}
