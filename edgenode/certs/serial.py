"""発行番号 (spec 5.5) and the durable per-node counter behind it.

Format: 発行年月日・市区町村名・発行端末名番号・発行プリンタ番号・連番・ページ数／総ページ数, e.g.
``20261127 門川町 kadogawa-honcho-1 プリンタ001 000123 1/2``. Nodes never coordinate: the
terminal name (the node id) makes numbers from different nodes differ, and the sequence is this
node's own counter, so the pair (terminal, sequence) is unique everywhere. Each copy (通) takes
its own sequence number; the pages of one copy share it and differ in p/N.

The counter is one row in a SQLite file. `reserve` commits the new high-water mark with
synchronous=FULL before it returns, so a number handed out is on disk first: after a crash or
power cut the counter resumes above it. A crash between commit and printing leaves a gap,
never a duplicate; gaps are what spoiled sheets (処分情報) look like anyway.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
import threading
from pathlib import Path

from edgenode.certs.config import CertConfig
from edgenode.errors import StoreError

_SCHEMA = "CREATE TABLE IF NOT EXISTS cert_serial (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)"


def format_serial(config: CertConfig, day: _dt.date, sequence: int, page: int, pages: int) -> str:
    """The 発行番号 printed on page `page` of `pages` of the copy numbered `sequence`."""
    return (
        f"{day:%Y%m%d} {config.municipality} {config.terminal_name} プリンタ{config.printer_no:03d} "
        f"{sequence:0{config.serial_digits}d} {page}/{pages}"
    )


class SerialCounter:
    """This node's durable sequence of 発行番号 (safe across processes sharing the file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # one connection, shared by the threads of a server
        try:
            # autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT below
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO cert_serial (id, last) VALUES (1, 0)")
        except sqlite3.Error as exc:
            raise StoreError(f"発行番号の保存先を開けません: {self.path} ({exc})") from exc

    def reserve(self, n: int) -> list[int]:
        """`n` new sequence numbers, durably recorded as used before they are returned."""
        if n < 1:
            raise ValueError("reserve needs n >= 1")
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute(
                        "UPDATE cert_serial SET last = last + ? WHERE id = 1 RETURNING last", (n,)
                    ).fetchall()[0]
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"発行番号を採番できません: {self.path} ({exc})") from exc
        last = int(row[0])
        return list(range(last - n + 1, last + 1))

    def last(self) -> int:
        """The highest number handed out so far (0 before the first)."""
        with self._lock:
            (last,) = self._db.execute("SELECT last FROM cert_serial WHERE id = 1").fetchone()
        return int(last)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> SerialCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
