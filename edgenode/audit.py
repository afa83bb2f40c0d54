"""The node's tamper-evident audit log (監査ログ) in ``node.db``.

Every entry stores the hash of the entry before it, so removing, reordering or altering any
entry breaks the chain from that point on (`verify`). Entries are committed with full
durability before the action they record is reported as done.

Details never contain passwords, tokens or session ids; resident names are not logged
either, only 宛名番号.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgenode import outbox
from edgenode.durable import open_db, utcnow
from edgenode.wire import canonical_bytes

SQL = """
CREATE TABLE IF NOT EXISTS audit_log (
  seq    INTEGER PRIMARY KEY,
  at     TEXT NOT NULL,
  kind   TEXT NOT NULL,
  actor  TEXT,
  detail TEXT NOT NULL,
  prev   TEXT NOT NULL,
  hash   TEXT NOT NULL
)
"""
GENESIS = "0" * 64
_FORBIDDEN_KEYS = {"password", "token", "session", "session_id", "secret"}


def _entry_hash(prev: str, seq: int, at: str, kind: str, actor: str | None, detail: bytes) -> str:
    h = hashlib.sha256()
    h.update(canonical_bytes([prev, seq, at, kind, actor]))
    h.update(detail)
    return h.hexdigest()


@dataclass(frozen=True)
class AuditProblem:
    """Where the chain breaks and why."""

    seq: int
    reason: str


class AuditLog:
    """Append-only, hash-chained audit entries.

    With a `node_id`, every entry is also queued for the hub in the same transaction, so the
    datacenter holds the chain too and a node cannot quietly drop its newest entries.
    """

    def __init__(self, path: Path, node_id: str | None = None) -> None:
        self.path = path
        self.node_id = node_id

    def _connect(self) -> sqlite3.Connection:
        return open_db(self.path, SQL, outbox.SQL)

    def append(self, kind: str, actor: str | None, detail: dict[str, Any] | None = None) -> int:
        """Record one event durably; return its sequence number."""
        detail = detail or {}
        leaked = _FORBIDDEN_KEYS & {k.lower() for k in detail}
        if leaked:
            raise ValueError(f"audit details must not carry {sorted(leaked)}")
        body = canonical_bytes(detail)
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
            at = utcnow()
            digest = _entry_hash(prev, seq, at, kind, actor, body)
            conn.execute(
                "INSERT INTO audit_log (seq, at, kind, actor, detail, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, at, kind, actor, body.decode("utf-8"), prev, digest),
            )
            if self.node_id:
                entry = {
                    "seq": seq,
                    "at": at,
                    "kind": kind,
                    "actor": actor,
                    "detail": detail,
                    "prev": prev,
                    "hash": digest,
                }
                outbox.append_in(conn, self.node_id, "audit", actor or "", entry, {})
            conn.execute("COMMIT")
            return int(seq)
        finally:
            conn.close()

    def entries(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest entries, newest first."""
        if not self.path.exists():
            return []
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT seq, at, kind, actor, detail FROM audit_log ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        finally:
            conn.close()
        return [{"seq": r[0], "at": r[1], "kind": r[2], "actor": r[3], "detail": r[4]} for r in rows]

    def verify(self) -> tuple[int, AuditProblem | None]:
        """(entries checked, first problem or None) over the whole chain."""
        if not self.path.exists():
            return 0, None
        conn = self._connect()
        try:
            prev = GENESIS
            expected_seq = 1
            n = 0
            for seq, at, kind, actor, detail, stored_prev, stored in conn.execute(
                "SELECT seq, at, kind, actor, detail, prev, hash FROM audit_log ORDER BY seq"
            ):
                n += 1
                if seq != expected_seq:
                    return n, AuditProblem(seq, f"entry {expected_seq} is missing")
                if stored_prev != prev:
                    return n, AuditProblem(seq, "the link to the previous entry is broken")
                if _entry_hash(prev, seq, at, kind, actor, detail.encode("utf-8")) != stored:
                    return n, AuditProblem(seq, "the entry was altered")
                prev = stored
                expected_seq += 1
            return n, None
        finally:
            conn.close()
