"""Small durability and time helpers shared by hub and node."""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from edgenode.sqlconn import DB

C = TypeVar("C", bound=DB)


def utcnow() -> str:
    """Current UTC time as ISO 8601 with microseconds and a Z."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str) -> _dt.datetime:
    """Parse a time written by `utcnow`."""
    return _dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.UTC)


def fsync_dir(path: Path) -> None:
    """fsync a directory so that renames inside it survive power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` so that a crash leaves either the old or the new content."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_tree(path: Path) -> None:
    """Delete a folder if it exists."""
    shutil.rmtree(path, ignore_errors=True)


def open_db(path: Path, *schema: str, synchronous: str = "FULL") -> sqlite3.Connection:
    """A SQLite connection in WAL mode, durable on commit, with `schema` statements applied.

    Autocommit mode (``isolation_level=None``): callers open their transactions explicitly.
    """
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    for statement in schema:
        conn.executescript(statement)
    return conn


@contextmanager
def write_tx(conn: C) -> Iterator[C]:
    """An immediate (write-locked) transaction, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def pid_alive(pid: object) -> bool:
    """Whether a process id (as stored in a state file; anything else is False) names a live process."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True
