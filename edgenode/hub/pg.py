"""The hub on PostgreSQL (psycopg 3): schemas, pooled connections, and a SQLite-dialect shim.

Layout: the hub tables (tenant, token, node) live in schema ``edgenode_hub``; each municipality
gets its own schema ``t_<lg_code>`` holding exactly the tables its SQLite file would hold. A
schema per tenant (rather than an ``lg_code`` column on every table) keeps the registry code and
its queries identical on both backends (a connection's ``search_path`` picks the tenant), makes a
token's tenant boundary a schema boundary, and lets one municipality be dumped, restored or
dropped on its own (``pg_dump -n t_454214``).

`PgConn` accepts the SQLite dialect the hub is written in and translates it once per statement
text: ``?`` placeholders, ``INSERT OR IGNORE``/``OR REPLACE`` (to ``ON CONFLICT``, the key read
from the catalog), ``BLOB``/``INTEGER``/``WITHOUT ROWID`` in DDL, ``TEXT`` columns with the "C"
collation (so ``ORDER BY`` sorts by code point exactly as SQLite does: snapshot order and digests
must match the nodes' SQLite byte for byte), and the ``user`` column of ``staff``.

Transactions keep SQLite's meaning:

- ``BEGIN IMMEDIATE`` (every write transaction, via `edgenode.durable.write_tx`) becomes a READ
  COMMITTED transaction that first takes a transaction-scoped advisory lock keyed by the
  schema. Writers of one tenant therefore run one at a time, in whichever process, exactly as
  under SQLite's write lock; the change log's next sequence is read *after* the lock (READ
  COMMITTED reads the latest commit), and the lock is released only once the commit is
  visible. So sequences are gap-free and in commit order per tenant, with many processes.
- plain ``BEGIN`` (the read transactions of feed, digest, export and snapshots) becomes
  REPEATABLE READ, READ ONLY: one consistent view at one sequence while writes continue.

Every update of a tenant's head fires ``pg_notify('edgenode_head', '<lg_code>:<head>')`` from a
trigger, delivered at commit, which is what wakes long-polls in every hub process
(`edgenode.hub.listen`).
"""

from __future__ import annotations

import atexit
import re
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from edgenode.errors import StoreError, StoreUnavailable
from edgenode.sqlconn import DB

HUB_SCHEMA = "edgenode_hub"
CHANNEL = "edgenode_head"
#: Rows fetched per round trip when a large result (snapshot, digest, export) is iterated.
ITER_ROWS = 2000
CONNECT_TIMEOUT = 10.0

HUB_EXTRA_SQL = f"""
CREATE OR REPLACE FUNCTION {HUB_SCHEMA}.notify_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{CHANNEL}', substr(TG_TABLE_SCHEMA, 3) || ':' || NEW.v);
  RETURN NULL;
END $$
"""
TENANT_EXTRA_SQL = f"""
CREATE OR REPLACE TRIGGER meta_head_notify AFTER UPDATE ON meta FOR EACH ROW
  WHEN (NEW.k = 'head' AND OLD.v IS DISTINCT FROM NEW.v) EXECUTE FUNCTION {HUB_SCHEMA}.notify_head()
"""


def tenant_schema(lg_code: str) -> str:
    """The schema of one municipality (codes are validated as 6 digits before they get here)."""
    if not (len(lg_code) == 6 and lg_code.isdigit()):
        raise StoreError(f"not a municipality code: {lg_code!r}")
    return f"t_{lg_code}"


def safe_target(url: str) -> str:
    """host:port/dbname of a URL, for messages: never the password."""
    try:
        d = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable PostgreSQL URL)"
    return f"postgresql://{d.get('host') or 'localhost'}:{d.get('port') or 5432}/{d.get('dbname') or ''}"


# ---------------------------------------------------------------- the dialect shim


@dataclass(frozen=True)
class Statement:
    """One SQLite statement as PostgreSQL runs it."""

    text: str
    is_query: bool = False
    upsert_table: str | None = None  # INSERT OR REPLACE: the ON CONFLICT clause needs the table's key
    upsert_cols: tuple[str, ...] = ()
    text_params: bool = False  # CAST(? AS TEXT) of UTF-8 bytes: pass them as str
    lock_write: bool = False  # BEGIN IMMEDIATE
    noop: bool = False  # PRAGMA


_OR_REPLACE = re.compile(r"^\s*INSERT\s+OR\s+REPLACE\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.I | re.S)
_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.I)
_CAST_TEXT = re.compile(r"CAST\(\?\s+AS\s+TEXT\)", re.I)
_USER = re.compile(r'(?<!")\buser\b(?!")')
_DDL = re.compile(r"^\s*(CREATE|ALTER)\s+TABLE\b", re.I)
_TABLE_INFO = re.compile(r"^PRAGMA\s+table_info\(\s*['\"]?(\w+)['\"]?\s*\)$", re.I)
#: SQLite's ``PRAGMA table_info`` rows (cid, name, type, notnull, dflt_value, pk), for schema upgrades.
TABLE_INFO_SQL = (
    "SELECT c.ordinal_position - 1, c.column_name::text, upper(c.data_type::text), (c.is_nullable = 'NO')::int,"
    " c.column_default::text, 0 FROM information_schema.columns c"
    " WHERE c.table_schema = current_schema() AND c.table_name = %s ORDER BY c.ordinal_position"
)


@lru_cache(maxsize=2048)
def translate(statement: str) -> Statement:
    """The PostgreSQL form of one SQLite-dialect statement (cached by text)."""
    s = statement.strip().rstrip(";")
    head = s[:24].upper()
    if head.startswith("PRAGMA"):
        info = _TABLE_INFO.match(s)
        if info:  # the one PRAGMA with an answer the code may use: columns, to upgrade a table
            return Statement(TABLE_INFO_SQL.replace("%s", f"'{info.group(1)}'"), is_query=True)
        return Statement("", noop=True)
    if head == "BEGIN IMMEDIATE":
        return Statement("BEGIN ISOLATION LEVEL READ COMMITTED", lock_write=True)
    if head in ("BEGIN", "BEGIN DEFERRED", "BEGIN TRANSACTION"):
        return Statement("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    if re.search(r"\bstaff\b", s):
        s = _USER.sub('"user"', s)
    if _DDL.match(s):
        s = re.sub(r"\)\s*WITHOUT\s+ROWID\s*$", ")", s, flags=re.I)
        s = re.sub(r"\bBLOB\b", "BYTEA", s)
        s = re.sub(r"\bINTEGER\b", "BIGINT", s)
        s = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', s)
    text_params = bool(_CAST_TEXT.search(s))
    s = _CAST_TEXT.sub("?", s)
    s = s.replace("%", "%%").replace("?", "%s")
    upsert_table: str | None = None
    cols: tuple[str, ...] = ()
    m = _OR_REPLACE.match(s)
    if m:
        upsert_table = m.group(1)
        cols = tuple(c.strip() for c in m.group(2).split(","))
        s = "INSERT INTO" + s[m.start(1) - 1 :]
    elif _OR_IGNORE.match(s):
        s = _OR_IGNORE.sub("INSERT INTO", s, count=1) + " ON CONFLICT DO NOTHING"
    is_query = head.startswith(("SELECT", "WITH", "VALUES"))
    return Statement(s, is_query, upsert_table, cols, text_params)


_keys: dict[str, tuple[str, ...]] = {}


def _primary_key(raw: psycopg.Connection[Any], table: str) -> tuple[str, ...]:
    """The primary-key columns of a table in the connection's schema (read once per process)."""
    if table not in _keys:
        rows = raw.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
            (table,),
        ).fetchall()
        if not rows:
            raise StoreError(f"INSERT OR REPLACE into {table}: the table has no primary key on PostgreSQL")
        _keys[table] = tuple(str(r[0]) for r in rows)
    return _keys[table]


def _upsert_text(st: Statement, key: tuple[str, ...]) -> str:
    target = ", ".join(f'"{k}"' for k in key)
    rest = [c.strip('"') for c in st.upsert_cols if c.strip('"') not in key]
    if not rest:
        return f"{st.text} ON CONFLICT ({target}) DO NOTHING"
    sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in rest)
    return f"{st.text} ON CONFLICT ({target}) DO UPDATE SET {sets}"


def _params(st: Statement, params: Any) -> Any:
    if st.text_params and params:
        return tuple(p.decode("utf-8") if isinstance(p, bytes | bytearray) else p for p in params)
    return params


class _Query:
    """A SELECT not run yet: fetched whole on ``fetchone``/``fetchall``, streamed when iterated.

    Iterating inside a transaction uses a server-side cursor, so a 3.8-million-row snapshot or
    digest never sits in memory at once and other statements may run between rows.
    """

    def __init__(self, conn: PgConn, text: str, params: Any) -> None:
        self.conn, self.text, self.params = conn, text, params
        self._cur: psycopg.Cursor[Any] | None = None

    def _run(self) -> psycopg.Cursor[Any]:
        if self._cur is None:
            with unavailable_as_store_error(self.conn.backend):
                self._cur = self.conn.raw.execute(self.text, self.params)
        return self._cur

    def fetchone(self) -> Any:
        return self._run().fetchone()

    def fetchall(self) -> list[Any]:
        return self._run().fetchall()

    def __iter__(self) -> Iterator[Any]:
        raw = self.conn.raw
        if raw.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
            yield from self._run()
            return
        self.conn.cursors += 1
        with raw.cursor(name=f"edgenode_{self.conn.cursors}") as cur:
            cur.itersize = ITER_ROWS
            cur.execute(self.text, self.params)
            yield from cur


@contextmanager
def unavailable_as_store_error(backend: PostgresBackend) -> Iterator[None]:
    """A lost or refused server connection becomes `StoreUnavailable` (the hub answers 503)."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"PostgreSQL at {backend.describe()} is unavailable: {type(exc).__name__}") from exc


_schema_of: weakref.WeakKeyDictionary[psycopg.Connection[Any], str] = weakref.WeakKeyDictionary()
_scripts_done: set[tuple[str, str, str]] = set()
_scripts_guard = threading.Lock()


class PgConn:
    """A pooled PostgreSQL connection bound to one schema, speaking the hub's SQLite dialect."""

    def __init__(self, backend: PostgresBackend, raw: psycopg.Connection[Any], schema: str) -> None:
        self.backend, self.raw, self.schema = backend, raw, schema
        self.cursors = 0
        if _schema_of.get(raw) != schema:
            raw.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            _schema_of[raw] = schema

    def _prepare(self, statement: str) -> tuple[Statement, str]:
        st = translate(statement)
        text = st.text
        if st.upsert_table is not None:
            text = _upsert_text(st, _primary_key(self.raw, st.upsert_table))
        return st, text

    def execute(self, statement: str, parameters: Any = (), /) -> Any:
        st, text = self._prepare(statement)
        if st.noop:
            return _Query(self, "SELECT 1 WHERE false", ())
        params = _params(st, parameters)
        if st.is_query:
            return _Query(self, text, params)
        with unavailable_as_store_error(self.backend):
            if st.lock_write:
                self.raw.execute(text)
                self.raw.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
                return None
            return self.raw.execute(text, params)

    def executemany(self, statement: str, parameters: Iterable[Any], /) -> Any:
        st, text = self._prepare(statement)
        rows = [_params(st, p) for p in parameters]
        if rows:
            with self.raw.cursor() as cur:
                cur.executemany(text, rows)
        return None

    def executescript(self, sql_script: str, /) -> Any:
        """Run a schema script; the same script on the same schema runs once per process."""
        key = (self.backend.url, self.schema, sql_script)
        with _scripts_guard:
            if key in _scripts_done:
                return None
        for part in sql_script.split(";"):
            if part.strip():
                self.execute(part)
        with _scripts_guard:
            _scripts_done.add(key)
        return None

    def run_ddl(self, ddl: str) -> None:
        """Run one PostgreSQL statement as written (functions and triggers)."""
        self.raw.execute(ddl)

    def close(self) -> None:
        raw, self.raw = self.raw, None  # type: ignore[assignment]
        if raw is None:
            return
        try:
            if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not raw.closed:
                raw.rollback()
        except psycopg.OperationalError:
            pass  # a lost connection: the pool discards it
        self.backend.pool().putconn(raw)


_pools: dict[tuple[str, int], ConnectionPool] = {}
_pools_guard = threading.Lock()


def close_pools(url: str | None = None) -> None:
    """Close this process's pools (of one database URL, or all), e.g. before dropping a database."""
    with _pools_guard:
        for key in [k for k in _pools if url is None or k[0] == url]:
            _pools.pop(key).close()


atexit.register(close_pools)


class PostgresBackend:
    """The hub's tables in one PostgreSQL database, reached through a per-process pool."""

    kind = "postgresql"

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.pool_size = pool_size
        self._hub_seen = False

    def describe(self) -> str:
        return safe_target(self.url)

    def pool(self) -> ConnectionPool:
        key = (self.url, self.pool_size)
        with _pools_guard:
            pool = _pools.get(key)
            if pool is None:
                pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs={"autocommit": True, "connect_timeout": int(CONNECT_TIMEOUT)},
                    timeout=CONNECT_TIMEOUT,
                    name="edgenode-hub",
                    open=True,
                )
                _pools[key] = pool
            return pool

    def _conn(self, schema: str) -> PgConn:
        try:
            raw = self.pool().getconn()
        except PoolTimeout as exc:
            raise StoreUnavailable(
                f"cannot reach PostgreSQL at {self.describe()} within {CONNECT_TIMEOUT:.0f} s:"
                " is it running, and does the URL name the right database and user?"
            ) from exc
        try:
            with unavailable_as_store_error(self):
                return PgConn(self, raw, schema)
        except BaseException:
            self.pool().putconn(raw)
            raise

    def hub_exists(self) -> bool:
        if self._hub_seen:  # asked before every hub query: once it exists, it stays
            return True
        conn = self._conn("public")
        try:
            with unavailable_as_store_error(self):
                row = conn.raw.execute("SELECT to_regclass(%s)", (f"{HUB_SCHEMA}.tenant",)).fetchone()
        finally:
            conn.close()
        self._hub_seen = row is not None and row[0] is not None
        return self._hub_seen

    def create_hub(self) -> None:
        conn = self._conn("public")
        try:
            conn.raw.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(HUB_SCHEMA)))
            conn.run_ddl(HUB_EXTRA_SQL)
        finally:
            conn.close()

    def hub_conn(self) -> DB:
        return self._conn(HUB_SCHEMA)

    def create_tenant(self, lg_code: str) -> None:
        conn = self._conn("public")
        try:
            conn.raw.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(tenant_schema(lg_code))))
        finally:
            conn.close()

    def tenant_ready(self, conn: DB) -> None:
        assert isinstance(conn, PgConn)
        conn.run_ddl(TENANT_EXTRA_SQL)

    def tenant_exists(self, lg_code: str) -> bool:
        conn = self._conn("public")
        try:
            row = conn.raw.execute("SELECT to_regclass(%s)", (f"{tenant_schema(lg_code)}.meta",)).fetchone()
        finally:
            conn.close()
        return row is not None and row[0] is not None

    def tenant_conn(self, lg_code: str) -> DB:
        return self._conn(tenant_schema(lg_code))
