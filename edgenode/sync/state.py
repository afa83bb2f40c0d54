"""The node's own state file (``node.db``): sync status that `node status` reports.

Kept apart from the replica so that a re-bootstrap (which swaps the replica file) never loses
it, and so that later the outbox and audit log can live here with full durability.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from edgenode.durable import open_db

SQL = "CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v TEXT NOT NULL)"


class NodeState:
    """Key/value status written by the sync engine and read by `status`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        return open_db(self.path, SQL)

    def update(self, **values: Any) -> None:
        """Set several keys in one transaction (values are stored as JSON)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT OR REPLACE INTO state (k, v) VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in values.items()],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    def all(self) -> dict[str, Any]:
        """Every key and value."""
        if not self.path.exists():
            return {}
        conn = self._connect()
        try:
            return {k: json.loads(v) for k, v in conn.execute("SELECT k, v FROM state")}
        finally:
            conn.close()

    def push_error(self, entry: dict[str, Any], keep: int = 20, **values: Any) -> None:
        """Add an error to the bounded ``recent_errors`` list (a repeat of the newest is counted).

        `values` are set in the same transaction, so readers never see one without the other.
        """
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT v FROM state WHERE k = 'recent_errors'").fetchone()
            errors: list[dict[str, Any]] = json.loads(row[0]) if row else []
            if errors and errors[0].get("error") == entry.get("error"):
                errors[0] = {**errors[0], "last_at": entry.get("at"), "count": int(errors[0].get("count", 1)) + 1}
            else:
                errors.insert(0, {**entry, "last_at": entry.get("at"), "count": 1})
            conn.execute(
                "INSERT OR REPLACE INTO state (k, v) VALUES ('recent_errors', ?)",
                (json.dumps(errors[:keep], ensure_ascii=False),),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO state (k, v) VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in values.items()],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
