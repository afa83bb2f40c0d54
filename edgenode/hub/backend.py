"""Where the hub keeps its data: SQLite files under the data folder, or one PostgreSQL database.

One seam with two implementations, chosen by the hub's ``db`` setting (a URL):

- empty or ``sqlite:``: ``hub.db`` for tenants, tokens and heartbeats and one file
  ``tenants/<lg_code>.db`` per municipality (the embedded default: demo, small deployments);
- ``postgresql://…``: one database shared by any number of stateless hub processes, with the
  hub tables in schema ``edgenode_hub`` and each municipality in its own schema ``t_<lg_code>``
  (see `edgenode.hub.pg`).

Both hand out connections of the `edgenode.sqlconn.DB` shape. The hub's code is written once,
in SQLite's dialect, and the PostgreSQL connection translates it; so the store, snapshots,
uploads and the registry's `apply_ops` are the same code on both.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

import psycopg

from edgenode import registry
from edgenode.durable import open_db
from edgenode.errors import ConfigError, StoreError
from edgenode.sqlconn import DB

#: What a unique or foreign-key violation raises, on either backend.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)


class Backend(Protocol):
    """Storage for the hub tables and for each tenant's tables."""

    kind: str

    def describe(self) -> str:
        """Where the data lives, for messages (never includes a password)."""

    def hub_exists(self) -> bool:
        """Whether the hub tables were created."""

    def create_hub(self) -> None:
        """Create the storage that holds the hub tables (idempotent)."""

    def hub_conn(self) -> DB:
        """A connection to the hub tables (callers close it)."""

    def create_tenant(self, lg_code: str) -> None:
        """Create the storage of one tenant's tables (idempotent)."""

    def tenant_ready(self, conn: DB) -> None:
        """Called once a tenant's tables exist, on a connection to them (idempotent)."""

    def tenant_exists(self, lg_code: str) -> bool:
        """Whether the tenant's storage exists."""

    def tenant_conn(self, lg_code: str) -> DB:
        """A connection to one tenant's tables (callers close it)."""


class SQLiteBackend:
    """``hub.db`` and ``tenants/<lg_code>.db`` under the data folder, in WAL mode."""

    kind = "sqlite"

    def __init__(self, data: Path) -> None:
        self.data = data
        self.meta_path = data / "hub.db"

    def describe(self) -> str:
        return str(self.data)

    def hub_exists(self) -> bool:
        return self.meta_path.exists()

    def create_hub(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)

    def hub_conn(self) -> DB:
        return open_db(self.meta_path)

    def tenant_path(self, lg_code: str) -> Path:
        """The SQLite file of one tenant."""
        return self.data / "tenants" / f"{lg_code}.db"

    def create_tenant(self, lg_code: str) -> None:
        path = self.tenant_path(lg_code)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # the page size must be set before the file switches to WAL
            raw = sqlite3.connect(path)
            raw.execute(f"PRAGMA page_size={registry.PAGE_SIZE}")
            registry.create_schema(raw)
            raw.close()

    def tenant_ready(self, conn: DB) -> None:
        pass

    def tenant_exists(self, lg_code: str) -> bool:
        return self.tenant_path(lg_code).exists()

    def tenant_conn(self, lg_code: str) -> DB:
        path = self.tenant_path(lg_code)
        if not path.exists():
            raise StoreError(f"municipality {lg_code} has no registry file")
        return open_db(path)


def open_backend(data: Path, url: str, pool_size: int = 10) -> Backend:
    """The backend a ``db`` setting names; `ConfigError` for anything else."""
    if not url or url.startswith("sqlite:"):
        if url not in ("", "sqlite:", "sqlite://"):
            raise ConfigError("a SQLite hub lives under --data: give --db as empty or sqlite:")
        return SQLiteBackend(data)
    if url.startswith(("postgresql://", "postgres://")):
        from edgenode.hub.pg import PostgresBackend

        return PostgresBackend(url, pool_size)
    raise ConfigError("db must be empty (SQLite under --data) or a postgresql://USER@HOST:PORT/DBNAME URL")
