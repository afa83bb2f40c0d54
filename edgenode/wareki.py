"""和暦 (Japanese era) dates from the project's own era table (spec 1.3.6), and 西暦 display.

Platform calendars disagree on era start days (ICU says 平成 began on 1989-01-07), so the table
is ours and a new era is added by configuration, not by a software update: `EraTable.extended`.
Year 1 prints as 元年. 明治 before 1873 (the Gregorian switch) is not exact and is refused.

Two 改元 happened during a day, so that day has two names and both must be accepted when read
(spec 1.1.8): 明治45年7月30日 = 大正元年7月30日 and 大正15年12月25日 = 昭和元年12月25日.
Printing always uses the new era. 昭和→平成 and 平成→令和 changed at midnight: no shared day.

外国人住民 birth dates and 在留期間の満了の日 print in 西暦 (`to_seireki`: 1990年4月3日).
"""

from __future__ import annotations

import datetime as _dt
import itertools
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Era:
    """One era: its name, first day, the Gregorian year of its 元年, and whether the previous
    era's name is still valid on the first day (改元 during the day)."""

    name: str
    start: _dt.date
    first_year: int = 0  # 0: the year of `start`
    shares_first_day: bool = False

    @property
    def base_year(self) -> int:
        """Gregorian year of 元年."""
        return self.first_year or self.start.year


class EraTable:
    """Eras in order; each runs until the day before the next one starts."""

    def __init__(self, eras: tuple[Era, ...]) -> None:
        if not eras:
            raise ValueError("元号表が空です")
        for a, b in itertools.pairwise(eras):
            if b.start <= a.start:
                raise ValueError(f"元号 {b.name} の開始日 {b.start} が {a.name} の開始日より前です")
        names = [e.name for e in eras]
        if len(set(names)) != len(names):
            raise ValueError(f"元号名が重複しています: {names}")
        self.eras = eras
        self._by_name = {e.name: i for i, e in enumerate(eras)}
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        self._re = re.compile(rf"^({alternatives})(元|[0-9０-９]{{1,3}})年([0-9０-９]{{1,2}})月([0-9０-９]{{1,2}})日$")

    def extended(self, name: str, start: _dt.date, *, shares_first_day: bool = False) -> EraTable:
        """A new table with era `name` from `start` appended (it must start after the last one)."""
        if start <= self.eras[-1].start:
            raise ValueError(f"新しい元号 {name} は {self.eras[-1].name} ({self.eras[-1].start}) より後に始まります")
        return EraTable((*self.eras, Era(name, start, shares_first_day=shares_first_day)))

    def era_of(self, day: _dt.date) -> tuple[str, int]:
        """The era name and era year of `day` (the new era on a shared day such as 1912-07-30)."""
        for era in reversed(self.eras):
            if day >= era.start:
                return era.name, day.year - era.base_year + 1
        raise ValueError(f"{day.isoformat()} は和暦に換算できません ({self.eras[0].name}{self.eras[0].start} より前)")

    def to_wareki(self, day: _dt.date) -> str:
        """`day` as 和暦 with 元年 for year one: 2026-11-27 → 令和8年11月27日."""
        name, year = self.era_of(day)
        y = "元" if year == 1 else str(year)
        return f"{name}{y}年{day.month}月{day.day}日"

    def parse(self, text: str) -> _dt.date | None:
        """The calendar day a 和暦 string names, or None when it names none.

        None for 不詳日 (「令和○○年頃」, 「年月日不詳」), non-calendar dates the standard keeps
        (2月29日 of a common year), days outside the era, and anything else unrecognised.
        Both names of a shared day parse to the same date.
        """
        m = self._re.match(text)
        if m is None:
            return None
        i = self._by_name[m.group(1)]
        era = self.eras[i]
        year = 1 if m.group(2) == "元" else int(m.group(2))
        if year < 1:
            return None
        try:
            day = _dt.date(era.base_year + year - 1, int(m.group(3)), int(m.group(4)))
        except ValueError:
            return None
        if day < era.start:
            return None
        if i + 1 < len(self.eras):
            nxt = self.eras[i + 1]
            last = nxt.start if nxt.shares_first_day else nxt.start - _dt.timedelta(days=1)
            if day > last:
                return None
        return day


#: The eras as usually implemented (§4.4). 明治 is counted from 1873-01-01 (明治6年, the
#: Gregorian calendar adopted); its 元年 is 1868.
ERAS: tuple[Era, ...] = (
    Era("明治", _dt.date(1873, 1, 1), first_year=1868),
    Era("大正", _dt.date(1912, 7, 30), shares_first_day=True),
    Era("昭和", _dt.date(1926, 12, 25), shares_first_day=True),
    Era("平成", _dt.date(1989, 1, 8)),
    Era("令和", _dt.date(2019, 5, 1)),
)
DEFAULT_TABLE = EraTable(ERAS)


def era_of(day: _dt.date, table: EraTable = DEFAULT_TABLE) -> tuple[str, int]:
    """The era name and era year of `day` (the new era on an overlap day such as 1912-07-30)."""
    return table.era_of(day)


def to_wareki(day: _dt.date, table: EraTable = DEFAULT_TABLE) -> str:
    """`day` as 和暦 with 元年 for year one: 2026-11-27 → 令和8年11月27日."""
    return table.to_wareki(day)


def parse_wareki(text: str, table: EraTable = DEFAULT_TABLE) -> _dt.date | None:
    """The day a 和暦 string names (ASCII or full-width digits, 元年), or None (see `EraTable.parse`)."""
    return table.parse(text)


def to_seireki(day: _dt.date) -> str:
    """西暦 display used for 外国人住民 dates: 1990-04-03 → 1990年4月3日."""
    return f"{day.year}年{day.month}月{day.day}日"


_SEIREKI_RE = re.compile(r"^([0-9０-９]{4})年([0-9０-９]{1,2})月([0-9０-９]{1,2})日$")


def parse_seireki(text: str) -> _dt.date | None:
    """The day a 西暦 display string (1990年4月3日) names, or None."""
    m = _SEIREKI_RE.match(text)
    if m is None:
        return None
    try:
        return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _jst(iso: str | None) -> _dt.datetime | None:
    """A stored UTC time (``utcnow``'s form) in JST, or None if it is empty or unreadable."""
    import zoneinfo

    if not iso:
        return None
    try:
        t = _dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.UTC)
    except ValueError:
        return None
    return t.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))


def time_label(iso: str | None) -> str:
    """「令和8年11月27日 10時42分」 in JST from a stored UTC time (``utcnow``'s form), else ""."""
    t = _jst(iso)
    return f"{to_wareki(t.date())} {t.hour}時{t.minute:02d}分" if t else ""


def short_time_label(iso: str | None) -> str:
    """「11/27 15:04:05」 in JST for admin pages; 「—」 if empty, the text itself if unreadable."""
    if not iso:
        return "—"
    t = _jst(iso)
    return f"{t.month}/{t.day} {t:%H:%M:%S}" if t else str(iso)
