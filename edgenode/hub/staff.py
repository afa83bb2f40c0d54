"""Who may use the hub's pages for datacenter staff, and what each may see.

Two kinds of account log in to ``/staff`` and ``/fleet``:

* **operators** of the datacenter, made with ``edgenode user add --data HUB --name U --role
  admin|supervisor`` (no ``--lg-code``); kept in ``DATA/staff.db`` beside the login sessions,
  never synced to any node; they see every municipality;
* a municipality's own **supervisors and admins** (the accounts ``user add --lg-code C`` makes,
  which also sync to that town's nodes), logging in as ``NAME@C``; they see that town only.

Clerks have no business here and cannot log in. Deciding a 届出 conflict or recording a 本人通知
needs supervisor or admin; both roles may look.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import orjson

from edgenode.counter_ui.auth import Account, User
from edgenode.counter_ui.sessions import AuthStore
from edgenode.durable import open_db, utcnow, write_tx
from edgenode.errors import ConfigError, RecordError, StoreError
from edgenode.hub.store import HubStore
from edgenode.resident import validate_staff

STAFF_DB = "staff.db"
OPERATOR_SQL = """
CREATE TABLE IF NOT EXISTS operator (
  user          TEXT PRIMARY KEY,
  role          TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at    TEXT NOT NULL
) WITHOUT ROWID;
"""
#: roles that may log in to the staff pages
STAFF_PAGE_ROLES = ("supervisor", "admin")
OPERATOR_SOURCE = "operator"
_OPERATOR_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TENANT_LOGIN_RE = re.compile(r"^([A-Za-z0-9_.@-]{1,64})@(\d{6})$")


@dataclass(frozen=True)
class Scope:
    """The municipalities a logged-in staff member may see (None: every one)."""

    lg_code: str | None

    def allows(self, lg_code: str) -> bool:
        return self.lg_code is None or self.lg_code == lg_code


def scope_of(user: User) -> Scope:
    """What a staff user may see, from the account source their session was made with."""
    if user.source == OPERATOR_SOURCE:
        return Scope(None)
    if user.source.startswith("tenant:"):
        return Scope(user.source.removeprefix("tenant:"))
    raise StoreError(f"account source {user.source!r} has no place on the staff pages")


def add_operator(data: Path, user: str, role: str, password: str) -> None:
    """Add or replace a datacenter operator account (argon2 hash) in DATA/staff.db."""
    from argon2 import PasswordHasher

    if not _OPERATOR_RE.match(user):
        raise ConfigError(
            "an operator name has 1-64 letters, digits, '_', '.' or '-' (no '@': that is NAME@団体コード)"
        )
    if role not in STAFF_PAGE_ROLES:
        raise ConfigError(f"a datacenter operator is {' or '.join(STAFF_PAGE_ROLES)}")
    if len(password) < 8:
        raise ConfigError("the password must have at least 8 characters")
    conn = open_db(data / STAFF_DB, OPERATOR_SQL)
    try:
        with write_tx(conn):
            conn.execute(
                "INSERT OR REPLACE INTO operator (user, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (user, role, PasswordHasher().hash(password), utcnow()),
            )
    finally:
        conn.close()


class StaffAccounts:
    """The account source of the staff pages (operators first, then NAME@団体コード)."""

    def __init__(self, data: Path, store: HubStore) -> None:
        self.data = data
        self.store = store
        self.auth_store = AuthStore(data / STAFF_DB)

    def __call__(self, name: str) -> Account | None:
        if _OPERATOR_RE.match(name):
            return self._operator(name)
        m = _TENANT_LOGIN_RE.match(name)
        return self._tenant_account(m.group(1), m.group(2), name) if m else None

    def _operator(self, name: str) -> Account | None:
        conn = open_db(self.data / STAFF_DB, OPERATOR_SQL)
        try:
            row = conn.execute("SELECT role, password_hash FROM operator WHERE user = ?", (name,)).fetchone()
        finally:
            conn.close()
        if row is None or row[0] not in STAFF_PAGE_ROLES:
            return None
        return Account(name, str(row[0]), str(row[1]), OPERATOR_SOURCE)

    def _tenant_account(self, user: str, lg_code: str, login: str) -> Account | None:
        if lg_code not in self.store.tenants():
            return None
        try:
            conn = self.store.tenant(lg_code).connect()
            try:
                row = conn.execute("SELECT record FROM staff WHERE user = ?", (user,)).fetchone()
            finally:
                conn.close()
            if row is None:
                return None
            rec = validate_staff(orjson.loads(row[0]))
        except (sqlite3.Error, StoreError, RecordError, orjson.JSONDecodeError):
            return None
        if rec["user"] != user or rec["role"] not in STAFF_PAGE_ROLES:
            return None
        return Account(login, str(rec["role"]), str(rec["password_hash"]), f"tenant:{lg_code}")
