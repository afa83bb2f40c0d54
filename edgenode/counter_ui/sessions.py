"""Login state kept in the node's own ``node.db``: sessions, failure counters, locks, a key.

It lives beside the sync status (not in the replica) so that a re-bootstrap, which swaps the
replica file, logs nobody out and forgets no lockout. Every write uses WAL with
synchronous=FULL: a lockout or a logout must survive a power cut.

Secrets are never stored as they are: a session row is keyed by the SHA-256 of the cookie
value, and failure counters by the SHA-256 of the typed user name (clerks sometimes type their
password into the name field).

Tables::

    auth_session (id_hash, user, source, stamp, csrf, created_at, last_seen)
    auth_failure (scope, key, at)          one row per attempt still inside its window
    auth_lock    (scope, key, until)       a user name ("user") or client address ("ip") locked out
    auth_key     (id = 1, key)             random key signing the login form's CSRF cookie
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgenode.durable import open_db, write_tx

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS auth_session (
  id_hash    TEXT PRIMARY KEY,
  user       TEXT NOT NULL,
  source     TEXT NOT NULL,
  stamp      TEXT NOT NULL,
  csrf       TEXT NOT NULL,
  created_at REAL NOT NULL,
  last_seen  REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_failure (
  scope TEXT NOT NULL,
  key   TEXT NOT NULL,
  at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_failure_key ON auth_failure (scope, key, at);
CREATE TABLE IF NOT EXISTS auth_lock (
  scope TEXT NOT NULL,
  key   TEXT NOT NULL,
  until REAL NOT NULL,
  PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_key (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  key BLOB NOT NULL
);
"""

#: last_seen is rewritten at most this often (seconds), so browsing costs no write per page;
#: the idle timeout can therefore strike up to this much early, never late.
TOUCH_INTERVAL = 60.0


def digest(value: str) -> str:
    """SHA-256 of a text, hex: how session ids and user names are stored."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Limit:
    """At most `max_failures` failures within `window` seconds, else locked for `lockout` seconds."""

    max_failures: int
    window: float
    lockout: float


@dataclass(frozen=True)
class SessionRow:
    """A live session as stored (the cookie value itself is never stored)."""

    id_hash: str
    user: str
    source: str
    stamp: str
    csrf: str
    created_at: float
    last_seen: float


@dataclass(frozen=True)
class Attempt:
    """The outcome of `AuthStore.begin_attempt`: refused (locked) or admitted with its pending rows."""

    locked: bool
    pending: tuple[int, ...] = ()


class AuthStore:
    """Sessions and login throttling in ``DATA/node.db``; every method opens its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as conn:
            conn.executescript(SCHEMA_SQL)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = open_db(self.path)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn, write_tx(conn):
            yield conn

    # ------------------------------------------------------------ signing key

    def key(self) -> bytes:
        """The node's random signing key, created on first use (race-free across processes)."""
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO auth_key (id, key) VALUES (1, ?)", (secrets.token_bytes(32),))
            row = conn.execute("SELECT key FROM auth_key WHERE id = 1").fetchone()
        return bytes(row[0])

    # ------------------------------------------------------------ local accounts

    def local_account(self, user: str) -> tuple[str, str] | None:
        """(role, password_hash) of a local emergency account (`add_local_user`), or None."""
        with self._connect() as conn:
            try:
                row = conn.execute("SELECT role, password_hash FROM local_user WHERE user = ?", (user,)).fetchone()
            except sqlite3.OperationalError:  # no local account was ever created
                return None
        return None if row is None else (str(row[0]), str(row[1]))

    # ------------------------------------------------------------ sessions

    def create_session(self, user: str, source: str, stamp: str, now: float) -> tuple[str, str]:
        """Store a new session; return (cookie value, CSRF token), both 256-bit random."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO auth_session (id_hash, user, source, stamp, csrf, created_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest(token), user, source, stamp, csrf, now, now),
            )
        return token, csrf

    def load_session(self, token: str, now: float, idle: float, absolute: float) -> SessionRow | None:
        """The live session for a cookie value, touched; None (and the row deleted) if it expired."""
        id_hash = digest(token)
        with self._connect() as conn:
            row = conn.execute(
                "SELECT id_hash, user, source, stamp, csrf, created_at, last_seen FROM auth_session WHERE id_hash = ?",
                (id_hash,),
            ).fetchone()
            if row is None:
                return None
            s = SessionRow(*row)
            if now - s.last_seen >= idle or now - s.created_at >= absolute:
                conn.execute("DELETE FROM auth_session WHERE id_hash = ?", (id_hash,))
                return None
            if now - s.last_seen >= TOUCH_INTERVAL:
                conn.execute("UPDATE auth_session SET last_seen = ? WHERE id_hash = ?", (now, id_hash))
        return s

    def delete_session(self, id_hash: str) -> None:
        """End one session (logout, or the account changed under it)."""
        with self._connect() as conn:
            conn.execute("DELETE FROM auth_session WHERE id_hash = ?", (id_hash,))

    def purge_sessions(self, now: float, idle: float, absolute: float) -> int:
        """Delete every expired session; return how many."""
        with self._connect() as conn:
            cur = conn.execute(
                "DELETE FROM auth_session WHERE last_seen <= ? OR created_at <= ?", (now - idle, now - absolute)
            )
            return cur.rowcount

    def session_count(self) -> int:
        """How many sessions are stored (live or not yet purged)."""
        with self._connect() as conn:
            return int(conn.execute("SELECT count(*) FROM auth_session").fetchone()[0])

    # ------------------------------------------------------------ throttling

    def begin_attempt(self, keys: list[tuple[str, str, Limit]], now: float) -> Attempt:
        """Admit one login attempt against every (scope, key, limit), or refuse it as locked.

        An admitted attempt is counted as a failure *before* the password is checked, so
        concurrent guesses cannot slip past the limit while argon2 runs; `succeeded` takes the
        count back.
        """
        pending: list[int] = []
        with self._transaction() as conn:
            for scope, key, limit in keys:
                locked = conn.execute(
                    "SELECT 1 FROM auth_lock WHERE scope = ? AND key = ? AND until > ?", (scope, key, now)
                ).fetchone()
                conn.execute(
                    "DELETE FROM auth_failure WHERE scope = ? AND key = ? AND at <= ?",
                    (scope, key, now - limit.window),
                )
                (count,) = conn.execute(
                    "SELECT count(*) FROM auth_failure WHERE scope = ? AND key = ?", (scope, key)
                ).fetchone()
                if locked or count >= limit.max_failures:
                    return Attempt(locked=True)
            for scope, key, _limit in keys:
                cur = conn.execute("INSERT INTO auth_failure (scope, key, at) VALUES (?, ?, ?)", (scope, key, now))
                pending.append(int(cur.lastrowid or 0))
        return Attempt(locked=False, pending=tuple(pending))

    def succeeded(self, attempt: Attempt, clear: list[tuple[str, str]]) -> None:
        """Take back an admitted attempt's counts and clear the failures of `clear` keys."""
        with self._transaction() as conn:
            conn.executemany("DELETE FROM auth_failure WHERE rowid = ?", [(r,) for r in attempt.pending])
            conn.executemany("DELETE FROM auth_failure WHERE scope = ? AND key = ?", clear)

    def failed(self, keys: list[tuple[str, str, Limit]], now: float) -> list[tuple[str, float]]:
        """After a failed attempt, lock every key that reached its limit; return (scope, until) of new locks."""
        locks: list[tuple[str, float]] = []
        with self._transaction() as conn:
            for scope, key, limit in keys:
                (count,) = conn.execute(
                    "SELECT count(*) FROM auth_failure WHERE scope = ? AND key = ? AND at > ?",
                    (scope, key, now - limit.window),
                ).fetchone()
                if count >= limit.max_failures:
                    until = now + limit.lockout
                    conn.execute(
                        "INSERT OR REPLACE INTO auth_lock (scope, key, until) VALUES (?, ?, ?)", (scope, key, until)
                    )
                    # the lock starts a fresh count: after it ends, the full allowance applies again
                    conn.execute("DELETE FROM auth_failure WHERE scope = ? AND key = ?", (scope, key))
                    locks.append((scope, until))
            conn.execute("DELETE FROM auth_lock WHERE until <= ?", (now,))
        return locks
