"""生年月日 queries: 和暦 or 西暦, a full date or just a year or a month, as a range of days.

Accepted (full-width digits and letters too, spaces ignored, a trailing 生 or 生まれ dropped)::

    昭和55年12月26日  昭和55年12月  昭和55年  昭和55  昭55.12.26  平成元年1月8日
    S55.12.26  s55/12/26  S55-12  s551226  s5512  s55  H1.1.8  R8
    1980-12-26  1980/12/26  1980.12.26  1980年12月26日  19801226  198012  1980-12  1980

Eras come from `edgenode.wareki.ERAS` (the project's own table, or a table extended by
configuration: pass its eras); the era letters M T S H R and one-kanji abbreviations (明 大 昭 平
令) are mapped here. An era year must fall inside its era: 昭和65 and 平成31年5月1日 are refused,
while the day shared by two eras (明治45年7月30日 = 大正元年7月30日) is accepted under both
names. 明治 years before 6 (1873, the Gregorian calendar) are refused.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from edgenode.search import QueryError
from edgenode.wareki import ERAS, Era

#: Era letter → era name (the usual Latin abbreviations).
ERA_LETTERS = {"M": "明治", "T": "大正", "S": "昭和", "H": "平成", "R": "令和"}


@dataclass(frozen=True)
class _Eras:
    """Era names and abbreviations → (Gregorian year of 元年, first day, last day)."""

    spans: dict[str, tuple[int, _dt.date, _dt.date]]
    aliases: dict[str, str]
    prefix: re.Pattern[str]


@functools.lru_cache(maxsize=8)
def _eras(eras: tuple[Era, ...]) -> _Eras:
    spans = {}
    for i, era in enumerate(eras):
        last = _dt.date.max
        if i + 1 < len(eras):
            nxt = eras[i + 1]
            last = nxt.start if nxt.shares_first_day else nxt.start - _dt.timedelta(days=1)
        spans[era.name] = (era.base_year, era.start, last)
    aliases = {e.name: e.name for e in eras}
    for abbr, name in [*((e.name[0], e.name) for e in eras), *ERA_LETTERS.items()]:
        if name in spans and abbr not in aliases:
            aliases[abbr] = name
    alternatives = "|".join(sorted(map(re.escape, aliases), key=len, reverse=True))
    return _Eras(spans, aliases, re.compile(rf"^({alternatives})\.?(.*)$"))


_SPLIT = re.compile(r"[年月日./\-]")
_SUFFIX = re.compile("(生まれ|生)$")
#: 西暦 years accepted as a birth date (so that 3688 is a 番地, not a year).
FIRST_YEAR, LAST_YEAR = 1868, 2199


@dataclass(frozen=True)
class BirthRange:
    """The days a birth-date query stands for (inclusive)."""

    first: _dt.date
    last: _dt.date

    @property
    def is_day(self) -> bool:
        """True if the query named one day."""
        return self.first == self.last

    def iso(self) -> tuple[str, str]:
        """(first, last) as YYYY-MM-DD, the form of ``birth_date_iso``."""
        return self.first.isoformat(), self.last.isoformat()


def _numbers(rest: str, digits_only_lengths: dict[int, tuple[int, ...]]) -> list[int]:
    """'55.12.26' / '55年12月' / '551226' → [55, 12, 26] (`digits_only_lengths`: len → field widths)."""
    if rest.isdigit():
        widths = digits_only_lengths.get(len(rest))
        if widths is None:
            raise QueryError(f"日付として読めません: {rest}")
        out, i = [], 0
        for w in widths:
            out.append(int(rest[i : i + w]))
            i += w
        return out
    fields = [f for f in _SPLIT.split(rest) if f != ""]
    if not 1 <= len(fields) <= 3 or not all(f.isdigit() or f == "元" for f in fields):
        raise QueryError(f"日付として読めません: {rest}")
    if "元" in fields[1:]:
        raise QueryError(f"日付として読めません: {rest}")
    return [1 if f == "元" else int(f) for f in fields]


def _month_day(nums: list[int]) -> tuple[int | None, int | None]:
    return (nums[1] if len(nums) > 1 else None), (nums[2] if len(nums) > 2 else None)


def _range(year: int, month: int | None, day: int | None) -> BirthRange:
    try:
        if month is None:
            return BirthRange(_dt.date(year, 1, 1), _dt.date(year, 12, 31))
        first = _dt.date(year, month, 1)
        if day is None:
            last = _dt.date(year + month // 12, month % 12 + 1, 1) - _dt.timedelta(days=1)
            return BirthRange(first, last)
        d = _dt.date(year, month, day)
        return BirthRange(d, d)
    except ValueError as exc:
        raise QueryError(f"存在しない日付です: {year}年{month}月{day or ''}") from exc


def parse_birth(text: str, eras: Sequence[Era] = ERAS) -> BirthRange:
    """The range of days a 生年月日 query names; `QueryError` if it is not a date (module doc)."""
    s = unicodedata.normalize("NFKC", text).replace(" ", "").upper()
    s = _SUFFIX.sub("", s)
    if not s:
        raise QueryError("生年月日が空です")
    table = _eras(tuple(eras))
    m = table.prefix.match(s)
    if m is not None:
        era = table.aliases[m.group(1)]
        nums = _numbers(m.group(2), {1: (1,), 2: (2,), 4: (2, 2), 6: (2, 2, 2)})
        base, start, last = table.spans[era]
        if nums[0] < 1:
            raise QueryError(f"{era}{nums[0]}年はありません")
        r = _range(base + nums[0] - 1, *_month_day(nums))
        if r.first < start and era == eras[0].name and r.last < start:
            raise QueryError(f"{era}{start.year - base + 1}年より前は西暦に換算できません")
        first, last = max(r.first, start), min(r.last, last)
        if first > last or (r.is_day and first != r.first):
            raise QueryError(f"{text} は{era}の期間にありません")
        return BirthRange(first, last)
    if not s[:4].isdigit():
        raise QueryError(f"日付として読めません: {text}")
    nums = _numbers(s, {4: (4,), 6: (4, 2), 8: (4, 2, 2)})
    if not FIRST_YEAR <= nums[0] <= LAST_YEAR:
        raise QueryError(f"年が範囲外です: {nums[0]}")
    return _range(nums[0], *_month_day(nums))


def looks_like_birth(text: str) -> bool:
    """True if `text` parses as a birth-date query (the free-text box's guess)."""
    try:
        parse_birth(text)
    except QueryError:
        return False
    return True
