"""The hub's store: hub tables plus, per municipality (tenant), its registry and change log.

The hub tables hold tenants, node tokens (hashed) and heartbeats; each tenant holds the
replicated registry tables (`edgenode.registry`) and the change log. Where they live is the
backend's business (`edgenode.hub.backend`: SQLite files under the data folder, or PostgreSQL).
Every registry change is committed together with its change-log row in one ``BEGIN IMMEDIATE``
transaction: the sequence number is the previous head plus one, taken under the tenant's write
lock (SQLite's single-writer lock, or a PostgreSQL advisory lock held to commit), so sequences
are gap-free in commit order and a change never exists without its log entry.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgenode import registry, wire
from edgenode.durable import open_db, parse_time, utcnow, write_tx
from edgenode.errors import ConfigError, StoreError
from edgenode.hub.backend import Backend, SQLiteBackend, open_backend
from edgenode.ids import NODE_ID_RE, valid_lg_code
from edgenode.signing import HubKey
from edgenode.sqlconn import DB

HUB_SQL = """
CREATE TABLE IF NOT EXISTS tenant (
  lg_code TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS token (
  token_hash TEXT PRIMARY KEY, lg_code TEXT NOT NULL, node_id TEXT NOT NULL,
  created_at TEXT NOT NULL, revoked_at TEXT);
CREATE TABLE IF NOT EXISTS node (
  lg_code TEXT NOT NULL, node_id TEXT NOT NULL, last_seen_at TEXT NOT NULL,
  status TEXT NOT NULL, PRIMARY KEY (lg_code, node_id));
"""

TENANT_SQL = """
CREATE TABLE IF NOT EXISTS changelog (
  seq   INTEGER PRIMARY KEY,
  at    TEXT NOT NULL,
  line  BLOB NOT NULL,
  chain TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


def connect(path: Path) -> DB:
    """Open a SQLite file in WAL mode with full durability on commit."""
    return open_db(path)


@dataclass(frozen=True)
class FeedSlice:
    """What the feed endpoint sends: signed batch bytes, or a reason it cannot."""

    frame: bytes | None
    gone_reason: str | None = None
    retained_from: int = 1
    head: int = 0


class TenantDB:
    """One municipality's registry and change log."""

    def __init__(self, backend: Backend, lg_code: str) -> None:
        self.backend = backend
        self.lg_code = lg_code

    @property
    def path(self) -> Path:
        """The tenant's SQLite file (a SQLite hub's only)."""
        if not isinstance(self.backend, SQLiteBackend):
            raise StoreError(f"municipality {self.lg_code} is kept in {self.backend.describe()}, not in a file")
        return self.backend.tenant_path(self.lg_code)

    def connect(self) -> DB:
        """A new connection (callers close it); cheap enough to use one per request."""
        return self.backend.tenant_conn(self.lg_code)

    def create(self, name: str) -> None:
        """Create the storage and schema if missing (idempotent)."""
        self.backend.create_tenant(self.lg_code)
        conn = self.connect()
        try:
            registry.create_schema(conn)
            conn.executescript(TENANT_SQL)
            self.backend.tenant_ready(conn)
            with write_tx(conn):
                for k, v in (
                    ("lg_code", self.lg_code),
                    ("name", name),
                    ("head", "0"),
                    ("chain", wire.genesis_chain(self.lg_code)),
                    ("retained_from", "1"),
                    ("retained_chain", wire.genesis_chain(self.lg_code)),
                ):
                    conn.execute("INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)", (k, v))
        finally:
            conn.close()

    @staticmethod
    def meta(conn: DB) -> dict[str, str]:
        """All meta values (head, chain, retained_from …) as strings."""
        return dict(conn.execute("SELECT k, v FROM meta").fetchall())

    def head(self) -> int:
        """The sequence of the last committed transaction."""
        conn = self.connect()
        try:
            return int(conn.execute("SELECT v FROM meta WHERE k = 'head'").fetchone()[0])
        finally:
            conn.close()

    # ------------------------------------------------------------ writes

    def commit(self, txs: Sequence[tuple[str, list[dict[str, Any]]]]) -> int:
        """Commit registry transactions (reason, ops) atomically; return the new head.

        Each element becomes one change-log transaction; all of them commit in one SQLite
        transaction, so a caller's group (e.g. a whole import file) is all-or-nothing.
        """
        conn = self.connect()
        try:
            with write_tx(conn):
                return self.commit_in(conn, txs)
        finally:
            conn.close()

    def commit_in(self, conn: DB, txs: Sequence[tuple[str, list[dict[str, Any]]]]) -> int:
        """`commit` inside a transaction the caller holds."""
        meta = self.meta(conn)
        head, chain = int(meta["head"]), meta["chain"]
        for reason, ops in txs:
            if not ops:
                continue
            registry.apply_ops(conn, ops)
            head += 1
            at = utcnow()
            line = wire.canonical_bytes({"at": at, "ops": ops, "reason": reason, "seq": head})
            chain = wire.next_chain(chain, line)
            conn.execute(
                "INSERT INTO changelog (seq, at, line, chain) VALUES (?, ?, ?, ?)",
                (head, at, line, chain),
            )
        conn.execute("UPDATE meta SET v = ? WHERE k = 'head'", (str(head),))
        conn.execute("UPDATE meta SET v = ? WHERE k = 'chain'", (chain,))
        return head

    def records_to_ops(self, conn: DB, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Ops appending each record as its person's next history row (delta when smaller).

        A record identical to the current one (履歴番号 aside) produces no op.
        """
        ops: list[dict[str, Any]] = []
        pending: dict[str, dict[str, Any]] = {}
        for rec in records:
            atena = rec["atena_no"]
            prev = pending.get(atena) or registry.current_record(conn, atena)
            new = {k: v for k, v in rec.items() if k != "rireki_no" and v is not None}
            if prev is not None:
                if {k: v for k, v in prev.items() if k != "rireki_no"} == new:
                    continue
                new["rireki_no"] = prev["rireki_no"] + 1
                op = registry.delta_op(prev, new)
                full = {"t": "ph", "a": atena, "r": new["rireki_no"], "v": new}
                ops.append(op if len(wire.canonical_bytes(op)) < len(wire.canonical_bytes(full)) else full)
            else:
                new["rireki_no"] = 1
                ops.append({"t": "ph", "a": atena, "r": 1, "v": new})
            pending[atena] = new
        return ops

    def prune(self, before_seq: int) -> int:
        """Drop change-log entries below `before_seq` (nodes behind them must re-bootstrap)."""
        conn = self.connect()
        try:
            with write_tx(conn):
                head = int(self.meta(conn)["head"])
                before = min(before_seq, head + 1)
                row = conn.execute("SELECT chain FROM changelog WHERE seq = ?", (before - 1,)).fetchone()
                if row is None:
                    return int(self.meta(conn)["retained_from"])
                conn.execute("DELETE FROM changelog WHERE seq < ?", (before,))
                conn.execute("UPDATE meta SET v = ? WHERE k = 'retained_from'", (str(before),))
                conn.execute("UPDATE meta SET v = ? WHERE k = 'retained_chain'", (row[0],))
                return before
        finally:
            conn.close()

    # ------------------------------------------------------------ reads

    def read_feed(self, after: int, max_bytes: int, key: HubKey) -> FeedSlice:
        """The signed batch of transactions after `after`, ending on a transaction boundary."""
        conn = self.connect()
        try:
            conn.execute("BEGIN")
            meta = self.meta(conn)
            head, retained = int(meta["head"]), int(meta["retained_from"])
            if after > head:
                return FeedSlice(None, "cursor_ahead", retained, head)
            if after < retained - 1:
                return FeedSlice(None, "cursor_too_old", retained, head)
            if after == retained - 1:
                prev_chain = meta["retained_chain"]
            else:
                prev_chain = conn.execute("SELECT chain FROM changelog WHERE seq = ?", (after,)).fetchone()[0]
            lines: list[bytes] = []
            size = 0
            chain = prev_chain
            last_at: str | None = None
            for _seq, at, line, ch in conn.execute(
                "SELECT seq, at, line, chain FROM changelog WHERE seq > ? ORDER BY seq", (after,)
            ):
                if lines and size + len(line) > max_bytes:
                    break
                lines.append(bytes(line))
                size += len(line) + 1
                chain = ch
                last_at = at
            last = after + len(lines)
            nxt = conn.execute("SELECT at FROM changelog WHERE seq = ?", (last + 1,)).fetchone()
            head_at = conn.execute("SELECT at FROM changelog WHERE seq = ?", (head,)).fetchone()
            conn.execute("COMMIT")
        finally:
            conn.close()
        now = _dt.datetime.now(_dt.UTC)
        extra = {
            "head_seq": head,
            "head_at": head_at[0] if head_at else None,
            "server_time": utcnow(),
            # age of the oldest transaction the node still lacks after this batch (lag in seconds)
            "next_age": (now - parse_time(nxt[0])).total_seconds() if nxt else 0.0,
            "last_at": last_at,
            "key_id": key.key_id,
        }
        frame = wire.encode_batch(
            lg_code=self.lg_code,
            lines=lines,
            first_seq=after + 1,
            prev_chain=prev_chain,
            chain=chain,
            extra=extra,
            signer=key.sign,
        )
        return FeedSlice(frame, None, retained, head)

    def digest(self, buckets: int) -> dict[str, Any]:
        """Bucketed row hashes of the registry at the current head, read consistently."""
        conn = self.connect()
        try:
            conn.execute("BEGIN")
            meta = self.meta(conn)
            digests = registry.compute_digest(conn, buckets)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return {
            "lg_code": self.lg_code,
            "seq": int(meta["head"]),
            "chain": meta["chain"],
            "buckets": buckets,
            "digests": digests,
        }

    def bucket(self, bucket: int, buckets: int) -> tuple[int, str, list[bytes]]:
        """(head, chain, rows) of one digest bucket, read consistently."""
        conn = self.connect()
        try:
            conn.execute("BEGIN")
            meta = self.meta(conn)
            rows = list(registry.bucket_rows(conn, bucket, buckets))
            conn.execute("COMMIT")
        finally:
            conn.close()
        return int(meta["head"]), meta["chain"], rows

    def export(self) -> Iterator[str]:
        """The canonical export lines of the current registry."""
        conn = self.connect()
        try:
            conn.execute("BEGIN")
            yield from registry.export_lines(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()


class HubStore:
    """The hub's data folder: meta database, tenant databases, signing key, snapshots."""

    def __init__(self, data: Path, db: str = "", pool_size: int = 10) -> None:
        self.data = data
        self.backend: Backend = open_backend(data, db, pool_size)
        self.snapshot_dir = data / "snapshots"

    def create(self) -> None:
        """Create the folder, hub schema and signing key if missing (idempotent)."""
        self.data.mkdir(parents=True, exist_ok=True)
        self.backend.create_hub()
        conn = self.backend.hub_conn()
        try:
            conn.executescript(HUB_SQL)
        finally:
            conn.close()
        HubKey.load_or_create(self.data / "keys" / "hub_ed25519.pem")

    def require(self) -> None:
        """Raise a clear error unless this folder (and its database) holds a hub."""
        if not self.backend.hub_exists():
            where = self.data if isinstance(self.backend, SQLiteBackend) else self.backend.describe()
            raise StoreError(f"no hub in {where}: run `edgenode hub init` first")

    def key(self) -> HubKey:
        """The hub's signing key."""
        self.require()
        return HubKey.load_or_create(self.data / "keys" / "hub_ed25519.pem")

    def _meta(self) -> DB:
        self.require()
        return self.backend.hub_conn()

    def add_tenant(self, lg_code: str, name: str) -> TenantDB:
        """Register a municipality (idempotent) and create its registry file."""
        valid_lg_code(lg_code)
        tenant = TenantDB(self.backend, lg_code)
        tenant.create(name)
        conn = self._meta()
        try:
            conn.execute(
                "INSERT OR IGNORE INTO tenant (lg_code, name, created_at) VALUES (?, ?, ?)",
                (lg_code, name, utcnow()),
            )
        finally:
            conn.close()
        return tenant

    def tenants(self) -> dict[str, str]:
        """lg_code → name for every tenant."""
        conn = self._meta()
        try:
            return dict(conn.execute("SELECT lg_code, name FROM tenant ORDER BY lg_code").fetchall())
        finally:
            conn.close()

    def tenant(self, lg_code: str) -> TenantDB:
        """The tenant's registry; raise a clear error if the municipality is unknown."""
        if lg_code not in self.tenants():
            raise StoreError(f"municipality {lg_code} is not on this hub: add it with `edgenode hub init`")
        return TenantDB(self.backend, lg_code)

    # ------------------------------------------------------------ tokens and nodes

    def issue_token(self, lg_code: str, node_id: str) -> str:
        """A new bearer token bound to one tenant and one node; only its hash is stored."""
        self.tenant(lg_code)
        if not NODE_ID_RE.match(node_id):
            raise ConfigError(f"node id must be letters, digits, '.', '_' or '-': {node_id!r}")
        token = "en1." + secrets.token_urlsafe(32)
        conn = self._meta()
        try:
            conn.execute(
                "INSERT INTO token (token_hash, lg_code, node_id, created_at) VALUES (?, ?, ?, ?)",
                (hash_token(token), lg_code, node_id, utcnow()),
            )
        finally:
            conn.close()
        return token

    def authenticate(self, token: str) -> tuple[str, str] | None:
        """(lg_code, node_id) of a valid token, or None."""
        conn = self._meta()
        try:
            row = conn.execute(
                "SELECT lg_code, node_id FROM token WHERE token_hash = ? AND revoked_at IS NULL",
                (hash_token(token),),
            ).fetchone()
        finally:
            conn.close()
        return None if row is None else (row[0], row[1])

    def record_heartbeat(self, lg_code: str, node_id: str, status: dict[str, Any]) -> None:
        """Store the latest status a node reported."""
        conn = self._meta()
        try:
            conn.execute(
                "INSERT OR REPLACE INTO node (lg_code, node_id, last_seen_at, status) VALUES (?, ?, ?, ?)",
                (lg_code, node_id, utcnow(), json.dumps(status, ensure_ascii=False)),
            )
        finally:
            conn.close()

    def nodes(self, lg_code: str | None = None) -> list[dict[str, Any]]:
        """Every node's last heartbeat (optionally of one tenant)."""
        conn = self._meta()
        try:
            q = "SELECT lg_code, node_id, last_seen_at, status FROM node"
            rows = conn.execute(
                q + (" WHERE lg_code = ?" if lg_code else "") + " ORDER BY lg_code, node_id",
                (lg_code,) if lg_code else (),
            ).fetchall()
        finally:
            conn.close()
        return [{"lg_code": r[0], "node_id": r[1], "last_seen_at": r[2], "status": json.loads(r[3])} for r in rows]


def hash_token(token: str) -> str:
    """SHA-256 of a token (tokens are 256-bit random, so a plain hash is enough)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
