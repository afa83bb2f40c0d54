"""A real replica file (WAL) with the registry tables and the search index."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgenode import registry
from edgenode.search import index


def put(conn: sqlite3.Connection, *records: dict[str, Any]) -> set[str]:
    """Apply full history rows the way the sync path does, then reindex who they touched."""
    conn.execute("BEGIN IMMEDIATE")
    ops = [{"t": "ph", "a": r["atena_no"], "r": r["rireki_no"], "v": r} for r in records]
    touched = registry.apply_ops(conn, ops)
    index.reindex(conn, touched)
    conn.execute("COMMIT")
    return touched


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "replica.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    registry.create_schema(conn)
    index.create(conn)
    try:
        yield conn
    finally:
        conn.close()
