"""生年月日 queries in 和暦 or 西暦, whole or partial, name the same days."""

from __future__ import annotations

import datetime as dt

import pytest

from edgenode.search import QueryError
from edgenode.search.birth import BirthRange, looks_like_birth, parse_birth
from edgenode.wareki import ERAS, Era

DAY = BirthRange(dt.date(1980, 12, 26), dt.date(1980, 12, 26))


@pytest.mark.parametrize(
    "text",
    [
        "昭和55年12月26日",
        "昭和５５年１２月２６日",
        "昭55.12.26",
        "S55.12.26",
        "s55/12/26",
        "S55-12-26",
        "s551226",
        "Ｓ５５．１２．２６",
        "1980-12-26",
        "1980/12/26",
        "1980.12.26",
        "1980年12月26日",
        "19801226",
        "昭和55年12月26日生",
    ],
)
def test_wareki_and_seireki_name_the_same_day(text: str) -> None:
    assert parse_birth(text) == DAY


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("昭和55", "1980-01-01", "1980-12-31"),
        ("昭和55年", "1980-01-01", "1980-12-31"),
        ("S55", "1980-01-01", "1980-12-31"),
        ("1980", "1980-01-01", "1980-12-31"),
        ("昭和55年12月", "1980-12-01", "1980-12-31"),
        ("s5512", "1980-12-01", "1980-12-31"),
        ("1980-12", "1980-12-01", "1980-12-31"),
        ("198002", "1980-02-01", "1980-02-29"),
        ("昭和元年", "1926-12-25", "1926-12-31"),
        ("平成元年", "1989-01-08", "1989-12-31"),
        ("昭和64", "1989-01-01", "1989-01-07"),
        ("平成31", "2019-01-01", "2019-04-30"),
        ("R1", "2019-05-01", "2019-12-31"),
        ("大正15", "1926-01-01", "1926-12-25"),  # 12-25 is also 昭和元年12月25日
    ],
)
def test_a_year_or_a_month_is_a_range_clipped_to_the_era(text: str, first: str, last: str) -> None:
    assert parse_birth(text).iso() == (first, last)


def test_days_shared_by_two_eras_are_accepted_under_both_names() -> None:
    assert parse_birth("明治45年7月30日") == parse_birth("大正元年7月30日") == parse_birth("1912-07-30")
    assert parse_birth("大正15年12月25日") == parse_birth("昭和元年12月25日")


@pytest.mark.parametrize(
    "text",
    [
        "昭和65",
        "昭和64年1月8日",
        "平成31年5月1日",
        "明治5",
        "1980-13",
        "昭和55年2月30日",
        "3688",
        "S5512261",
        "abc",
        "",
    ],
)
def test_what_is_no_birth_date_is_refused(text: str) -> None:
    with pytest.raises(QueryError):
        parse_birth(text)
    assert not looks_like_birth(text)


def test_an_era_table_extended_by_configuration_is_used() -> None:
    eras = (*ERAS, Era("新元", dt.date(2040, 1, 1)))
    assert parse_birth("新元2年3月4日", eras).first == dt.date(2041, 3, 4)
    assert parse_birth("令和21", eras).iso() == ("2039-01-01", "2039-12-31")
