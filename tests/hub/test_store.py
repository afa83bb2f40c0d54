"""The hub's change log: gap-free, chained, bounded batches on transaction boundaries.

A contract test: every test runs over both storage backends (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from edgenode import wire
from edgenode.errors import ConfigError
from edgenode.hub.store import HubStore, TenantDB, hash_token
from edgenode.signing import PinnedVerifier
from tests.records import person

LG = "454214"


@pytest.fixture()
def store(tmp_path: Path, hub_db: str) -> HubStore:
    s = HubStore(tmp_path / "hub", hub_db)
    s.create()
    s.add_tenant(LG, "門川町")
    return s


def _commit_people(tenant: TenantDB, first: int, n: int, per_tx: int = 1) -> int:
    conn = tenant.connect()
    try:
        conn.execute("BEGIN IMMEDIATE")
        txs = []
        for i in range(first, first + n, per_tx):
            recs = [person(j, household=i) for j in range(i, min(i + per_tx, first + n))]
            txs.append(("転入", tenant.records_to_ops(conn, recs)))
        head = tenant.commit_in(conn, txs)
        conn.execute("COMMIT")
        return head
    finally:
        conn.close()


def _log(tenant: TenantDB) -> list[tuple[int, bytes, str]]:
    conn = tenant.connect()
    try:
        return [
            (s, bytes(line), c) for s, line, c in conn.execute("SELECT seq, line, chain FROM changelog ORDER BY seq")
        ]
    finally:
        conn.close()


def test_concurrent_writers_get_gap_free_sequences_and_one_chain(store: HubStore) -> None:
    tenant = store.tenant(LG)
    threads = [threading.Thread(target=_commit_people, args=(tenant, 1 + 100 * k, 20, 2)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = _log(tenant)
    assert [s for s, _, _ in log] == list(range(1, 41))
    chain = wire.genesis_chain(LG)
    for _, line, stored in log:
        chain = wire.next_chain(chain, line)
        assert chain == stored
    assert tenant.head() == 40


def test_a_registry_transaction_is_one_log_entry(store: HubStore) -> None:
    tenant = store.tenant(LG)
    _commit_people(tenant, 1, 4, per_tx=4)  # a household of four moves in together
    ((seq, line, _),) = _log(tenant)
    assert seq == 1 and len(json.loads(line)["ops"]) == 4


def test_feed_batches_are_bounded_and_end_on_transaction_boundaries(store: HubStore) -> None:
    tenant = store.tenant(LG)
    _commit_people(tenant, 1, 60, per_tx=3)
    key = store.key()
    verifier = PinnedVerifier(key.public_b64)
    cursor, chain, sizes = 0, wire.genesis_chain(LG), []
    while cursor < tenant.head():
        sl = tenant.read_feed(cursor, 4096, key)
        assert sl.frame is not None
        b = wire.decode_batch(sl.frame, lg_code=LG, cursor=cursor, chain=chain, verifier=verifier)
        assert b.txs and all(len(tx["ops"]) == 3 for tx in b.txs)
        sizes.append(b.header["raw_size"])
        cursor, chain = b.last_seq, b.chain
    assert len(sizes) > 1 and max(sizes) <= 4096 + 4096  # one tx may overflow the bound by itself
    assert cursor == 20


def test_pruned_log_answers_gone_for_old_cursors_only(store: HubStore) -> None:
    tenant = store.tenant(LG)
    _commit_people(tenant, 1, 10)
    assert tenant.prune(6) == 6
    key = store.key()
    assert tenant.read_feed(3, 1 << 20, key).gone_reason == "cursor_too_old"
    assert tenant.read_feed(11, 1 << 20, key).gone_reason == "cursor_ahead"
    sl = tenant.read_feed(5, 1 << 20, key)
    assert sl.frame is not None
    conn = tenant.connect()
    chain5 = TenantDB.meta(conn)["retained_chain"]
    conn.close()
    b = wire.decode_batch(sl.frame, lg_code=LG, cursor=5, chain=chain5, verifier=PinnedVerifier(key.public_b64))
    assert b.first_seq == 6 and b.last_seq == 10


def test_unchanged_records_make_no_history(store: HubStore) -> None:
    tenant = store.tenant(LG)
    _commit_people(tenant, 1, 1)
    assert _commit_people(tenant, 1, 1) == 1  # the same record again: nothing to log


def test_tokens_are_bound_to_one_tenant_and_stored_hashed(store: HubStore) -> None:
    token = store.issue_token(LG, "honcho-1")
    assert store.authenticate(token) == (LG, "honcho-1")
    assert store.authenticate(token + "x") is None
    for f in store.data.glob("hub.db*"):
        assert token.encode() not in f.read_bytes()
    conn = store.backend.hub_conn()
    try:
        assert [r[0] for r in conn.execute("SELECT token_hash FROM token").fetchall()] == [hash_token(token)]
    finally:
        conn.close()
    with pytest.raises(ConfigError):
        store.issue_token(LG, "bad id with spaces")


def test_municipality_codes_need_a_valid_check_digit(store: HubStore) -> None:
    with pytest.raises(ConfigError, match="check digit"):
        store.add_tenant("454215", "門川町")
    with pytest.raises(ConfigError, match="6 digits"):
        store.add_tenant("45421", "門川町")


def test_a_read_transaction_sees_one_sequence_while_writes_commit(store: HubStore) -> None:
    from edgenode import registry

    tenant = store.tenant(LG)
    _commit_people(tenant, 1, 30)
    reader = tenant.connect()
    try:
        reader.execute("BEGIN")
        head = int(TenantDB.meta(reader)["head"])
        rows = registry.iter_snapshot_rows(reader)
        first = [next(rows) for _ in range(10)]
        _commit_people(tenant, 100, 5)  # commits while the snapshot is half read
        rest = list(rows)
        again = int(TenantDB.meta(reader)["head"])
        reader.execute("COMMIT")
    finally:
        reader.close()
    assert head == again == 30 and tenant.head() == 35
    assert len(first) + len(rest) == 30
