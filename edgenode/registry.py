"""The replicated registry: tables, change operations, export and digest.

The hub's per-tenant database and the node's replica hold the same tables and change only by
`apply_ops`, so the hub's registry *is* the result of its own change log and a node that applied
the same log holds byte-identical rows.

Tables (all rows hold canonical JSON text, exactly as hashed and exported):
- ``person_history (atena_no, rireki_no, record)``: the standard's append-only history;
- ``person``: the current projection (highest 履歴番号 per person) with search columns;
- ``staff (user, record)``: clerk accounts with argon2 hashes, synced for offline login;
- ``restriction (id, atena_no, household_no, record)``: 支援措置 and 抑止.

An op is one of (``t`` is the table: ``ph`` person history, ``st`` staff, ``rs`` restriction)::

    {"t":"ph","a":ATENA,"r":RIREKI,"v":{record}}                full history row
    {"t":"ph","a":ATENA,"r":RIREKI,"b":BASE,"d":{...},"x":[...]} row = row BASE + d - x
    {"t":"ph","a":ATENA,"r":RIREKI,"del":true}                  remove a history row
    {"t":"st"|"rs","k":KEY,"v":{record}} / {"t":..,"k":KEY,"del":true}
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import orjson

from edgenode.errors import RecordError, StoreError, WireError
from edgenode.resident import validate_record, validate_restriction, validate_staff
from edgenode.sqlconn import DB
from edgenode.wire import canonical_json

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS person_history (
  atena_no  TEXT NOT NULL,
  rireki_no INTEGER NOT NULL,
  record    TEXT NOT NULL,
  PRIMARY KEY (atena_no, rireki_no)
);
CREATE TABLE IF NOT EXISTS person (
  atena_no       TEXT PRIMARY KEY,
  rireki_no      INTEGER NOT NULL,
  household_no   TEXT NOT NULL,
  status         TEXT NOT NULL,
  name           TEXT NOT NULL,
  kana           TEXT,
  birth_date_iso TEXT,
  address        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS person_household ON person (household_no);
CREATE TABLE IF NOT EXISTS staff (
  user   TEXT PRIMARY KEY,
  record TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS restriction (
  id           TEXT PRIMARY KEY,
  atena_no     TEXT,
  household_no TEXT,
  record       TEXT NOT NULL
) WITHOUT ROWID;
"""

#: Records are ~1 KB: large pages keep them out of overflow chains (measured 4x faster inserts).
PAGE_SIZE = 16384

PERSON_COLS = "atena_no, rireki_no, household_no, status, name, kana, birth_date_iso, address"


def create_schema(conn: DB) -> None:
    """Create the replicated tables if they are missing (idempotent)."""
    conn.executescript(SCHEMA_SQL)


def person_row(rec: dict[str, Any]) -> tuple[Any, ...]:
    return (
        rec["atena_no"],
        rec["rireki_no"],
        rec["household_no"],
        rec["status"],
        rec["name"],
        rec.get("kana"),
        rec.get("birth_date_iso"),
        rec["address"],
    )


def _history_row(conn: DB, atena: str, rireki: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT record FROM person_history WHERE atena_no = ? AND rireki_no = ?", (atena, rireki)
    ).fetchone()
    return None if row is None else dict(orjson.loads(row[0]))


def materialize(conn: DB, op: dict[str, Any]) -> dict[str, Any] | None:
    """The full record a ``ph`` op puts (resolving a delta against its base row), or None."""
    if op.get("del"):
        return None
    if "v" in op:
        rec = op["v"]
        if not isinstance(rec, dict):
            raise WireError("op value is not an object")
        return rec
    base = _history_row(conn, op["a"], op["b"])
    if base is None:
        raise WireError(f"delta op for {op['a']} refers to missing 履歴番号 {op.get('b')}")
    d = op.get("d", {})
    x = op.get("x", [])
    if not isinstance(d, dict) or not isinstance(x, list):
        raise WireError("delta op is malformed")
    base.update(d)
    for k in x:
        base.pop(k, None)
    base["rireki_no"] = op["r"]
    return base


def delta_op(prev: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The smallest op that turns history row `prev` into the next row `new`."""
    d = {k: v for k, v in new.items() if k != "rireki_no" and prev.get(k, _MISSING) != v}
    x = sorted(k for k in prev if k not in new)
    op: dict[str, Any] = {"t": "ph", "a": new["atena_no"], "r": new["rireki_no"], "b": prev["rireki_no"], "d": d}
    if x:
        op["x"] = x
    return op


_MISSING = object()


def apply_ops(conn: DB, ops: Iterable[Any]) -> set[str]:
    """Apply ops inside the caller's transaction; return the 宛名番号 whose history changed.

    Every value is validated before it is written; a bad op raises and the caller rolls back.
    """
    touched: set[str] = set()
    for op in ops:
        if not isinstance(op, dict):
            raise WireError("op is not an object")
        t = op.get("t")
        if t == "ph":
            atena, rireki = op.get("a"), op.get("r")
            if not isinstance(atena, str) or not isinstance(rireki, int):
                raise WireError("person op lacks 宛名番号/履歴番号")
            rec = materialize(conn, op)
            if rec is None:
                conn.execute("DELETE FROM person_history WHERE atena_no = ? AND rireki_no = ?", (atena, rireki))
            else:
                if rec.get("atena_no") != atena or rec.get("rireki_no") != rireki:
                    raise WireError(f"op key ({atena}, {rireki}) does not match its record")
                validate_record(rec)
                conn.execute(
                    "INSERT OR REPLACE INTO person_history (atena_no, rireki_no, record) VALUES (?, ?, ?)",
                    (atena, rireki, canonical_json(rec)),
                )
            touched.add(atena)
        elif t in ("st", "rs"):
            key = op.get("k")
            if not isinstance(key, str) or not key:
                raise WireError("op lacks its key")
            if op.get("del"):
                table, col = ("staff", "user") if t == "st" else ("restriction", "id")
                conn.execute(f"DELETE FROM {table} WHERE {col} = ?", (key,))
                continue
            val = op.get("v")
            if t == "st":
                validate_staff(val)
                assert isinstance(val, dict)
                if val["user"] != key:
                    raise WireError("staff op key does not match its record")
                conn.execute("INSERT OR REPLACE INTO staff (user, record) VALUES (?, ?)", (key, canonical_json(val)))
            else:
                validate_restriction(val)
                assert isinstance(val, dict)
                if val["id"] != key:
                    raise WireError("restriction op key does not match its record")
                conn.execute(
                    "INSERT OR REPLACE INTO restriction (id, atena_no, household_no, record) VALUES (?, ?, ?, ?)",
                    (key, val.get("atena_no"), val.get("household_no"), canonical_json(val)),
                )
        else:
            raise WireError(f"unknown op table {t!r}")
    refresh_current(conn, touched)
    return touched


def refresh_current(conn: DB, atenas: Iterable[str]) -> None:
    """Recompute the current projection of each person from their highest 履歴番号."""
    for atena in atenas:
        row = conn.execute(
            "SELECT record FROM person_history WHERE atena_no = ? ORDER BY rireki_no DESC LIMIT 1",
            (atena,),
        ).fetchone()
        if row is None:
            conn.execute("DELETE FROM person WHERE atena_no = ?", (atena,))
        else:
            conn.execute(
                f"INSERT OR REPLACE INTO person ({PERSON_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                person_row(orjson.loads(row[0])),
            )


def current_record(conn: DB, atena: str) -> dict[str, Any] | None:
    """The current record of one person, or None."""
    row = conn.execute(
        "SELECT h.record FROM person p JOIN person_history h"
        " ON h.atena_no = p.atena_no AND h.rireki_no = p.rireki_no WHERE p.atena_no = ?",
        (atena,),
    ).fetchone()
    return None if row is None else dict(orjson.loads(row[0]))


def iter_current(conn: DB) -> Iterator[str]:
    """Canonical JSON of every current record (除票 included), sorted by 宛名番号."""
    cur = conn.execute(
        "SELECT h.record FROM person p JOIN person_history h"
        " ON h.atena_no = p.atena_no AND h.rireki_no = p.rireki_no ORDER BY p.atena_no"
    )
    for (rec,) in cur:
        yield rec


def export_lines(conn: DB) -> Iterator[str]:
    """The export format: one current record a line, keys sorted, contract keys always present."""
    from edgenode.resident import EXPORT_KEYS

    for rec in iter_current(conn):
        obj = orjson.loads(rec)
        missing = [k for k in EXPORT_KEYS if k not in obj]
        if missing:
            for k in missing:
                obj[k] = None
            rec = canonical_json(obj)
        yield rec


def iter_snapshot_rows(conn: DB) -> Iterator[bytes]:
    """Every replicated row as a full put op (canonical JSON bytes), in a fixed order."""
    for atena, rireki, rec in conn.execute(
        "SELECT atena_no, rireki_no, record FROM person_history ORDER BY atena_no, rireki_no"
    ):
        yield f'{{"a":{json.dumps(atena)},"r":{rireki},"t":"ph","v":{rec}}}'.encode()
    for key, rec in conn.execute("SELECT user, record FROM staff ORDER BY user"):
        yield f'{{"k":{json.dumps(key)},"t":"st","v":{rec}}}'.encode()
    for key, rec in conn.execute("SELECT id, record FROM restriction ORDER BY id"):
        yield f'{{"k":{json.dumps(key)},"t":"rs","v":{rec}}}'.encode()


# ---------------------------------------------------------------- digest (anti-entropy)


def bucket_of(table: str, key: str, buckets: int) -> int:
    """The digest bucket of a row: by table and key, so a person's whole history shares one."""
    return zlib.crc32(f"{table}:{key}".encode()) % buckets


def _iter_keyed_rows(conn: DB) -> Iterator[tuple[str, str, str, str]]:
    """(table, bucket key, row key, canonical record) for every replicated row."""
    for atena, rireki, rec in conn.execute(
        "SELECT atena_no, rireki_no, record FROM person_history ORDER BY atena_no, rireki_no"
    ):
        yield "ph", atena, f"{atena}:{rireki}", rec
    for key, rec in conn.execute("SELECT user, record FROM staff ORDER BY user"):
        yield "st", key, key, rec
    for key, rec in conn.execute("SELECT id, record FROM restriction ORDER BY id"):
        yield "rs", key, key, rec


def compute_digest(conn: DB, buckets: int) -> list[str]:
    """One SHA-256 per bucket over that bucket's rows in key order (hex)."""
    if not 1 <= buckets <= 65536:
        raise StoreError("digest bucket count must be between 1 and 65536")
    hashers = [hashlib.sha256() for _ in range(buckets)]
    for table, bkey, rkey, rec in _iter_keyed_rows(conn):
        h = hashers[bucket_of(table, bkey, buckets)]
        h.update(f"{table}\x1f{rkey}\x1f".encode())
        h.update(rec.encode())
        h.update(b"\x1e")
    return [h.hexdigest() for h in hashers]


def bucket_rows(conn: DB, bucket: int, buckets: int) -> Iterator[bytes]:
    """The put ops of every row in one bucket (what a node needs to repair it)."""
    for line in iter_snapshot_rows(conn):
        op = orjson.loads(line)
        key = op["a"] if op["t"] == "ph" else op["k"]
        if bucket_of(op["t"], key, buckets) == bucket:
            yield line


def replace_bucket(conn: DB, bucket: int, buckets: int, rows: Iterable[dict[str, Any]]) -> int:
    """Inside the caller's transaction, drop our rows of `bucket` and put the given ones."""
    stale_people: set[str] = set()
    for table, bkey, rkey, _rec in list(_iter_keyed_rows(conn)):
        if bucket_of(table, bkey, buckets) != bucket:
            continue
        if table == "ph":
            atena, rireki = rkey.rsplit(":", 1)
            conn.execute("DELETE FROM person_history WHERE atena_no = ? AND rireki_no = ?", (atena, int(rireki)))
            stale_people.add(atena)
        elif table == "st":
            conn.execute("DELETE FROM staff WHERE user = ?", (rkey,))
        else:
            conn.execute("DELETE FROM restriction WHERE id = ?", (rkey,))
    ops = list(rows)
    for op in ops:
        key = op.get("a") if op.get("t") == "ph" else op.get("k")
        if not isinstance(key, str) or bucket_of(str(op.get("t")), key, buckets) != bucket:
            raise WireError("repair rows do not belong to the requested bucket")
    touched = apply_ops(conn, ops)
    refresh_current(conn, stale_people - touched)
    return len(ops)


_PH_MARK = b',"t":"ph","v":'
#: Above this many rows, records are validated in a second process while this one inserts.
PARALLEL_ROWS = 50_000
_BATCH = 5_000


def validate_lines(lines: list[bytes], first_row: int) -> str | None:
    """Validate the records of put-op lines; the first problem as a message, or None.

    Runs in a worker process during large bulk loads (module-level so it can be pickled).
    """
    for i, line in enumerate(lines):
        try:
            op = orjson.loads(line)
            t = op.get("t")
            if t == "ph":
                validate_record(op.get("v"))
            elif t == "st":
                validate_staff(op.get("v"))
            elif t == "rs":
                validate_restriction(op.get("v"))
        except (ValueError, RecordError) as exc:
            return f"row {first_row + i}: {exc}"
    return None


class _Validator:
    """Validates batches of lines inline, or in one spawned worker process (two cores).

    If the worker cannot start or dies, the batches it had are validated here instead: a
    broken pool may cost speed, never a check.
    """

    def __init__(self, parallel: bool) -> None:
        self.pool: ProcessPoolExecutor | None = None
        if parallel:
            self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self.pending: list[tuple[Future[str | None], list[bytes], int]] = []

    def submit(self, lines: list[bytes], first_row: int) -> None:
        if self.pool is None:
            self._raise(validate_lines(lines, first_row))
            return
        try:
            fut = self.pool.submit(validate_lines, lines, first_row)
        except BrokenProcessPool:
            self.close()
            self._raise(validate_lines(lines, first_row))
            return
        self.pending.append((fut, lines, first_row))
        while len(self.pending) > 4 or (self.pending and self.pending[0][0].done()):
            self._collect(*self.pending.pop(0))

    def _collect(self, fut: Future[str | None], lines: list[bytes], first_row: int) -> None:
        try:
            error = fut.result()
        except BrokenProcessPool:
            error = validate_lines(lines, first_row)
        self._raise(error)

    def finish(self) -> None:
        while self.pending:
            self._collect(*self.pending.pop(0))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    @staticmethod
    def _raise(error: str | None) -> None:
        if error is not None:
            raise RecordError(error)


def bulk_load(conn: DB, lines: Iterable[bytes], expected_rows: int = 0) -> int:
    """Insert full put-op lines (sorted by 宛名番号, 履歴番号) into empty tables; count them.

    The fast path for a bootstrap or an initial migration: the current projection is built
    from the last row of each person as the rows stream by, and the record text is taken as it
    stands in the canonical line (no second serialization). Every record is validated before
    this returns; large loads validate in a second process. The caller commits only if this
    returns, so an invalid row anywhere leaves nothing behind.
    """
    parallel = expected_rows >= PARALLEL_ROWS and (os.cpu_count() or 1) > 1
    validator = _Validator(parallel)
    try:
        n = _bulk_insert(conn, lines, validator)
        validator.finish()
    finally:
        validator.close()
    return n


def _bulk_insert(conn: DB, lines: Iterable[bytes], validator: _Validator) -> int:
    n = 0
    last: dict[str, Any] | None = None
    hist: list[tuple[str, int, str | bytes]] = []
    people: list[tuple[Any, ...]] = []
    staff: list[tuple[str, str]] = []
    restrictions: list[tuple[Any, ...]] = []
    batch: list[bytes] = []
    prev_key: tuple[str, int] = ("", -1)

    def flush() -> None:
        # record text arrives as UTF-8 bytes; SQLite casts it to TEXT without a Python decode
        conn.executemany(
            "INSERT INTO person_history (atena_no, rireki_no, record) VALUES (?, ?, CAST(? AS TEXT))", hist
        )
        conn.executemany(f"INSERT INTO person ({PERSON_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", people)
        hist.clear()
        people.clear()

    for line in lines:
        n += 1
        try:
            op = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise WireError(f"row {n} is not valid JSON") from exc
        if type(op) is not dict:
            raise WireError(f"row {n} is not an object")
        t = op.get("t")
        val = op.get("v")
        if type(val) is not dict:
            raise WireError(f"row {n} has no record")
        batch.append(line)
        if t == "ph":
            atena, rireki = op.get("a"), op.get("r")
            if type(atena) is not str or type(rireki) is not int:
                raise WireError(f"row {n} lacks 宛名番号/履歴番号")
            key = (atena, rireki)
            if val.get("atena_no") != atena or val.get("rireki_no") != rireki:
                raise WireError(f"row {n}: key {key} does not match its record")
            if key <= prev_key:
                raise WireError(f"row {n}: rows are not in key order")
            if last is not None and last["atena_no"] != atena:
                people.append(person_row(last))
            prev_key = key
            last = val
            mark = line.find(_PH_MARK)
            text = line[mark + len(_PH_MARK) : -1] if mark > 0 and line.endswith(b"}") else None
            hist.append((atena, rireki, text if text is not None else canonical_json(val)))
            if len(hist) >= _BATCH:
                flush()
        elif t == "st":
            staff.append((str(val.get("user")), canonical_json(val)))
        elif t == "rs":
            restrictions.append((str(val.get("id")), val.get("atena_no"), val.get("household_no"), canonical_json(val)))
        else:
            raise WireError(f"row {n}: unknown row type {t!r}")
        if len(batch) >= _BATCH:
            validator.submit(batch, n - len(batch) + 1)
            batch = []
    if last is not None:
        people.append(person_row(last))
    flush()
    if batch:
        validator.submit(batch, n - len(batch) + 1)
    conn.executemany("INSERT INTO staff (user, record) VALUES (?, ?)", staff)
    conn.executemany("INSERT INTO restriction (id, atena_no, household_no, record) VALUES (?, ?, ?, ?)", restrictions)
    return n
