"""世帯員の並び順 (spec 5.2): the registry's order when given, else the standard's."""

from __future__ import annotations

from typing import Any

from edgenode.certs.rules import household_order
from tests.records import person


def member(i: int, rel: str, born: str, **over: Any) -> dict[str, Any]:
    return person(i, relationship=rel, birth_date_iso=born, **over)


def names(records: list[Any]) -> list[str]:
    return [f"{r['relationship']}:{r['atena_no'][:-1].lstrip('0')}" for r in records]


def test_registry_order_is_used_when_present() -> None:
    recs = [member(1, "子", "2000-01-01", household_order=2), member(2, "世帯主", "1970-01-01", household_order=1)]
    assert names(household_order(recs)) == ["世帯主:2", "子:1"]


def test_derived_order_follows_the_standard() -> None:
    recs = [
        member(1, "同居人", "1950-01-01"),
        member(2, "縁故者", "1950-01-01"),
        member(3, "妹", "1980-01-01"),
        member(4, "兄", "1970-01-01"),
        member(5, "母", "1945-01-01", name="日向\u3000直子", hittosha="日向\u3000清"),
        member(6, "父", "1943-01-01", name="日向\u3000清", hittosha="日向\u3000清"),
        member(7, "子の子", "2020-01-01"),
        member(8, "子の妻", "1999-01-01"),
        member(9, "子", "2005-01-01"),
        member(10, "子", "2001-01-01"),
        member(11, "妻", "1975-01-01"),
        member(12, "世帯主", "1972-01-01"),
        member(13, "妻の父", "1940-01-01"),
    ]
    assert names(household_order(recs)) == [
        "世帯主:12",
        "妻:11",
        "子:10",  # 世帯主の子 by birth date
        "子:9",
        "子の妻:8",  # 子の家族
        "子の子:7",
        "父:6",  # the parent who is 筆頭者 first
        "母:5",
        "兄:4",
        "妹:3",
        "妻の父:13",  # other kin
        "縁故者:2",
        "同居人:1",
    ]


def test_children_born_the_same_day_are_ordered_by_atena_number() -> None:
    recs = [member(9, "子", "2010-05-05"), member(3, "子", "2010-05-05"), member(1, "世帯主", "1980-01-01")]
    assert names(household_order(recs)) == ["世帯主:1", "子:3", "子:9"]


def test_newcomers_without_registry_order_come_after_the_ordered_members() -> None:
    recs = [
        member(5, "子", "2026-10-01"),
        member(2, "妻", "1980-01-01", household_order=2),
        member(1, "世帯主", "1978-01-01", household_order=1),
    ]
    assert names(household_order(recs)) == ["世帯主:1", "妻:2", "子:5"]


def test_unknown_birth_dates_sort_last_within_their_rank() -> None:
    recs = [member(4, "子", ""), member(3, "子", "2012-01-01"), member(1, "世帯主", "1980-01-01")]
    assert names(household_order(recs)) == ["世帯主:1", "子:3", "子:4"]
