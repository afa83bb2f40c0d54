"""The replicated tables change only through ops, identically on both sides."""

from __future__ import annotations

import sqlite3

import pytest

from edgenode import registry, wire
from edgenode.errors import RecordError, WireError
from tests.records import person


def _db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    registry.create_schema(conn)
    return conn


def _put(rec: dict) -> dict:  # type: ignore[type-arg]
    return {"t": "ph", "a": rec["atena_no"], "r": rec["rireki_no"], "v": rec}


def test_delta_op_rebuilds_the_next_history_row_byte_for_byte() -> None:
    a, b = _db(), _db()
    first = person(1)
    moved = {
        **first,
        "rireki_no": 2,
        "address": "宮崎県東臼杵郡門川町大字川内",
        "change_reason": "転居",
        "change_class": "修正",
        "address_since": "令和8年11月27日",
    }
    moved.pop("banchi")
    for c in (a, b):
        registry.apply_ops(c, [_put(first)])
    registry.apply_ops(a, [_put(moved)])
    delta = registry.delta_op(first, moved)
    assert delta["x"] == ["banchi"]
    assert len(wire.canonical_bytes(delta)) < len(wire.canonical_bytes(_put(moved)))
    registry.apply_ops(b, [delta])
    assert list(registry.iter_current(a)) == list(registry.iter_current(b))
    assert registry.compute_digest(a, 16) == registry.compute_digest(b, 16)
    assert registry.current_record(b, first["atena_no"])["rireki_no"] == 2  # type: ignore[index]


def test_names_are_stored_byte_exact_without_normalization() -> None:
    conn = _db()
    tricky = "\ufa19\u585a\u3000\U00020bb7\u658e\U000e0103"  # 神(compat) 塚 𠮷 斉+IVS
    registry.apply_ops(conn, [_put(person(1, name=tricky))])
    assert registry.current_record(conn, person(1)["atena_no"])["name"] == tricky  # type: ignore[index]
    line = next(registry.export_lines(conn))
    assert tricky in line


def test_invalid_record_in_an_op_is_refused() -> None:
    conn = _db()
    with pytest.raises(RecordError):
        registry.apply_ops(conn, [_put(person(1, status="引越し"))])
    with pytest.raises(WireError, match="does not match"):
        registry.apply_ops(conn, [{"t": "ph", "a": person(2)["atena_no"], "r": 1, "v": person(1)}])
    with pytest.raises(WireError, match="unknown op"):
        registry.apply_ops(conn, [{"t": "zz", "k": "x"}])


def test_export_always_carries_the_contract_keys() -> None:
    conn = _db()
    rec = person(1)
    del rec["kana"]
    registry.apply_ops(conn, [_put(rec)])
    line = next(registry.export_lines(conn))
    assert '"kana":null' in line


def test_digest_finds_the_one_differing_bucket_and_repair_fixes_it() -> None:
    hub, node = _db(), _db()
    ops = [_put(person(i, household=i)) for i in range(1, 200)]
    registry.apply_ops(hub, ops)
    registry.apply_ops(node, ops)
    victim = person(57, household=57)
    node.execute(
        "UPDATE person_history SET record = replace(record, '門川', '門河') WHERE atena_no = ?", (victim["atena_no"],)
    )
    ours, theirs = registry.compute_digest(node, 64), registry.compute_digest(hub, 64)
    differing = [i for i in range(64) if ours[i] != theirs[i]]
    assert differing == [registry.bucket_of("ph", victim["atena_no"], 64)]
    import json

    rows = [json.loads(r) for r in registry.bucket_rows(hub, differing[0], 64)]
    registry.replace_bucket(node, differing[0], 64, rows)
    assert registry.compute_digest(node, 64) == theirs
    assert list(registry.export_lines(node)) == list(registry.export_lines(hub))


def _lines(n: int, bad_at: int | None = None) -> list[bytes]:
    out = []
    for i in range(1, n + 1):
        rec = person(i, household=i)
        if i == bad_at:
            rec["status"] = "引越し"
        out.append(wire.canonical_bytes({"a": rec["atena_no"], "r": 1, "t": "ph", "v": rec}))
    return out


def test_a_bad_record_deep_in_a_parallel_bulk_load_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PARALLEL_ROWS", 100)
    conn = _db()
    with pytest.raises(RecordError, match="住民状態"):
        registry.bulk_load(conn, _lines(12_000, bad_at=11_500), expected_rows=12_000)


def test_a_broken_validation_worker_falls_back_to_validating_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor

    def broken(self: object, *args: object, **kwargs: object) -> None:
        raise BrokenProcessPool("worker died")

    monkeypatch.setattr(registry, "PARALLEL_ROWS", 100)
    monkeypatch.setattr(ProcessPoolExecutor, "submit", broken)
    conn = _db()
    with pytest.raises(RecordError, match="住民状態"):
        registry.bulk_load(conn, _lines(6_000, bad_at=5_999), expected_rows=6_000)
    conn2 = _db()
    assert registry.bulk_load(conn2, _lines(6_000), expected_rows=6_000) == 6_000
