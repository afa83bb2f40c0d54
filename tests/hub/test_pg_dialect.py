"""The PostgreSQL connection speaks the hub's SQLite dialect, with SQLite's ordering."""

from __future__ import annotations

import json
from pathlib import Path

from edgenode import registry
from edgenode.hub.pg import translate
from edgenode.hub.store import HubStore

LG = "454214"


def test_sqlite_statements_become_their_postgresql_equivalents() -> None:
    st = translate("INSERT OR REPLACE INTO staff (user, record) VALUES (?, ?)")
    assert st.text == 'INSERT INTO staff ("user", record) VALUES (%s, %s)'
    assert st.upsert_table == "staff" and st.upsert_cols == ('"user"', "record")
    ignore = translate("INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)").text
    assert ignore == "INSERT INTO meta (k, v) VALUES (%s, %s) ON CONFLICT DO NOTHING"
    ddl = translate("CREATE TABLE IF NOT EXISTS t (a INTEGER PRIMARY KEY, b BLOB, c TEXT) WITHOUT ROWID").text
    assert ddl == 'CREATE TABLE IF NOT EXISTS t (a BIGINT PRIMARY KEY, b BYTEA, c TEXT COLLATE "C")'
    assert translate("SELECT v FROM meta WHERE k LIKE '%a'").text == "SELECT v FROM meta WHERE k LIKE '%%a'"
    assert translate("BEGIN IMMEDIATE").lock_write
    assert "REPEATABLE READ" in translate("BEGIN").text
    assert translate("PRAGMA journal_mode=WAL").noop
    assert translate("PRAGMA table_info(intake)").is_query
    assert (
        translate("ALTER TABLE intake ADD COLUMN kind TEXT").text
        == 'ALTER TABLE intake ADD COLUMN kind TEXT COLLATE "C"'
    )
    bulk = translate("INSERT INTO person_history (atena_no, rireki_no, record) VALUES (?, ?, CAST(? AS TEXT))")
    assert bulk.text_params and bulk.text.endswith("VALUES (%s, %s, %s)")


def test_rows_come_out_in_the_same_order_as_from_sqlite(tmp_path: Path, hub_db: str) -> None:
    """Snapshot order and digests depend on ORDER BY: both backends sort by code point."""
    store = HubStore(tmp_path / "hub", hub_db)
    store.create()
    tenant = store.add_tenant(LG, "門川町")
    users = ["Zed", "abe", "a.b", "_u", "B@x", "a_b", "a-b", "A", "a0"]  # a locale collation sorts these otherwise
    ops = [{"t": "st", "k": u, "v": {"user": u, "role": "clerk", "password_hash": "$argon2id$x"}} for u in users]
    tenant.commit([("職員登録", ops)])
    tenant.commit([("職員登録", [{**ops[0], "v": {**ops[0]["v"], "role": "admin"}}])])  # INSERT OR REPLACE
    conn = tenant.connect()
    try:
        conn.execute("BEGIN")
        rows = list(registry.iter_snapshot_rows(conn))
        conn.execute("COMMIT")
    finally:
        conn.close()
    keys = [json.loads(r)["k"] for r in rows]
    assert keys == sorted(users)  # code-point order, as SQLite's BINARY collation
    assert json.loads(rows[keys.index("Zed")])["v"]["role"] == "admin"


def test_a_table_can_be_upgraded_the_same_way_on_both_backends(tmp_path: Path, hub_db: str) -> None:
    """Schema upgrades read the columns with PRAGMA table_info, as on SQLite, and add what is missing."""
    store = HubStore(tmp_path / "hub", hub_db)
    store.create()
    conn = store.add_tenant(LG, "門川町").connect()
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS item (id TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        for _ in range(2):  # idempotent, as `hub migrate` must be
            cols = [r[1] for r in conn.execute("PRAGMA table_info(item)").fetchall()]
            if "note" not in cols:
                conn.execute("ALTER TABLE item ADD COLUMN note TEXT")
        assert [r[1] for r in conn.execute("PRAGMA table_info(item)").fetchall()] == ["id", "n", "note"]
    finally:
        conn.close()
