"""`Hub`: the one entry object of the datacenter side; the CLI is a thin shell over it."""

from __future__ import annotations

import datetime as _dt
import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edgenode import registry, wire
from edgenode.durable import write_tx
from edgenode.errors import ConfigError, InputError, StoreError
from edgenode.hub import ingest
from edgenode.hub.store import HubStore, TenantDB
from edgenode.resident import validate_restriction, validate_staff
from edgenode.settings import HUB_SETTINGS, Settings, load

#: Records per change-log transaction when a population is loaded into a non-empty tenant.
LOAD_TX_RECORDS = 500


class Hub:
    """The hub in one data folder."""

    def __init__(self, data: Path, settings: Settings | None = None) -> None:
        self.data = data
        self.settings = settings or load(HUB_SETTINGS, data / "hub.toml", {}, {})
        self.store = HubStore(data, self.settings["db"], self.settings["db_pool_size"])

    def init_tenant(
        self, lg_code: str, name: str, residents: int = 0, seed: int = 0, today: _dt.date | None = None
    ) -> TenantDB:
        """Create the hub if needed and add a municipality, optionally with synthetic residents."""
        if not name.strip():
            raise ConfigError("--name must name the municipality, e.g. 門川町")
        if residents < 0:
            raise ConfigError("--residents must not be negative")
        self.store.create()
        tenant = self.store.add_tenant(lg_code, name)
        if residents:
            from edgenode.hub.synth import generate_population

            records = generate_population(lg_code, name, residents, seed, today or _dt.date.today())
            self.load_records(tenant, records, reason="初期移行")
        return tenant

    def load_records(self, tenant: TenantDB, records: list[dict[str, Any]], reason: str) -> int:
        """Load records: as the baseline of an empty tenant, otherwise through the change log.

        A tenant whose log has not started (head 0, no rows) takes the records as its initial
        migration (初期移行): nodes receive it in their first snapshot. Afterwards every record
        is a logged change, one transaction per household.
        """
        conn = tenant.connect()
        try:
            with write_tx(conn):
                head = int(TenantDB.meta(conn)["head"])
                empty = conn.execute("SELECT COUNT(*) FROM person_history").fetchone()[0] == 0
                if head == 0 and empty:
                    rows = sorted(
                        ({**{k: v for k, v in r.items() if v is not None}, "rireki_no": 1} for r in records),
                        key=lambda r: r["atena_no"],
                    )
                    ops = (wire.canonical_bytes({"t": "ph", "a": r["atena_no"], "r": 1, "v": r}) for r in rows)
                    registry.bulk_load(conn, ops, len(rows))
                    return 0
                txs = []
                for group in ingest.group_by_household(records):
                    for i in range(0, len(group), LOAD_TX_RECORDS):
                        txs.append((reason, tenant.records_to_ops(conn, group[i : i + LOAD_TX_RECORDS])))
                return tenant.commit_in(conn, txs)
        finally:
            conn.close()

    def apply_file(self, lg_code: str, lines: Iterable[bytes], source: str) -> int:
        """Ingest a file in the export format: every line valid and applied, or nothing."""
        tenant = self.store.tenant(lg_code)
        records = ingest.parse_records(lines, source)
        if not records:
            raise InputError(f"{source}: no records")
        conn = tenant.connect()
        try:
            with write_tx(conn):
                txs = [("データ取込", tenant.records_to_ops(conn, g)) for g in ingest.group_by_household(records)]
                return tenant.commit_in(conn, txs)
        finally:
            conn.close()

    def simulate(self, lg_code: str, changes: int, seed: int | None = None, today: _dt.date | None = None) -> int:
        """Apply `changes` realistic 異動 (one registry transaction each); return the new head."""
        from edgenode.hub.simulate import simulate

        if changes < 0:
            raise ConfigError("--changes must not be negative")
        tenant = self.store.tenant(lg_code)
        name = self.store.tenants()[lg_code]
        rng = random.Random(seed)
        conn = tenant.connect()
        try:
            with write_tx(conn):
                current = [json.loads(r) for r in registry.iter_current(conn)]
                if not any(r["status"] == "住民" for r in current):
                    raise StoreError(f"municipality {lg_code} has no residents to simulate with")
                result = simulate(current, changes, rng, today or _dt.date.today(), name, lg_code)
                txs = [(c.reason, tenant.records_to_ops(conn, list(c.records))) for c in result]
                return tenant.commit_in(conn, txs)
        finally:
            conn.close()

    def add_user(self, lg_code: str, user: str, role: str, password: str) -> int:
        """Add or replace a clerk account of a tenant (argon2 hash); it syncs to the nodes."""
        from argon2 import PasswordHasher

        if len(password) < 8:
            raise ConfigError("the password must have at least 8 characters")
        rec = {"user": user, "role": role, "password_hash": PasswordHasher().hash(password), "lg_code": lg_code}
        validate_staff(rec)
        return self.store.tenant(lg_code).commit([("職員登録", [{"t": "st", "k": user, "v": rec}])])

    def restrict(
        self,
        lg_code: str,
        kind: str,
        *,
        atena_no: str | None = None,
        household_no: str | None = None,
        processes: tuple[str, ...] = ("証明書交付", "照会"),
        level: str = "エラー",
        start_date: str | None = None,
        end_date: str | None = None,
    ) -> str:
        """Set a 支援措置 / 仮支援措置 / 抑止 on a person or household; it syncs to the nodes."""
        import secrets

        rec = {
            "id": f"r-{secrets.token_hex(8)}",
            "kind": kind,
            "atena_no": atena_no,
            "household_no": household_no,
            "processes": list(processes),
            "level": level,
            "start_date": start_date,
            "end_date": end_date,
        }
        rec = {k: v for k, v in rec.items() if v is not None}
        validate_restriction(rec)
        self.store.tenant(lg_code).commit([(f"{kind}設定", [{"t": "rs", "k": rec["id"], "v": rec}])])
        return str(rec["id"])

    def lift_restriction(self, lg_code: str, restriction_id: str) -> int:
        """Remove a restriction (the only way one ends: an end date does not lift it)."""
        return self.store.tenant(lg_code).commit([("制限解除", [{"t": "rs", "k": restriction_id, "del": True}])])

    def export(self, lg_code: str) -> Iterator[str]:
        """The tenant's current registry in the canonical export format."""
        return self.store.tenant(lg_code).export()

    def snapshot_file(self, lg_code: str, out: Path) -> dict[str, Any]:
        """Write a signed snapshot file for physical media."""
        from edgenode.hub.snapshot import write_file

        return write_file(self.store.tenant(lg_code), self.store.key(), self.settings["snapshot_chunk_size"], out)

    def migrate(self) -> None:
        """Create or upgrade the hub schema (idempotent)."""
        self.store.create()
        from edgenode.hub.uploads import SQL as UPLOAD_SQL

        for lg_code, name in self.store.tenants().items():
            tenant = self.store.tenant(lg_code)
            tenant.create(name)
            conn = tenant.connect()
            try:
                conn.executescript(UPLOAD_SQL)
            finally:
                conn.close()

    def app(self) -> Any:
        """The hub's ASGI application."""
        from edgenode.hub.app import create_app

        self.store.require()
        return create_app(self.store, self.settings)
