"""Bringing a restored node's queue back in line with what the hub already holds.

A backup is a prefix of the node's history, and so is the hub's ledger of its uploads (items go
up in sequence order). After a restore, for every item the hub holds:

- the restored queue has it (same sequence, key and hash): it takes the hub's verdict, so nothing
  is sent twice;
- the restored queue lacks it: it was written after the backup point and is *possibly lost
  locally*. The hub's copy goes back into the queue (with its verdict), into the audit log (audit
  entries) and the 交付記録 table (issuances, 処分), so the sequence and both hash chains carry on
  exactly where the hub saw them end; it is reported, with its 発行番号;
- the same sequence with another key or hash would be a fork: nothing is changed and it is an error.

Items of the restored queue the hub does not hold stay pending and upload normally (the hub's
chain check accepts them: they follow the last item it has).

The 発行番号 counter resumes `restore_serial_skip` above the highest number either side knows,
because certificates may have been printed after the backup point that never reached the hub.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from edgenode import audit, outbox
from edgenode.certs.serial import SerialCounter
from edgenode.durable import open_db, utcnow, write_tx
from edgenode.errors import StoreError
from edgenode.sync.client import HttpFeedClient
from edgenode.wire import canonical_bytes

VERDICTS = {"accepted": "accepted", "conflict": "conflict", "rejected": "rejected"}


def serial_sequence(serial: str) -> int | None:
    """The node's sequence number inside a printed 発行番号 (the next-to-last field), if readable."""
    parts = serial.split()
    if len(parts) < 2 or not parts[-2].isdigit():
        return None
    return int(parts[-2])


def highest_serial(conn: sqlite3.Connection) -> int:
    """The highest 発行番号 sequence among the 交付記録 in node.db (0 if none)."""
    have = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'issuance'").fetchone()
    if not have:
        return 0
    best = 0
    for (serials,) in conn.execute("SELECT serials FROM issuance"):
        for s in json.loads(serials):
            best = max(best, serial_sequence(str(s)) or 0)
    return best


def advance_serials(serial_db: Path, at_least: int, skip: int) -> tuple[int, int]:
    """Move the 発行番号 counter to `at_least + skip` if it is below; return (before, after)."""
    with SerialCounter(serial_db) as counter:
        before = counter.last()
        target = max(before, at_least) + skip
        if target > before:
            counter.reserve(target - before)
        return before, counter.last()


def _insert_lost(conn: sqlite3.Connection, row: dict[str, Any], state: str) -> None:
    from edgenode import issuance

    item = row["item"]
    conn.execute(
        "INSERT INTO outbox (seq, key, kind, created_at, item, hash, state, reason, acked_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            item["seq"],
            item["key"],
            item["kind"],
            item["created_at"],
            json.dumps(item, ensure_ascii=False),
            item["hash"],
            state,
            row.get("reason"),
            utcnow(),
        ),
    )
    payload = item.get("payload") or {}
    if item["kind"] == "audit":
        detail = payload.get("detail") or {}
        body = canonical_bytes(detail).decode("utf-8")
        conn.execute(
            "INSERT OR IGNORE INTO audit_log (seq, at, kind, actor, detail, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                payload["seq"],
                payload["at"],
                payload["kind"],
                payload.get("actor"),
                body,
                payload["prev"],
                payload["hash"],
            ),
        )
    elif item["kind"] == "issuance" and state != "rejected":
        cols = issuance._COLUMNS
        conn.execute(
            f"INSERT OR IGNORE INTO issuance ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [issuance._column(payload.get(c)) for c in cols],
        )
    elif item["kind"] == "void" and state != "rejected":
        conn.execute(
            "UPDATE issuance SET voided_at = ?, void_reason = ?, voided_by = ? WHERE id = ? AND voided_at IS NULL",
            (item["created_at"], str(payload.get("reason") or ""), item.get("actor"), payload.get("id")),
        )


def _hub_rows(client: HttpFeedClient, node_id: str, after: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = client.ledger(node_id, after)
        items = page.get("items")
        if not isinstance(items, list) or not items:
            return rows
        for r in items:
            if not isinstance(r, dict) or not isinstance(r.get("item"), dict) or not isinstance(r.get("seq"), int):
                raise StoreError("the hub's ledger answer is malformed")
        rows += items
        after = int(items[-1]["seq"])


def reconcile(data: Path, client: HttpFeedClient, node_id: str) -> dict[str, Any]:
    """Apply the hub's ledger to the restored queue (one transaction); return what was done."""
    from edgenode import issuance

    conn = open_db(data / "node.db", outbox.SQL, audit.SQL, issuance.SQL)
    try:
        local = {
            int(r[0]): (r[1], r[2], r[3]) for r in conn.execute("SELECT seq, key, hash, state FROM outbox ORDER BY seq")
        }
        pending = [s for s, v in local.items() if v[2] == "pending"]
        backup_last = max(local, default=0)
        after = (min(pending) - 1) if pending else backup_last
        rows = _hub_rows(client, node_id, after)
        taken: dict[str, int] = {}
        lost: list[dict[str, Any]] = []
        forks: list[int] = []
        with write_tx(conn):
            for row in rows:
                item, seq = row["item"], int(row["seq"])
                state = VERDICTS.get(str(row.get("status")))
                if state is None:
                    continue
                if seq in local:
                    key, digest, mine = local[seq]
                    if key != item.get("key") or digest != item.get("hash"):
                        forks.append(seq)
                        continue
                    if mine == "pending":
                        conn.execute(
                            "UPDATE outbox SET state = ?, reason = ?, acked_at = ? WHERE seq = ? AND state = 'pending'",
                            (state, row.get("reason"), utcnow(), seq),
                        )
                        taken[state] = taken.get(state, 0) + 1
                    continue
                if seq != max(local, default=0) + 1:
                    forks.append(seq)
                    continue
                _insert_lost(conn, row, state)
                local[seq] = (item["key"], item["hash"], state)
                payload = item.get("payload") or {}
                lost.append(
                    {
                        "seq": seq,
                        "kind": item.get("kind"),
                        "created_at": item.get("created_at"),
                        "actor": item.get("actor"),
                        "hub_verdict": state,
                        "id": payload.get("id"),
                        "serials": list(payload.get("serials") or []) if item.get("kind") == "issuance" else [],
                    }
                )
            if forks:
                raise StoreError(
                    f"the restored queue and the hub's ledger disagree at item(s) {forks[:10]}: not reconciled"
                )
        still = conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
        hub_serial = highest_serial(conn)
    finally:
        conn.close()
    return {
        "backup_last_item": backup_last,
        "hub_last_item": max((int(r["seq"]) for r in rows), default=None),
        "marked": taken,
        "possibly_lost": lost,
        "still_pending": int(still),
        "highest_serial_known": hub_serial,
    }
