"""The shape of a database connection that shared registry and hub code relies on.

`sqlite3.Connection` has it; so does the hub's PostgreSQL connection (`edgenode.hub.pg`),
which translates the SQLite dialect this code is written in. Code typed against `DB` runs on
both: ``execute`` returns something with ``fetchone``/``fetchall`` that can be iterated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class DB(Protocol):
    """A DB-API-like connection in autocommit mode; transactions are opened with statements."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any:
        """Run one statement; the result can be fetched from or iterated."""

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        """Run one statement once per parameter row."""

    def executescript(self, sql_script: str, /) -> Any:
        """Run several statements (schema scripts) without parameters."""

    def close(self) -> None:
        """Release the connection."""
