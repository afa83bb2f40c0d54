"""The synthetic population: deterministic, valid, and shaped like a Japanese town."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from typing import Any

import pytest

from edgenode.hub.synth import SP, TRICKY_SURNAMES, generate_population, order_rank
from edgenode.resident import is_valid_m11, is_valid_my_number, is_valid_relationship, validate_record
from edgenode.wareki import to_wareki

TODAY = dt.date(2026, 11, 27)
KATAKANA_NAME = re.compile(r"^[\u30a0-\u30ff]+\u3000[\u30a0-\u30ff]+$")


@pytest.fixture(scope="module")
def town() -> list[dict[str, Any]]:
    return generate_population("454214", "門川町", 20000, 42, TODAY)


def households(recs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        out[r["household_no"]].append(r)
    return out


def age(rec: dict[str, Any]) -> float:
    return (TODAY - dt.date.fromisoformat(rec["birth_date_iso"])).days / 365.2425


def test_population_is_deterministic_for_a_seed() -> None:
    a = generate_population("454214", "門川町", 3000, 7, TODAY)
    b = generate_population("454214", "門川町", 3000, 7, TODAY)
    c = generate_population("454214", "門川町", 3000, 8, TODAY)
    dump = json.dumps(a, ensure_ascii=False).encode()
    assert dump == json.dumps(b, ensure_ascii=False).encode()
    assert dump != json.dumps(c, ensure_ascii=False).encode()


def test_population_has_exactly_the_requested_size() -> None:
    assert generate_population("454214", "門川町", 0, 1, TODAY) == []
    for n in (1, 2, 17, 1000):
        assert len(generate_population("454214", "門川町", n, 1, TODAY)) == n


def test_every_record_validates_as_a_current_record(town: list[dict[str, Any]]) -> None:
    for r in town:
        validate_record(r)
        assert r["rireki_no"] == 1
        assert r["status"] == "住民"
        assert r["processed_on"] <= TODAY.isoformat()


def test_atena_and_household_numbers_carry_m11_check_digits_and_never_repeat(town: list[dict[str, Any]]) -> None:
    atena = [r["atena_no"] for r in town]
    assert len(set(atena)) == len(atena)
    assert all(len(a) == 8 and is_valid_m11(a) for a in atena)
    assert sorted(int(a[:-1]) for a in atena) == list(range(1, len(atena) + 1))
    hh = sorted({r["household_no"] for r in town}, key=lambda h: int(h[:-1]))
    assert all(len(h) == 8 and is_valid_m11(h) for h in hh)
    assert [int(h[:-1]) for h in hh] == list(range(5000001, 5000001 + len(hh)))


def test_my_numbers_and_juminhyo_codes_are_valid_and_unique(town: list[dict[str, Any]]) -> None:
    mn = [r["my_number"] for r in town]
    jc = [r["juminhyo_code"] for r in town]
    assert all(is_valid_my_number(m) for m in mn)
    assert all(len(j) == 11 and j.isdigit() for j in jc)
    assert len(set(mn)) == len(mn) and len(set(jc)) == len(jc)


def test_household_members_share_the_address_and_one_head(town: list[dict[str, Any]]) -> None:
    shared = ("address", "banchi", "katagaki", "address_code", "postal_code", "head_name")
    for members in households(town).values():
        for key in shared:
            assert len({m.get(key) for m in members}) == 1, (key, members)
        heads = [m for m in members if m["relationship"] == "世帯主"]
        assert len(heads) == 1
        assert heads[0]["name"] == members[0]["head_name"]


def test_household_order_follows_head_spouse_children_by_birth(town: list[dict[str, Any]]) -> None:
    for members in households(town).values():
        members = sorted(members, key=lambda m: m["household_order"])
        assert [m["household_order"] for m in members] == list(range(1, len(members) + 1))
        assert members[0]["relationship"] == "世帯主"
        keys = [(order_rank(m["relationship"]), m["birth_date_iso"]) for m in members]
        assert keys == sorted(keys)


def test_relationships_use_only_the_legal_vocabulary(town: list[dict[str, Any]]) -> None:
    rels = Counter(r["relationship"] for r in town)
    assert all(is_valid_relationship(rel) for rel in rels)
    for expected in ("世帯主", "妻", "夫", "子", "父", "母", "子の妻", "子の子", "同居人", "縁故者"):
        assert rels[expected] > 0, expected


def test_households_look_like_a_small_town(town: list[dict[str, Any]]) -> None:
    hh = households(town)
    sizes = Counter(len(m) for m in hh.values())
    assert 2.0 < len(town) / len(hh) < 2.8
    assert sizes[1] > sizes[3] > sizes[5] > 0
    three_gen = [m for m in hh.values() if {"子の子"} <= {x["relationship"] for x in m}]
    assert len(three_gen) > 50


def test_children_share_the_surname_of_the_head(town: list[dict[str, Any]]) -> None:
    for members in households(town).values():
        head = next(m for m in members if m["relationship"] == "世帯主")
        if head["resident_type"] != "日本人住民":
            continue
        for m in members:
            if m["relationship"] in ("子", "子の子"):
                assert m["name"].split(SP)[0] == head["name"].split(SP)[0]


def test_japanese_names_have_matching_katakana(town: list[dict[str, Any]]) -> None:
    readings: dict[str, set[str]] = defaultdict(set)
    for r in town:
        if r["resident_type"] != "日本人住民":
            continue
        assert KATAKANA_NAME.match(r["kana"]), r["kana"]
        (sur, given), (sur_k, given_k) = r["name"].split(SP), r["kana"].split(SP)
        readings[sur].add(sur_k)
        readings[given].add(given_k)
    assert all(len(k) == 1 for k in readings.values()), {n: k for n, k in readings.items() if len(k) > 1}


def test_age_pyramid_resembles_a_japanese_town(town: list[dict[str, Any]]) -> None:
    ages = [age(r) for r in town]
    old = sum(a >= 65 for a in ages) / len(ages)
    young = sum(a < 15 for a in ages) / len(ages)
    assert 0.28 < old < 0.42
    assert 0.08 < young < 0.16
    assert sum(70 <= a < 80 for a in ages) > sum(10 <= a < 20 for a in ages)
    assert max(ages) < 102


def test_about_two_to_three_percent_are_foreign_residents(town: list[dict[str, Any]]) -> None:
    share = sum(r["resident_type"] == "外国人住民" for r in town) / len(town)
    assert 0.02 <= share <= 0.03


def test_foreign_residents_carry_residence_items_and_a_western_birth_date(town: list[dict[str, Any]]) -> None:
    foreign = [r for r in town if r["resident_type"] == "外国人住民"]
    cats = Counter(r["foreign_category"] for r in foreign)
    assert cats["中長期在留者"] > cats["特別永住者"] > 0
    assert len({r["nationality"] for r in foreign}) >= 6
    for r in foreign:
        b = dt.date.fromisoformat(r["birth_date_iso"])
        assert r["birth_date"] == f"{b.year}年{b.month}月{b.day}日"
        assert r["name_alpha"] and r["foreign_resident_since"]
        assert re.fullmatch(r"[A-Z]{2}\d{8}[A-Z]{2}", r["residence_card_no"])
        assert "honseki" not in r and "hittosha" not in r
        if r["foreign_category"] == "中長期在留者":
            assert r["residence_status"]
        if r.get("residence_expiry"):
            assert r["residence_expiry"] > TODAY.isoformat() and r["residence_period"]
    assert any(r["name"] != r["name_alpha"] for r in foreign)  # some 氏名 in kanji
    assert any(r.get("alias") for r in foreign)  # some 通称


def test_japanese_residents_show_dates_in_wareki_and_have_a_honseki(town: list[dict[str, Any]]) -> None:
    for r in town:
        if r["resident_type"] != "日本人住民":
            continue
        assert r["birth_date"] == to_wareki(dt.date.fromisoformat(r["birth_date_iso"]))
        assert r["resident_since"] == to_wareki(dt.date.fromisoformat(r["resident_since_iso"]))
        assert r["birth_date_iso"] <= r["resident_since_iso"] <= TODAY.isoformat()
        assert r["honseki"] and r["hittosha"]
    assert any(r.get("honseki", "").startswith("宮崎県門川町") for r in town)
    assert any(r.get("honseki", "") and not r["honseki"].startswith("宮崎県門川町") for r in town)


def test_moves_into_and_within_the_town_are_recorded(town: list[dict[str, Any]]) -> None:
    reasons = Counter(r["change_reason"] for r in town)
    assert reasons["出生"] and reasons["国内転入"] and reasons["国外転入等"] and reasons["転居"]
    for r in town:
        if r["change_reason"] in ("国内転入", "国外転入等"):
            assert r["prev_address"] and not r["prev_address"].startswith("宮崎県門川町")
        if r["change_reason"] == "出生":
            assert "prev_address" not in r
        assert ("address_since" in r) == (r["change_reason"] == "転居")
        assert r["change_class"] == ("修正" if r["change_reason"] == "転居" else "記載")
    assert sum("address_since" in r for r in town) < 0.25 * len(town)


def test_addresses_lie_inside_the_municipality(town: list[dict[str, Any]]) -> None:
    for r in town:
        assert r["address"].startswith("宮崎県門川町")
        assert re.fullmatch(r"45421\d{6}", r["address_code"])
        assert re.fullmatch(r"889-06\d\d", r["postal_code"])
        assert re.fullmatch(r"\d+番地(\d+)?", r["banchi"])
    assert len({r["address"] for r in town}) > 10


def test_prefecture_and_codes_come_from_the_lg_code() -> None:
    for code, name, pref in (
        ("131016", "千代田区", "東京都"),
        ("011002", "札幌市", "北海道"),
        ("472018", "那覇市", "沖縄県"),
    ):
        recs = generate_population(code, name, 200, 3, TODAY)
        assert all(r["address"].startswith(pref + name) for r in recs)
        assert all(r["address_code"].startswith(code[:5]) and len(r["address_code"]) == 11 for r in recs)
    with pytest.raises(ValueError):
        generate_population("991234", "どこか町", 10, 1, TODAY)


def test_tricky_characters_are_stored_exactly_as_generated(town: list[dict[str, Any]]) -> None:
    names = "\n".join(r["name"] for r in town)
    for needle in ("髙", "\ufa11", "\U00020bb7", "斉\U000e0103"):
        assert needle in names, ascii(needle)
    assert {s for s, _ in TRICKY_SURNAMES} <= {r["name"].split(SP)[0] for r in town}
    katagaki = [r["katagaki"] for r in town if r.get("katagaki")]
    assert any("ー" in k for k in katagaki)
    assert any(re.search(r"[\uff61-\uff9f]", k) for k in katagaki)  # half-width katakana
    assert any(re.search(r"[A-Za-z]", k) for k in katagaki)
