"""Simulated daily 異動: valid records, consistent households, numbers that never collide."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections import Counter, defaultdict
from typing import Any

import pytest

from edgenode.hub.simulate import SCENARIOS, Change, simulate
from edgenode.hub.synth import SP, generate_population
from edgenode.resident import is_valid_m11, is_valid_relationship, validate_record

TODAY = dt.date(2026, 11, 27)
Rec = dict[str, Any]
History = tuple[dict[str, Rec], list[list[Change]]]


def apply(current: dict[str, Rec], changes: list[Change]) -> None:
    """Append each record as the person's next 履歴 (as the hub does), validating it."""
    for c in changes:
        for rec in c.records:
            prev = current.get(rec["atena_no"])
            full = {**rec, "rireki_no": prev["rireki_no"] + 1 if prev else 1}
            validate_record(full)
            current[rec["atena_no"]] = full


def run(rounds: int, n: int = 100, seed: int = 1, size: int = 3000) -> tuple[dict[str, Rec], list[list[Change]]]:
    """`rounds` calls of `simulate` on a synthetic town, each on the result of the last."""
    current = {r["atena_no"]: r for r in generate_population("454214", "門川町", size, seed, TODAY)}
    rng, log = random.Random(seed), []
    for i in range(rounds):
        day = TODAY + dt.timedelta(days=i)
        changes = simulate(list(current.values()), n, rng, day, "門川町", "454214")
        apply(current, changes)
        log.append(changes)
    return current, log


@pytest.fixture(scope="module")
def history() -> History:
    return run(12)


def all_changes(history: History) -> list[Change]:
    return [c for day in history[1] for c in day]


def test_simulate_is_deterministic_for_an_rng_seed() -> None:
    pop = generate_population("454214", "門川町", 1500, 3, TODAY)

    def once(seed: int) -> bytes:
        changes = simulate(pop, 60, random.Random(seed), TODAY, "門川町", "454214")
        return json.dumps([(c.reason, c.records) for c in changes], ensure_ascii=False).encode()

    assert once(9) == once(9)
    assert once(9) != once(10)


def test_about_n_changes_mixing_every_scenario(history: History) -> None:
    assert all(len(day) == 100 for day in history[1])
    reasons = Counter(c.reason for c in all_changes(history))
    assert set(reasons) == {name for name, _ in SCENARIOS}
    assert reasons["転入"] > reasons["世帯合併"] and reasons["転出"] > reasons["氏名変更"]


def test_every_changed_record_validates_with_the_next_rireki_no(history: History) -> None:
    for c in all_changes(history):
        assert c.records
        for rec in c.records:
            assert "rireki_no" not in rec  # the hub assigns it
            validate_record({**rec, "rireki_no": 2})


def test_each_record_names_its_reason_class_and_dates(history: History) -> None:
    cls = {
        "国内転入": "記載",
        "国外転入等": "記載",
        "出生": "記載",
        "国内転出": "消除",
        "国外転出": "消除",
        "死亡": "消除",
    }
    for day, changes in enumerate(history[1]):
        today = (TODAY + dt.timedelta(days=day)).isoformat()
        for c in changes:
            for rec in c.records:
                assert rec["change_class"] == cls.get(rec["change_reason"], "修正")
                assert rec["processed_on"] == today
                assert rec["change_date_iso"] <= today or rec["change_reason"] in ("国内転出", "国外転出")
                assert is_valid_relationship(rec["relationship"])


def test_moving_out_and_death_remove_the_person(history: History) -> None:
    for c in all_changes(history):
        for rec in c.records:
            if rec["change_class"] == "消除":
                assert rec["status"] in ("転出", "死亡")
                assert rec["removal_reason"] == rec["status"] and rec["removal_date"]
                assert rec["status"] == "死亡" or rec["moved_to"]
            else:
                assert rec["status"] == "住民"


def test_removed_persons_never_take_part_again(history: History) -> None:
    gone: set[str] = set()
    for c in all_changes(history):
        for rec in c.records:
            assert rec["atena_no"] not in gone
            if rec["status"] != "住民":
                gone.add(rec["atena_no"])


def test_death_of_a_head_hands_the_household_to_a_new_head(history: History) -> None:
    cases = [c for c in all_changes(history) if c.reason == "死亡" and len(c.records) > 1]
    assert len(cases) >= 5
    for c in cases:
        dead, *rest = c.records
        assert dead["status"] == "死亡" and dead["relationship"] == "世帯主"
        assert all(r["change_reason"] == "世帯主変更" and r["status"] == "住民" for r in rest)
        heads = [r for r in rest if r["relationship"] == "世帯主"]
        assert len(heads) == 1
        assert {r["head_name"] for r in rest} == {heads[0]["name"]}
        assert {r["household_no"] for r in rest} == {dead["household_no"]}
        assert sorted(r["household_order"] for r in rest) == list(range(1, len(rest) + 1))


def test_a_household_relocation_keeps_the_household_together() -> None:
    current = {r["atena_no"]: r for r in generate_population("454214", "門川町", 3000, 5, TODAY)}
    rng, seen = random.Random(5), 0
    for _ in range(5):
        before = dict(current)
        members: dict[str, set[str]] = defaultdict(set)
        for r in before.values():
            if r["status"] == "住民":
                members[r["household_no"]].add(r["atena_no"])
        changes = simulate(list(before.values()), 100, rng, TODAY, "門川町", "454214")
        for c in changes:
            if c.reason != "転居":
                continue
            seen += 1
            hh = {r["household_no"] for r in c.records}
            assert len(hh) == 1
            assert {r["atena_no"] for r in c.records} == members[hh.pop()]
            for key in ("address", "banchi", "katagaki", "address_code", "address_since_iso"):
                assert len({r.get(key) for r in c.records}) == 1
            old = before[c.records[0]["atena_no"]]
            assert (old["address"], old["banchi"], old.get("katagaki")) != (
                c.records[0]["address"],
                c.records[0]["banchi"],
                c.records[0].get("katagaki"),
            )
            break  # later changes of the same call may already have moved someone in
        apply(current, changes)
    assert seen


def test_numbers_never_collide_across_many_rounds(history: History) -> None:
    _, log = history
    start = generate_population("454214", "門川町", 3000, 1, TODAY)  # what `run` started from
    known_atena = {r["atena_no"] for r in start}
    known_hh = {r["household_no"] for r in start}
    issued_mn = {r[k]: r["atena_no"] for r in start for k in ("my_number", "juminhyo_code") if r.get(k)}
    last_atena = max(int(a[:-1]) for a in known_atena)
    last_hh = max(int(h[:-1]) for h in known_hh)
    seen_hh: set[str] = set(known_hh)
    for day in log:
        for c in day:
            for rec in c.records:
                a, h = rec["atena_no"], rec["household_no"]
                assert is_valid_m11(a) and is_valid_m11(h)
                if a not in known_atena:
                    assert int(a[:-1]) == last_atena + 1  # fresh numbers follow the largest
                    last_atena += 1
                    known_atena.add(a)
                if h not in seen_hh:
                    assert int(h[:-1]) > last_hh
                    last_hh = int(h[:-1])
                    seen_hh.add(h)
                for key in ("my_number", "juminhyo_code", "residence_card_no"):
                    if rec.get(key):
                        assert issued_mn.setdefault(rec[key], a) == a, (key, rec[key])


def test_households_stay_consistent_after_many_rounds(history: History) -> None:
    current, _ = history
    by_hh: dict[str, list[Rec]] = defaultdict(list)
    for r in current.values():
        if r["status"] == "住民":
            by_hh[r["household_no"]].append(r)
    for members in by_hh.values():
        for key in ("address", "banchi", "katagaki", "head_name"):
            assert len({m.get(key) for m in members}) == 1, (key, members)
        heads = [m for m in members if m["relationship"] == "世帯主"]
        assert len(heads) == 1
        assert heads[0]["name"] == members[0]["head_name"]
        orders = [m["household_order"] for m in members]
        assert len(set(orders)) == len(orders)


def test_a_birth_joins_the_mothers_household_with_matching_kana(history: History) -> None:
    births = [c for c in all_changes(history) if c.reason == "出生"]
    assert births
    for c in births:
        (baby,) = c.records
        assert baby["relationship"] in ("子", "子の子")
        assert baby["birth_date_iso"] == baby["resident_since_iso"] == baby["change_date_iso"]
        assert re.fullmatch(r"[\u30a0-\u30ff]+\u3000[\u30a0-\u30ff]+", baby["kana"])
        assert len(baby["name"].split(SP)) == 2 and baby["my_number"]


def test_a_marriage_records_the_former_surname(history: History) -> None:
    changes = [c for c in all_changes(history) if c.reason == "氏名変更"]
    assert changes
    for c in changes:
        rec = c.records[0]
        assert rec["former_surname"] and rec["former_surname_kana"]
        assert rec["name"].split(SP)[0] != rec["former_surname"]
        assert rec["kana"].split(SP)[0] != rec["former_surname_kana"] or rec["name"] != rec["former_surname"]
        assert "notified_on" not in rec  # 職権修正 from a 戸籍 notice


def test_split_and_merge_change_the_household_number_only(history: History) -> None:
    for c in all_changes(history):
        if c.reason not in ("世帯分離", "世帯合併"):
            continue
        assert len({r["household_no"] for r in c.records}) == 1
        if c.reason == "世帯分離":
            assert sum(r["relationship"] == "世帯主" for r in c.records) == 1
        else:
            assert all(r["relationship"] != "世帯主" for r in c.records)


def test_simulate_on_an_empty_tenant_starts_by_moving_people_in() -> None:
    changes = simulate([], 20, random.Random(2), TODAY, "門川町", "454214")
    assert len(changes) == 20
    assert changes[0].reason in ("転入", "国外転入")
    current: dict[str, Rec] = {}
    apply(current, changes)
    assert min(int(a[:-1]) for a in current) == 1
    assert min(int(r["household_no"][:-1]) for r in current.values()) == 5000001
