"""和暦 (Japanese era) conversion from the project's own era table (spec 1.3.6).

Platform calendars disagree on era start days (ICU says 平成 began on 1989-01-07), so the table
is ours. Year 1 prints as 元年. 明治 before 1873 (the Gregorian switch) is not exact and is refused.
"""

from __future__ import annotations

import datetime as _dt

#: (era, first day). Each era runs until the day before the next one starts.
ERAS: tuple[tuple[str, _dt.date], ...] = (
    ("明治", _dt.date(1873, 1, 1)),  # 明治6年1月1日: Gregorian calendar adopted
    ("大正", _dt.date(1912, 7, 30)),
    ("昭和", _dt.date(1926, 12, 25)),
    ("平成", _dt.date(1989, 1, 8)),
    ("令和", _dt.date(2019, 5, 1)),
)
_ERA_BASE = {"明治": 1868, "大正": 1912, "昭和": 1926, "平成": 1989, "令和": 2019}


def era_of(day: _dt.date) -> tuple[str, int]:
    """The era name and era year of `day` (the new era on an overlap day such as 1912-07-30)."""
    for name, start in reversed(ERAS):
        if day >= start:
            return name, day.year - _ERA_BASE[name] + 1
    raise ValueError(f"{day.isoformat()} は和暦に換算できません (明治6年より前)")


def to_wareki(day: _dt.date) -> str:
    """`day` as 和暦 with 元年 for year one: 2026-11-27 → 令和8年11月27日."""
    name, year = era_of(day)
    y = "元" if year == 1 else str(year)
    return f"{name}{y}年{day.month}月{day.day}日"
