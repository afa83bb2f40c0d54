"""The node's replica: the registry tables plus the cursor, in one SQLite file.

Crash safety rests on two rules:

1. A feed batch and the cursor/chain it advances to are written in one transaction, so after
   any crash the file holds exactly the registry at its cursor (WAL, synchronous=NORMAL: a
   power loss may lose the newest transactions, never half of one).
2. A bootstrap never writes into the live file. It builds a new file next to it and then
   switches a one-line pointer file (``replica/CURRENT``) with an atomic rename; a crash before
   the switch leaves the old replica (or none), after it the new one. Old files are removed
   only once the pointer no longer names them. Distinct file names also keep SQLite from ever
   pairing a new database with an old ``-wal`` file.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgenode import registry, wire
from edgenode.durable import fsync_dir, utcnow
from edgenode.errors import StoreError, WireError
from edgenode.search import index as search_index

META_SQL = "CREATE TABLE IF NOT EXISTS replica_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)"


class Replica:
    """The node's replica folder (``DATA/replica/``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pointer = folder / "CURRENT"

    def current_file(self) -> Path | None:
        """The live database file, or None before the first bootstrap."""
        try:
            name = self.pointer.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        if not name or "/" in name or not name.endswith(".db"):
            raise StoreError("replica/CURRENT is damaged; re-bootstrap with `edgenode node sync --once`")
        path = self.folder / name
        if not path.exists():
            raise StoreError(f"replica file {name} named by replica/CURRENT is missing")
        return path

    def exists(self) -> bool:
        """True once a bootstrap has completed."""
        return self.current_file() is not None

    def ensure_search_index(self) -> None:
        """Build the search index of a replica made before it existed (no-op otherwise)."""
        if not self.exists():
            return
        with self.session() as conn:
            have = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'search_text'").fetchone()
            if have:
                return
            conn.execute("BEGIN IMMEDIATE")
            search_index.create(conn)
            search_index.build(conn)
            conn.execute("COMMIT")

    def connect(self) -> sqlite3.Connection:
        """A connection to the live replica; `StoreError` before the first bootstrap."""
        path = self.current_file()
        if path is None:
            raise StoreError(
                "this node has no replica yet: run `edgenode node sync --once` or `node bootstrap --from FILE`"
            )
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def session(self) -> Iterator[sqlite3.Connection]:
        """A connection closed on exit."""
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    @staticmethod
    def meta(conn: sqlite3.Connection) -> dict[str, str]:
        """Cursor, chain, lg_code, snapshot info of the replica."""
        return dict(conn.execute("SELECT k, v FROM replica_meta").fetchall())

    def position(self) -> tuple[int, str] | None:
        """(cursor, chain) of the live replica, or None before bootstrap."""
        if not self.exists():
            return None
        with self.session() as conn:
            m = self.meta(conn)
        return int(m["cursor"]), m["chain"]

    # ------------------------------------------------------------ following the feed

    def apply_batch(self, batch: wire.Batch) -> int:
        """Apply a verified batch and move the cursor, atomically; return the new cursor.

        The cursor is re-read under the write lock, so two processes (a `node serve` and a
        `node sync --once`) can never apply the same batch twice.
        """
        conn = self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                m = self.meta(conn)
                if int(m["cursor"]) != batch.first_seq - 1 or m["chain"] != batch.header["prev_chain"]:
                    raise WireError(
                        f"batch starts at {batch.first_seq} but the replica is at {m['cursor']}"
                        " (another process applied it meanwhile)"
                    )
                touched: set[str] = set()
                for tx in batch.txs:
                    touched |= registry.apply_ops(conn, tx["ops"])
                search_index.reindex(conn, sorted(touched))
                self._set(
                    conn,
                    cursor=str(batch.last_seq),
                    chain=batch.chain,
                    applied_at=utcnow(),
                    last_tx_at=str(batch.header.get("last_at") or ""),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()
        return batch.last_seq

    @staticmethod
    def _set(conn: sqlite3.Connection, **values: str) -> None:
        conn.executemany("INSERT OR REPLACE INTO replica_meta (k, v) VALUES (?, ?)", list(values.items()))

    def replace_bucket(self, bucket: int, buckets: int, seq: int, chain: str, rows: list[dict[str, Any]]) -> int:
        """Repair one digest bucket from the hub's rows, if the replica is still at `seq`."""
        conn = self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                m = self.meta(conn)
                if int(m["cursor"]) != seq or m["chain"] != chain:
                    raise WireError("the replica moved while repairing; verify again")
                before = {r[0] for r in conn.execute("SELECT atena_no FROM person")}
                n = registry.replace_bucket(conn, bucket, buckets, rows)
                after = {r[0] for r in conn.execute("SELECT atena_no FROM person")}
                # a repaired bucket may have changed anyone in it: reindex its people
                search_index.reindex(
                    conn, sorted(a for a in before | after if registry.bucket_of("ph", a, buckets) == bucket)
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return n
        finally:
            conn.close()

    # ------------------------------------------------------------ bootstrap

    def install_snapshot(self, manifest: wire.Manifest, lines: Iterable[bytes], key_id: str) -> Path:
        """Build a new replica file from snapshot rows and switch to it atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"replica-{manifest.seq}-{secrets.token_hex(4)}.db"
        path = self.folder / name
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            # The file is private until the pointer switch, so build it without a journal and
            # fsync once at the end: a crash here only leaves an unreferenced file to delete.
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("PRAGMA cache_size=-200000")
            conn.execute(f"PRAGMA page_size={registry.PAGE_SIZE}")
            conn.executescript(
                registry.SCHEMA_SQL.replace("CREATE INDEX IF NOT EXISTS person_household ON person (household_no);", "")
            )
            conn.execute(META_SQL)
            conn.execute("BEGIN")
            counts = registry.bulk_load(conn, lines, int(manifest.header.get("rows") or 0))
            search_index.create(conn)
            search_index.build(conn)
            conn.execute("CREATE INDEX person_household ON person (household_no)")
            self._set(
                conn,
                lg_code=str(manifest.header["lg_code"]),
                cursor=str(manifest.seq),
                chain=manifest.chain,
                snapshot_seq=str(manifest.seq),
                snap_id=manifest.snap_id,
                schema=str(manifest.header["schema"]),
                bootstrapped_at=utcnow(),
                applied_at=utcnow(),
                hub_key_id=key_id,
                rows=str(counts),
            )
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        tmp = self.folder / "CURRENT.tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.pointer)
        fsync_dir(self.folder)
        self.cleanup()
        return path

    def cleanup(self) -> None:
        """Delete replica files the pointer does not name (left by a crash or a re-bootstrap)."""
        if not self.folder.exists():
            return
        live = self.current_file()
        for p in self.folder.iterdir():
            if p.name.startswith("replica-") and (live is None or not p.name.startswith(live.name)):
                p.unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file, or None if the file is missing or unreadable."""
    try:
        obj = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None
