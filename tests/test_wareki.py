"""和暦: era boundaries, 元年, the two shared days, 西暦 display, a new era added by setting."""

from __future__ import annotations

import datetime as dt

import pytest

from edgenode.wareki import (
    DEFAULT_TABLE,
    EraTable,
    era_of,
    parse_seireki,
    parse_wareki,
    to_seireki,
    to_wareki,
)


@pytest.mark.parametrize(
    ("day", "text"),
    [
        (dt.date(1989, 1, 7), "昭和64年1月7日"),
        (dt.date(1989, 1, 8), "平成元年1月8日"),
        (dt.date(2019, 4, 30), "平成31年4月30日"),
        (dt.date(2019, 5, 1), "令和元年5月1日"),
        (dt.date(2020, 1, 1), "令和2年1月1日"),
        (dt.date(1926, 12, 24), "大正15年12月24日"),
        (dt.date(1926, 12, 25), "昭和元年12月25日"),
        (dt.date(1912, 7, 29), "明治45年7月29日"),
        (dt.date(1912, 7, 30), "大正元年7月30日"),
        (dt.date(1873, 1, 1), "明治6年1月1日"),
        (dt.date(2026, 11, 27), "令和8年11月27日"),
    ],
)
def test_era_boundaries_print_and_parse_back(day: dt.date, text: str) -> None:
    assert to_wareki(day) == text
    assert parse_wareki(text) == day


def test_year_one_prints_as_gannen_and_parses_from_either_spelling() -> None:
    assert to_wareki(dt.date(2019, 12, 31)) == "令和元年12月31日"
    assert parse_wareki("令和元年12月31日") == parse_wareki("令和1年12月31日") == dt.date(2019, 12, 31)


def test_shared_days_are_accepted_under_both_names_and_print_with_the_new_era() -> None:
    assert parse_wareki("明治45年7月30日") == parse_wareki("大正元年7月30日") == dt.date(1912, 7, 30)
    assert parse_wareki("大正15年12月25日") == parse_wareki("昭和元年12月25日") == dt.date(1926, 12, 25)
    assert to_wareki(dt.date(1912, 7, 30)).startswith("大正")
    assert era_of(dt.date(1926, 12, 25)) == ("昭和", 1)


@pytest.mark.parametrize(
    "text",
    [
        "昭和64年1月8日",  # 平成 had started: changed at midnight, no shared day
        "平成元年1月7日",
        "平成31年5月1日",
        "令和元年4月30日",
        "明治45年7月31日",
        "大正15年12月26日",
        "明治5年12月2日",  # before the Gregorian calendar
        "令和3年2月29日",  # a non-calendar date the registry may hold
        "令和○○年頃",  # 不詳日
        "年月日不詳",
        "令和0年1月1日",
        "1990年4月3日",
    ],
)
def test_strings_that_name_no_calendar_day_parse_to_none(text: str) -> None:
    assert parse_wareki(text) is None


def test_full_width_digits_parse() -> None:
    assert parse_wareki("平成１２年４月３日") == dt.date(2000, 4, 3)


def test_every_day_round_trips_through_wareki() -> None:
    day = dt.date(1873, 1, 1)
    while day < dt.date(2040, 1, 1):
        assert parse_wareki(to_wareki(day)) == day
        day += dt.timedelta(days=1)


def test_days_before_1873_are_refused() -> None:
    with pytest.raises(ValueError, match="和暦に換算できません"):
        to_wareki(dt.date(1872, 12, 31))


def test_a_new_era_is_added_by_setting_without_touching_the_default_table() -> None:
    table = DEFAULT_TABLE.extended("新元", dt.date(2031, 3, 1))
    assert table.to_wareki(dt.date(2031, 2, 28)) == "令和13年2月28日"
    assert table.to_wareki(dt.date(2031, 3, 1)) == "新元元年3月1日"
    assert table.parse("新元2年1月5日") == dt.date(2032, 1, 5)
    assert table.parse("令和13年3月1日") is None
    assert to_wareki(dt.date(2031, 3, 1)) == "令和13年3月1日"  # the default table is unchanged


def test_an_era_table_must_be_in_order() -> None:
    with pytest.raises(ValueError, match="より後に始まります"):
        DEFAULT_TABLE.extended("逆行", dt.date(2019, 5, 1))
    with pytest.raises(ValueError, match="元号表が空"):
        EraTable(())


def test_seireki_display_for_foreign_residents() -> None:
    assert to_seireki(dt.date(1990, 4, 3)) == "1990年4月3日"
    assert parse_seireki("1990年4月3日") == dt.date(1990, 4, 3)
    assert parse_seireki("1990年2月30日") is None
    assert parse_seireki("平成2年4月3日") is None
