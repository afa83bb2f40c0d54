"""Searching a replica: what is found, in which order, and that the index follows the registry."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import orjson
import pytest

from edgenode import registry
from edgenode.hub.synth import generate_population
from edgenode.search import QueryError, index
from edgenode.search.query import SearchQuery, parse_free_text, search
from tests.records import person
from tests.search.conftest import put


def _names(conn: sqlite3.Connection, **q: Any) -> list[str]:
    return [h.name for h in search(conn, SearchQuery(**q))]


def test_kana_query_finds_long_vowel_spellings_of_the_same_name(replica: sqlite3.Connection) -> None:
    put(
        replica,
        person(1, name="佐藤　一郎", kana="サトウ　イチロウ"),
        person(2, name="佐藤　二郎", kana="サトー　ジロー"),
        person(3, name="里　三郎", kana="サト　サブロウ"),
        person(4, name="上田　四郎", kana="ウエダ　シロウ"),
    )
    assert sorted(_names(replica, kana="さとう")) == ["佐藤　一郎", "佐藤　二郎", "里　三郎"]
    assert _names(replica, kana="ｻﾄｵ ｼﾞﾛｳ") == ["佐藤　二郎"]
    assert _names(replica, kana="ウエダ") == ["上田　四郎"]
    assert _names(replica, kana="エダ") == []


def test_given_name_alone_and_the_name_typed_without_a_space_are_found(replica: sqlite3.Connection) -> None:
    put(replica, person(1, name="佐藤　修", kana="サトウ　オサム"), person(2, name="青木　修", kana="アオキ　オサム"))
    assert _names(replica, kana="オサム") == ["青木　修", "佐藤　修"]
    assert _names(replica, kana="サトウオサム") == ["佐藤　修"]
    assert _names(replica, name="修") == ["青木　修", "佐藤　修"]
    assert _names(replica, name="佐藤修") == ["佐藤　修"]


def test_variant_kanji_are_found_by_the_common_form(replica: sqlite3.Connection) -> None:
    put(
        replica,
        person(1, name="髙橋　一郎", kana="タカハシ　イチロウ"),
        person(2, name="山\ufa11　花子", kana="ヤマザキ　ハナコ"),
        person(3, name="\U00020bb7田　太郎", kana="ヨシダ　タロウ"),
        person(4, name="斉\U000e0103藤　次郎", kana="サイトウ　ジロウ"),
    )
    assert _names(replica, name="高橋") == ["髙橋　一郎"]
    assert _names(replica, name="山崎　花子") == ["山\ufa11　花子"]
    assert _names(replica, name="吉田") == ["\U00020bb7田　太郎"]
    assert _names(replica, name="齋藤") == ["斉\U000e0103藤　次郎"]


def test_stored_names_stay_byte_exact_after_indexing(replica: sqlite3.Connection) -> None:
    tricky = person(
        1, name="斉\U000e0103藤　\ufa19子", kana="ｻｲﾄｳ　ｶﾐｺ", address="宮崎県門川町大字加草", banchi="１番地"
    )
    put(replica, tricky)
    before = replica.execute("SELECT record FROM person_history").fetchone()[0]
    replica.execute("BEGIN")
    index.build(replica)
    replica.execute("COMMIT")
    (after,) = replica.execute("SELECT record FROM person_history").fetchone()
    assert after == before and orjson.loads(after)["name"] == tricky["name"]
    person_row = replica.execute("SELECT name, kana FROM person").fetchone()
    assert person_row == (tricky["name"], tricky["kana"])
    (hit,) = search(replica, SearchQuery(kana="さいとう かみこ"))
    assert (hit.name, hit.kana, hit.banchi) == (tricky["name"], tricky["kana"], "１番地")


def test_wareki_and_seireki_birth_queries_find_the_same_people(replica: sqlite3.Connection) -> None:
    put(
        replica,
        person(1, birth_date="昭和55年12月26日", birth_date_iso="1980-12-26"),
        person(2, birth_date="昭和55年12月27日", birth_date_iso="1980-12-27"),
        person(3, birth_date="1981年1月2日", birth_date_iso="1981-01-02", resident_type="外国人住民"),
    )
    day = [h.atena_no for h in search(replica, SearchQuery(birth="昭和55年12月26日"))]
    for text in ("S55.12.26", "s551226", "1980-12-26", "1980/12/26", "19801226"):
        assert [h.atena_no for h in search(replica, SearchQuery(birth=text))] == day
    assert len(day) == 1
    assert len(search(replica, SearchQuery(birth="昭和55"))) == 2
    assert len(search(replica, SearchQuery(birth="1980-12"))) == 2
    assert len(search(replica, SearchQuery(birth="S56"))) == 1


def test_fields_combine_with_and(replica: sqlite3.Connection) -> None:
    put(
        replica,
        person(1, name="佐藤　一郎", kana="サトウ　イチロウ", birth_date_iso="1980-12-26"),
        person(2, name="佐藤　一郎", kana="サトウ　イチロウ", birth_date_iso="1950-01-01", banchi="99番地"),
        person(3, name="鈴木　一郎", kana="スズキ　イチロウ", birth_date_iso="1980-12-26"),
    )
    assert [h.atena_no for h in search(replica, SearchQuery(kana="サトウ", birth="S55.12.26"))] == [
        person(1)["atena_no"]
    ]
    assert [h.atena_no for h in search(replica, SearchQuery(name="一郎", address="99番地"))] == [person(2)["atena_no"]]
    assert search(replica, SearchQuery(kana="スズキ", name="佐藤")) == []


def test_prefix_and_substring_matches_rank_after_exact_ones(replica: sqlite3.Connection) -> None:
    put(
        replica,
        person(1, name="渡辺　一", kana="ワタナベ　ハジメ"),
        person(2, name="渡部　一", kana="ワタナベ　ハジメ", birth_date_iso="1970-01-01"),
        person(3, name="渡辺　二郎", kana="ワタナベ　ジロウ"),
        person(4, name="綿鍋　太", kana="ワタナベリ　フトシ"),
        person(5, name="大渡辺　三", kana="オオワタナベ　サブロウ"),
    )
    hits = search(replica, SearchQuery(kana="ワタナベ"))
    # the same フリガナ: the older first
    assert [h.name for h in hits] == ["渡辺　二郎", "渡部　一", "渡辺　一", "綿鍋　太", "大渡辺　三"]
    assert [h.exact for h in hits] == [True, True, True, False, False]
    assert [h.name for h in search(replica, SearchQuery(kana="わたなべじ"))] == ["渡辺　二郎"]
    # two characters: prefixes only, no substrings
    assert [h.name for h in search(replica, SearchQuery(name="渡辺"))] == ["渡辺　二郎", "渡辺　一"]
    assert [h.name for h in search(replica, SearchQuery(name="渡辺三"))] == ["大渡辺　三"]
    assert [h.name for h in search(replica, SearchQuery(kana="タナベリ"))] == ["綿鍋　太"]  # substring


def test_a_page_is_cut_at_the_limit_in_kana_order(replica: sqlite3.Connection) -> None:
    given = ["アキラ", "イサム", "ウメ", "エミ", "オサム", "カズオ", "キヨシ"]
    put(replica, *[person(i, name=f"佐藤　{i}", kana=f"サトウ　{k}") for i, k in enumerate(given, start=1)])
    hits = search(replica, SearchQuery(kana="サトウ", limit=3))
    assert [h.kana for h in hits] == ["サトウ　アキラ", "サトウ　イサム", "サトウ　ウメ"]


def test_removed_residents_are_found_only_when_asked(replica: sqlite3.Connection) -> None:
    put(
        replica,
        person(1, name="山田　花子", kana="ヤマダ　ハナコ"),
        person(2, name="山田　太郎", kana="ヤマダ　タロウ", status="転出"),
        person(3, name="山田　次郎", kana="ヤマダ　ジロウ", status="死亡"),
    )
    assert _names(replica, kana="ヤマダ") == ["山田　花子"]
    hits = search(replica, SearchQuery(kana="ヤマダ", include_removed=True))
    assert [(h.name, h.status) for h in hits] == [
        ("山田　次郎", "死亡"),
        ("山田　太郎", "転出"),
        ("山田　花子", "住民"),
    ]
    assert search(replica, SearchQuery(atena_no=person(2)["atena_no"])) == []
    assert len(search(replica, SearchQuery(atena_no=person(2)["atena_no"], include_removed=True))) == 1


def test_alias_former_surname_and_alphabet_names_are_found_and_named(replica: sqlite3.Connection) -> None:
    put(
        replica,
        person(
            1,
            name="朴　英子",
            kana="パク　ヨンジャ",
            alias="青木　幸子",
            alias_kana="アオキ　サチコ",
            name_alpha="PARK YOUNGJA",
        ),
        person(2, name="佐藤　花子", kana="サトウ　ハナコ", former_surname="山田", former_surname_kana="ヤマダ"),
    )
    (hit,) = search(replica, SearchQuery(kana="アオキ"))
    assert (hit.name, hit.matched, hit.exact) == ("朴　英子", ("alias_kana",), True)
    assert search(replica, SearchQuery(name="青木幸子"))[0].matched == ("alias",)
    assert search(replica, SearchQuery(name="park youngja"))[0].matched == ("name_alpha",)
    (hit,) = search(replica, SearchQuery(kana="ヤマダ　ハナコ"))
    assert (hit.name, hit.matched) == ("佐藤　花子", ("former_surname_kana",))
    assert search(replica, SearchQuery(name="山田"))[0].matched == ("former_surname",)
    assert search(replica, SearchQuery(kana="サトウ", birth="S55"))[0].matched == ("kana", "birth_date")


def test_di_is_found_by_ji_and_by_chi(replica: sqlite3.Connection) -> None:
    put(
        replica,
        person(1, name="千々岩　一", kana="チヂワ　ハジメ"),
        person(2, name="千地岩　二", kana="チジワ　ジロウ"),
    )
    assert _names(replica, kana="チチワ") == ["千々岩　一"]
    assert sorted(_names(replica, kana="チジワ")) == ["千々岩　一", "千地岩　二"]
    assert sorted(_names(replica, kana="チヂワ")) == ["千々岩　一", "千地岩　二"]


def test_address_matches_anywhere_including_the_building(replica: sqlite3.Connection) -> None:
    put(
        replica,
        person(1, address="宮崎県門川町城ケ丘", banchi="3688番地26", katagaki="サンハイツ十鈴 212"),
        person(2, address="宮崎県門川町南町", banchi="1647番地8"),
    )
    assert len(search(replica, SearchQuery(address="城ヶ丘３６８８－２６"))) == 0  # 番地 is not a dash
    assert [h.atena_no for h in search(replica, SearchQuery(address="城ヶ丘３６８８番地"))] == [person(1)["atena_no"]]
    (hit,) = search(replica, SearchQuery(address="ｻﾝﾊｲﾂ"))
    assert hit.full_address == "宮崎県門川町城ケ丘3688番地26\u3000サンハイツ十鈴 212"
    assert [h.atena_no for h in search(replica, SearchQuery(address="南町"))] == [person(2)["atena_no"]]


def test_numbers_find_exactly_one_person_or_household(replica: sqlite3.Connection) -> None:
    put(
        replica,
        person(1, household=7, juminhyo_code="12345678901"),
        person(2, household=7),
        person(3, household=8),
    )
    assert [h.atena_no for h in search(replica, SearchQuery(atena_no=person(2)["atena_no"]))] == [person(2)["atena_no"]]
    assert [h.atena_no for h in search(replica, SearchQuery(juminhyo_code="１２３４５６７８９０１"))] == [
        person(1)["atena_no"]
    ]
    assert len(search(replica, SearchQuery(household_no=person(1, household=7)["household_no"]))) == 2


def test_reindex_after_a_name_change_finds_the_new_name_and_not_the_old(replica: sqlite3.Connection) -> None:
    old = person(1, name="山田　花子", kana="ヤマダ　ハナコ")
    put(replica, old)
    married = {**old, "rireki_no": 2, "name": "佐藤　花子", "kana": "サトウ　ハナコ", "change_reason": "氏の変更"}
    married |= {"change_class": "修正", "former_surname": "山田", "former_surname_kana": "ヤマダ"}
    put(replica, married)
    assert _names(replica, kana="サトウ　ハナコ") == ["佐藤　花子"]
    assert _names(replica, name="佐藤") == ["佐藤　花子"]
    (hit,) = search(replica, SearchQuery(kana="ヤマダ　ハナコ"))  # by the 旧氏 now, not as the name
    assert hit.matched == ("former_surname_kana",)
    renamed = {**married, "rireki_no": 3, "name": "鈴木　花子", "kana": "スズキ　ハナコ"}
    renamed.pop("former_surname")
    renamed.pop("former_surname_kana")
    put(replica, renamed)
    assert (
        _names(replica, kana="ヤマダ") == []
        and _names(replica, kana="サトウ") == []
        and _names(replica, name="佐藤") == []
    )
    assert _names(replica, kana="スズキ") == ["鈴木　花子"]
    assert replica.execute("SELECT count(*) FROM search_key").fetchone()[0] == 0


def test_reindex_of_a_removed_history_drops_the_person(replica: sqlite3.Connection) -> None:
    put(replica, person(1, name="山田　花子", kana="ヤマダ　ハナコ"))
    replica.execute("BEGIN")
    touched = registry.apply_ops(replica, [{"t": "ph", "a": person(1)["atena_no"], "r": 1, "del": True}])
    index.reindex(replica, touched)
    replica.execute("COMMIT")
    assert search(replica, SearchQuery(kana="ヤマダ", include_removed=True)) == []
    assert replica.execute("SELECT count(*) FROM search_text").fetchone()[0] == 0


def test_build_and_reindex_give_the_same_index(replica: sqlite3.Connection) -> None:
    records = generate_population("454214", "門川町", 300, 5, dt.date(2026, 11, 27))
    put(replica, *records)
    dump = "SELECT atena_no, live, kana, kana_cut, name, name_cut, address, birth, juminhyo, extra FROM search_text"
    by_reindex = sorted(replica.execute(dump).fetchall())
    keys = sorted(replica.execute("SELECT kind, key FROM search_key").fetchall())
    replica.execute("BEGIN")
    assert index.build(replica) == 300
    assert replica.in_transaction  # build leaves the caller's transaction open
    replica.execute("COMMIT")
    assert sorted(replica.execute(dump).fetchall()) == by_reindex
    assert sorted(replica.execute("SELECT kind, key FROM search_key").fetchall()) == keys
    assert replica.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    replica.execute("INSERT INTO search_kana_fts (search_kana_fts) VALUES ('integrity-check')")


def test_build_rolls_back_with_the_callers_transaction(replica: sqlite3.Connection) -> None:
    put(replica, person(1, name="山田　花子", kana="ヤマダ　ハナコ"))
    replica.execute("BEGIN")
    replica.execute("DELETE FROM person")
    index.build(replica)
    replica.execute("ROLLBACK")
    assert _names(replica, kana="ヤマダ") == ["山田　花子"]


def test_every_synthetic_resident_is_found_by_kana_and_birth(replica: sqlite3.Connection) -> None:
    records = generate_population("454214", "門川町", 400, 11, dt.date(2026, 11, 27))
    put(replica, *records)
    for rec in records[::7]:
        hits = search(replica, SearchQuery(kana=rec["kana"], birth=rec["birth_date"], limit=1000))
        assert rec["atena_no"] in [h.atena_no for h in hits]
        hits = search(replica, SearchQuery(name=rec["name"], birth=rec["birth_date_iso"], limit=1000))
        assert rec["atena_no"] in [h.atena_no for h in hits] and all(h.exact for h in hits)


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("00000019", "atena_no", "00000019"),
        ("７６８８３１９９４３８", "juminhyo_code", "76883199438"),
        ("さとう はなこ", "kana", "さとう はなこ"),
        ("ｻﾄｳ", "kana", "ｻﾄｳ"),
        ("昭和55年12月26日", "birth", "昭和55年12月26日"),
        ("S55.12.26", "birth", "S55.12.26"),
        ("1980-12-26", "birth", "1980-12-26"),
        ("城ケ丘3688", "address", "城ケ丘3688"),
        ("渡辺　修平", "name", "渡辺　修平"),
        ("PARK", "name", "PARK"),
    ],
)
def test_free_text_guesses_the_field(text: str, field: str, value: str) -> None:
    assert getattr(parse_free_text(text), field) == value


def test_free_text_of_eight_digits_without_a_valid_check_digit_is_not_an_atena_no() -> None:
    assert parse_free_text("00000010").atena_no is None


def test_empty_and_meaningless_queries_are_refused(replica: sqlite3.Connection) -> None:
    for q in (SearchQuery(), SearchQuery(kana="ーー"), SearchQuery(birth="昭和99"), SearchQuery(atena_no="abc")):
        with pytest.raises(QueryError):
            search(replica, q)
    with pytest.raises(QueryError):
        parse_free_text("  ")


def test_index_rows_name_every_key_of_a_record() -> None:
    rec = person(
        1,
        name="佐藤　花子",
        kana="サトウ　ハナコ",
        former_surname="山田",
        former_surname_kana="ヤマダ",
        juminhyo_code="12345678901",
    )
    rows = index.index_rows(rec)
    assert rows == index.index_rows(dict(rec))  # pure: same record, same keys
    assert ("k", "サトハナコ") in rows and ("p", "サト") in rows and ("p", "ハナコ") in rows
    assert ("k", "ヤマタハナコ") in rows and ("p", "ヤマタ") in rows
    assert ("n", "佐藤花子") in rows and ("q", "花子") in rows and ("n", "山田花子") in rows
    assert ("b", "1980-12-26") in rows and ("j", "12345678901") in rows
    assert ("a", "宮崎県東臼杵郡門川町大字加草1番地") in rows


def test_needs_build_until_the_index_holds_every_person(tmp_path: Any) -> None:
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    registry.create_schema(conn)
    registry.apply_ops(conn, [{"t": "ph", "a": person(1)["atena_no"], "r": 1, "v": person(1)}])
    assert index.needs_build(conn)
    conn.execute("BEGIN")
    index.build(conn)
    conn.execute("COMMIT")
    assert not index.needs_build(conn)
    assert [h.atena_no for h in search(conn, SearchQuery(kana="カドガワ"))] == [person(1)["atena_no"]]
