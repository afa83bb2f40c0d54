"""Finding residents at the counter: a `SearchQuery` in, ranked `Hit` rows out.

Fields combine with AND. Matching, per field (keys folded as in `edgenode.search.kana`):

- ``kana``/``name``: **exact** when the query equals the whole name, its 氏 or its 名 (or a
  通称, 旧氏 + 名, アルファベット氏名, or one of their parts); **prefix** when it begins the
  whole name (or one of those); **substring** (three characters or more) anywhere in the
  フリガナ or 氏名. A 名 is matched whole: 「シュウ」 finds シュウヘイ as a substring only;
- ``birth``: any day of the range the text names (`edgenode.search.birth`);
- ``address``: anywhere in 住所 + 番地 + 方書 (a partial match);
- ``atena_no``, ``juminhyo_code``, ``household_no``: exactly.

Results: 住民 only unless ``include_removed`` (除票: 転出, 死亡, 消除); exact (every field
exact) first, then prefix, then substring matches, each by フリガナ (氏, then 名, 五十音 with
濁点 ignored), then the older first, then in index order. To learn whether there were more than
``limit``, ask for one more.

How a query runs: one field *drives*: a number or a single birth day if given, else a name
field (a birth range then filters inside the name indexes), else the field with the fewest
candidates (probed up to `PROBE_ROWS`). Its candidates come from *arms*, SELECTs over covering
indexes that each yield one grade; alone, the driver's arms are read grade by grade, merged in
フリガナ order straight from the indexes and cut at ``limit`` (a common 氏 costs no more than a
rare one); with other fields, every candidate is graded on its ``search_text`` row in one
statement. Substring arms (the trigram index) run only when exact and prefix matches do not
fill the page.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson

from edgenode.resident import is_valid_m11
from edgenode.search import QueryError
from edgenode.search.birth import BirthRange, looks_like_birth, parse_birth
from edgenode.search.index import SEP, birth_number
from edgenode.search.kana import (
    fold_address,
    fold_name,
    is_kana_text,
    kana_index_readings,
    kana_query_keys,
    name_index_parts,
    run_together,
)

#: Above every character a folded key can hold: ``key < v + TOP`` is "begins with v".
TOP = "\U0010ffff"
#: The trigram index needs three characters; shorter text matches only at the start of a name.
SUBSTRING_MIN = 3
#: Rows counted per field when choosing which of several fields drives the query.
PROBE_ROWS = 400
MAX_LIMIT = 1000
#: 宛名番号 length in the free-text box (M11-checked); 住民票コード has 11 digits.
ATENA_LENGTH = 8
JUMINHYO_LENGTH = 11


@dataclass(frozen=True)
class SearchQuery:
    """What the clerk typed; every given field must match (AND)."""

    kana: str | None = None
    name: str | None = None
    birth: str | None = None
    address: str | None = None
    atena_no: str | None = None
    juminhyo_code: str | None = None
    household_no: str | None = None
    include_removed: bool = False
    limit: int = 50


@dataclass(frozen=True)
class Hit:
    """One resident found: what the result list shows, and why it matched."""

    atena_no: str
    household_no: str
    name: str
    kana: str
    birth_date: str
    sex: str
    address: str
    banchi: str
    katagaki: str
    status: str
    #: The record items that matched, one or more per query field (e.g. ``("alias_kana", "birth_date")``).
    matched: tuple[str, ...]
    #: True if every field matched exactly.
    exact: bool

    @property
    def full_address(self) -> str:
        """住所 + 番地, then 方書 after a full-width space."""
        place = self.address + self.banchi
        return f"{place}\u3000{self.katagaki}" if self.katagaki else place


# ------------------------------------------------------------------------------ fields

#: One SELECT of (id, kana, birth) rows, all of one grade: 0 exact, 1 prefix, 2 substring.
Arm = tuple[int, str, list[Any]]


@dataclass(frozen=True)
class _Push:
    """Conditions every arm applies itself, from its own index where it can: 住民 only, a birth range."""

    live_only: bool
    birth: tuple[int, int] | None

    def sql(self, alias: str = "") -> tuple[str, list[Any]]:
        terms, params = [], []
        if self.live_only:
            terms.append(f"{alias}live = 1")
        if self.birth is not None:
            terms.append(f"{alias}birth BETWEEN ? AND ?")
            params += list(self.birth)
        return "".join(f" AND {t}" for t in terms), params


class _Field:
    """One query field: where its candidates come from, and how a candidate row is graded."""

    #: A point lookup (a number, one birth day): drives the query whenever present.
    point: bool = False

    def arms(self, push: _Push) -> list[Arm]:
        """The SELECTs that find this field's candidates, each of one grade."""
        raise NotImplementedError

    def grade(self) -> tuple[str, list[Any]]:
        """An SQL expression over ``t`` (a ``search_text`` row): the grade, or NULL if no match."""
        raise NotImplementedError

    def matched(self, rec: dict[str, Any]) -> tuple[str, ...]:
        """The record items that match (for `Hit.matched`)."""
        raise NotImplementedError


class _NameLike(_Field):
    """フリガナ (several query keys: the ヂ/ヅ readings) or 氏名 (one key)."""

    def __init__(self, kind: str, values: tuple[str, ...]) -> None:
        self.kana = kind == "kana"
        self.col, self.cut = ("kana", "kana_cut") if self.kana else ("name", "name_cut")
        self.whole, self.part = ("k", "p") if self.kana else ("n", "q")
        self.values = values

    def arms(self, push: _Push) -> list[Arm]:
        col, cut, given = self.col, self.cut, f"{self.col}_given"
        where, wp = push.sql()
        where_t, tp = push.sql("t.")
        out: list[Arm] = []
        for v in self.values:
            whole_or_sei = f"({col} = ? OR {cut} = {len(v)})"  # in the range below: v is all, or the 氏
            extras = "SELECT k.id, t.kana, t.birth FROM search_key k JOIN search_text t ON t.id = k.id"
            extras += " WHERE k.kind IN (?, ?)"
            out += [
                (
                    0,
                    f"SELECT id, kana, birth FROM search_text WHERE {col} >= ? AND {col} < ? AND {whole_or_sei}{where}",
                    [v, v + TOP, v, *wp],
                ),
                (0, f"SELECT id, kana, birth FROM search_text WHERE {given} = ?{where}", [v, *wp]),
                (0, f"{extras} AND k.key = ?{where_t}", [self.whole, self.part, v, *tp]),
                (
                    1,
                    f"SELECT id, kana, birth FROM search_text"
                    f" WHERE {col} > ? AND {col} < ? AND NOT {whole_or_sei}{where}",
                    [v, v + TOP, v, *wp],
                ),
                (1, f"{extras} AND k.key > ? AND k.key < ?{where_t}", [self.whole, self.part, v, v + TOP, *tp]),
            ]
            if len(v) >= SUBSTRING_MIN:
                fts = f"search_{col}_fts"
                sql = f"SELECT t.id, t.kana, t.birth FROM {fts} f JOIN search_text t ON t.id = f.rowid"
                where_fts = f"f.{fts} MATCH ? AND instr(t.{col}, ?) > 0"
                out.append((2, f"{sql} WHERE {where_fts}{where_t}", [_trigrams(v), v, *tp]))
        return out

    def grade(self) -> tuple[str, list[Any]]:
        col, cut, given, w, p = f"t.{self.col}", f"t.{self.cut}", f"t.{self.col}_given", self.whole, self.part
        exact: list[str] = []
        prefix: list[str] = []
        inner: list[str] = []
        pe: list[Any] = []
        pp: list[Any] = []
        pi: list[Any] = []
        extra = "(t.extra IS NOT NULL AND (instr(t.extra, ?) > 0 OR instr(t.extra, ?) > 0))"
        for v in self.values:
            exact += [f"{col} = ? OR {given} = ? OR ({cut} = {len(v)} AND substr({col}, 1, {cut}) = ?)", extra]
            pe += [v, v, v, f"{SEP}{w}{v}{SEP}", f"{SEP}{p}{v}{SEP}"]
            prefix += [f"substr({col}, 1, {len(v)}) = ?", extra]
            pp += [v, f"{SEP}{w}{v}", f"{SEP}{p}{v}"]
            if len(v) >= SUBSTRING_MIN:
                inner.append(f"instr({col}, ?) > 0")
                pi.append(v)
        sql = f"CASE WHEN {' OR '.join(exact)} THEN 0 WHEN {' OR '.join(prefix)} THEN 1"
        if inner:
            sql += f" WHEN {' OR '.join(inner)} THEN 2"
        return sql + " END", pe + pp + pi

    def _grade_readings(self, readings: list[tuple[str, ...]], primary: bool) -> int | None:
        """The grade of one record item's readings, as the SQL arms give it."""
        best: int | None = None
        for parts in readings:
            joined = "".join(parts)
            whole = {joined, run_together(joined)} if self.kana else {joined}
            pieces = set(parts) if len(parts) > 1 else set()
            for v in self.values:
                if v in whole or v in pieces:
                    return 0
                if any(k.startswith(v) for k in whole) or (not primary and any(x.startswith(v) for x in pieces)):
                    best = 1
                elif len(v) >= SUBSTRING_MIN and v in joined and primary and best is None:
                    best = 2
        return best

    def matched(self, rec: dict[str, Any]) -> tuple[str, ...]:
        given = _given(rec.get("kana" if self.kana else "name") or "")
        items = (
            ("kana", "alias_kana", "former_surname_kana")
            if self.kana
            else ("name", "alias", "former_surname", "name_alpha")
        )
        found: list[tuple[int, str]] = []
        for item in items:
            text = rec.get(item)
            if not text:
                continue
            if item.startswith("former_surname") and given:
                text = f"{text}\u3000{given}"
            readings = kana_index_readings(text) if self.kana else [name_index_parts(text)]
            g = self._grade_readings(readings, primary=item in ("kana", "name"))
            if g is not None:
                found.append((g, item))
        best = min((g for g, _ in found), default=None)
        return tuple(item for g, item in found if g == best)


def _given(full: str) -> str:
    for sep in ("\u3000", " "):
        if sep in full:
            return full.split(sep, 1)[1]
    return ""


class _Birth(_Field):
    def __init__(self, r: BirthRange) -> None:
        first, last = r.iso()
        self.range = (birth_number(first) or 0, birth_number(last) or 0)
        self.point = r.is_day

    def arms(self, push: _Push) -> list[Arm]:
        where, wp = push.sql()
        return [(0, f"SELECT id, kana, birth FROM search_text WHERE birth BETWEEN ? AND ?{where}", [*self.range, *wp])]

    def grade(self) -> tuple[str, list[Any]]:
        return "CASE WHEN t.birth BETWEEN ? AND ? THEN 0 END", list(self.range)

    def matched(self, rec: dict[str, Any]) -> tuple[str, ...]:
        return ("birth_date",)


class _Address(_Field):
    def __init__(self, value: str) -> None:
        self.value = value

    def arms(self, push: _Push) -> list[Arm]:
        where_t, tp = push.sql("t.")
        if len(self.value) >= SUBSTRING_MIN:
            sql = "SELECT t.id, t.kana, t.birth FROM search_address_fts f JOIN search_text t ON t.id = f.rowid"
            where_fts = "f.search_address_fts MATCH ? AND instr(t.address, ?) > 0"
            return [(1, f"{sql} WHERE {where_fts}{where_t}", [_trigrams(self.value), self.value, *tp])]
        # too short for the trigram index: a scan of search_text
        sql = "SELECT t.id, t.kana, t.birth FROM search_text t WHERE instr(t.address, ?) > 0"
        return [(1, sql + where_t, [self.value, *tp])]

    def grade(self) -> tuple[str, list[Any]]:
        return "CASE WHEN instr(t.address, ?) > 0 THEN 1 END", [self.value]

    def matched(self, rec: dict[str, Any]) -> tuple[str, ...]:
        return ("address",)


class _Equal(_Field):
    """A number that must match exactly: 宛名番号, 住民票コード (``search_text``) or 世帯番号 (``person``)."""

    point = True

    def __init__(self, item: str, value: str) -> None:
        self.item, self.value = item, value

    def arms(self, push: _Push) -> list[Arm]:
        where_t, tp = push.sql("t.")
        if self.item == "household_no":
            sql = (
                "SELECT t.id, t.kana, t.birth FROM person p JOIN search_text t ON t.atena_no = p.atena_no"
                f" WHERE p.household_no = ?{where_t}"
            )
        else:
            col = "atena_no" if self.item == "atena_no" else "juminhyo"
            sql = f"SELECT t.id, t.kana, t.birth FROM search_text t WHERE t.{col} = ?{where_t}"
        return [(0, sql, [self.value, *tp])]

    def grade(self) -> tuple[str, list[Any]]:
        if self.item == "household_no":
            same = "SELECT 1 FROM person p WHERE p.atena_no = t.atena_no AND p.household_no = ?"
            return f"CASE WHEN EXISTS ({same}) THEN 0 END", [self.value]
        col = "atena_no" if self.item == "atena_no" else "juminhyo"
        return f"CASE WHEN t.{col} = ? THEN 0 END", [self.value]

    def matched(self, rec: dict[str, Any]) -> tuple[str, ...]:
        return (self.item,)


_NOT_DIGIT = re.compile(r"[\s\-‐－―ー]")


def _digits(label: str, value: str) -> str:
    s = _NOT_DIGIT.sub("", unicodedata.normalize("NFKC", value))
    if not (s.isascii() and s.isdigit()):
        raise QueryError(f"{label}は数字で入力してください: {value}")
    return s


def _trigrams(s: str) -> str:
    """An FTS5 query for the rows holding every trigram of `s` (``detail=none`` has no phrases).

    The candidate's own text is then checked with ``instr`` on the row the arm reads anyway,
    which is cheaper than letting FTS5 re-read it for a LIKE.
    """
    grams = dict.fromkeys(s[i : i + 3] for i in range(len(s) - 2))
    return " AND ".join('"' + g.replace('"', '""') + '"' for g in grams)


def _fields(q: SearchQuery) -> list[_Field]:
    """The given fields, in the order of `SearchQuery` (which is also the order of `Hit.matched`)."""
    fields: list[_Field] = []
    if q.kana:
        keys = tuple(k for k in dict.fromkeys(kana_query_keys(q.kana)) if k)
        if not keys:
            raise QueryError(f"フリガナとして検索できる文字がありません: {q.kana}")
        fields.append(_NameLike("kana", keys))
    if q.name:
        key = fold_name(q.name)
        if not key:
            raise QueryError(f"氏名として検索できる文字がありません: {q.name}")
        fields.append(_NameLike("name", (key,)))
    if q.birth:
        fields.append(_Birth(parse_birth(q.birth)))
    if q.address:
        key = fold_address(q.address)
        if not key:
            raise QueryError(f"住所として検索できる文字がありません: {q.address}")
        fields.append(_Address(key))
    if q.atena_no:
        fields.append(_Equal("atena_no", _digits("宛名番号", q.atena_no)))
    if q.juminhyo_code:
        fields.append(_Equal("juminhyo_code", _digits("住民票コード", q.juminhyo_code)))
    if q.household_no:
        fields.append(_Equal("household_no", _digits("世帯番号", q.household_no)))
    if not fields:
        raise QueryError("検索条件を入力してください")
    return fields


def _union(arms: list[Arm], graded: bool) -> tuple[str, list[Any]]:
    """The arms as one compound SELECT of (id, kana, birth), or of (id, g, kana, birth) if `graded`."""
    sqls = [f"SELECT id, {g} AS g, kana, birth FROM ({sql})" if graded else sql for g, sql, _ in arms]
    return " UNION ALL ".join(sqls), [p for _, _, params in arms for p in params]


def _driver(conn: sqlite3.Connection, fields: list[_Field], push: _Push) -> _Field:
    """Which field's arms find the candidates (module doc)."""
    for group in (
        [f for f in fields if f.point],
        [f for f in fields if isinstance(f, _NameLike)],
        [f for f in fields if isinstance(f, _Birth)],
        fields,
    ):
        if len(group) == 1:
            return group[0]
        if group:
            break
    best, best_n = group[0], PROBE_ROWS + 1
    for f in group:
        sql, params = _union([a for a in f.arms(push) if a[0] < 2], graded=False)
        n = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM ({sql}) LIMIT ?)", [*params, PROBE_ROWS]).fetchone()[0]
        if n < best_n:
            best, best_n = f, n
    return best


def search(conn: sqlite3.Connection, q: SearchQuery) -> list[Hit]:
    """The residents matching every field of `q`, best first, at most ``q.limit`` (module doc)."""
    if not 1 <= q.limit <= MAX_LIMIT:
        raise QueryError(f"件数の上限は 1〜{MAX_LIMIT} です: {q.limit}")
    fields = _fields(q)
    driver = _driver(conn, fields, _Push(live_only=not q.include_removed, birth=None))
    # A birth range that does not drive is applied inside the driver's arms, from their indexes.
    birth = next((f for f in fields if isinstance(f, _Birth) and f is not driver), None)
    push = _Push(live_only=not q.include_removed, birth=None if birth is None else birth.range)
    others = [f for f in fields if f is not driver and f is not birth]
    arms = driver.arms(push)
    ranked = _merged(conn, arms, q.limit) if not others else _graded(conn, arms, others, q.limit)
    return _hits(conn, ranked, fields)


def _merged(conn: sqlite3.Connection, arms: list[Arm], limit: int) -> list[tuple[int, int]]:
    """(id, grade) of the first `limit` candidates, grade by grade, each in (フリガナ, birth) order.

    A grade's arms are one compound SELECT ordered by (kana, birth), which SQLite merges from the index
    order of each arm and stops at the LIMIT. One person can come from two arms, so rows are
    fetched with some room and fetched again with more if duplicates ate it.
    """
    out: dict[int, int] = {}
    for grade in sorted({g for g, _, _ in arms}):
        need = limit - len(out)
        if need <= 0:
            break
        sql, params = _union([a for a in arms if a[0] == grade], graded=False)
        room = need + len(out) + 8
        while True:
            rows = conn.execute(f"{sql} ORDER BY 2, 3 LIMIT ?", [*params, room]).fetchall()
            fresh = [i for i, _, _ in rows if i not in out]
            fresh = list(dict.fromkeys(fresh))
            if len(fresh) >= need or len(rows) < room:
                break
            room *= 4
        out.update((i, grade) for i in fresh[:need])
    return list(out.items())


def _graded(conn: sqlite3.Connection, arms: list[Arm], others: list[_Field], limit: int) -> list[tuple[int, int]]:
    """(id, grade) of the best `limit` candidates that every other field accepts too.

    Substring arms run only if exact and prefix matches do not fill the page: their matches
    (grade 2) rank after every better one.
    """
    ranked = _graded_once(conn, [a for a in arms if a[0] < 2], others, limit)
    if len(ranked) < limit or sum(g <= 1 for _, g in ranked) < limit:
        if any(a[0] == 2 for a in arms):
            ranked = _graded_once(conn, arms, others, limit)
    return ranked


def _graded_once(conn: sqlite3.Connection, arms: list[Arm], others: list[_Field], limit: int) -> list[tuple[int, int]]:
    src, params = _union(arms, graded=True)
    grades = ["m.g"]
    for f in others:
        sql, p = f.grade()
        grades.append(f"({sql})")
        params += p
    sql = (
        f"WITH c(id, g, kana, birth) AS ({src}) SELECT id, gg FROM ("
        f"SELECT m.id AS id, m.kana AS kana, m.birth AS birth, max({', '.join(grades)}) AS gg"
        " FROM (SELECT id, min(g) AS g, kana, birth FROM c GROUP BY id) m JOIN search_text t ON t.id = m.id"
        ") WHERE gg IS NOT NULL ORDER BY gg, kana, birth, id LIMIT ?"
    )
    return [(int(i), int(g)) for i, g in conn.execute(sql, [*params, limit])]


def _hits(conn: sqlite3.Connection, ranked: list[tuple[int, int]], fields: list[_Field]) -> list[Hit]:
    if not ranked:
        return []
    marks = ", ".join("?" * len(ranked))
    records = {
        pid: (atena, text)
        for pid, atena, text in conn.execute(
            "SELECT t.id, t.atena_no, h.record FROM search_text t JOIN person p ON p.atena_no = t.atena_no"
            f" JOIN person_history h ON h.atena_no = p.atena_no AND h.rireki_no = p.rireki_no WHERE t.id IN ({marks})",
            [pid for pid, _ in ranked],
        )
    }
    out = []
    for pid, grade in ranked:
        if pid not in records:  # the index is behind the registry (reindex not called): skip, never guess
            continue
        atena, text = records[pid]
        rec = orjson.loads(text)
        out.append(
            Hit(
                atena_no=atena,
                household_no=rec["household_no"],
                name=rec["name"],
                kana=rec.get("kana") or "",
                birth_date=rec.get("birth_date") or "",
                sex=rec.get("sex") or "",
                address=rec.get("address") or "",
                banchi=rec.get("banchi") or "",
                katagaki=rec.get("katagaki") or "",
                status=rec["status"],
                matched=tuple(m for f in fields for m in f.matched(rec)),
                exact=grade == 0,
            )
        )
    return out


# ------------------------------------------------------------------------------ free text


def parse_free_text(text: str, *, include_removed: bool = False, limit: int = 50) -> SearchQuery:
    """Guess which field a single search box means.

    In order: 8 digits with a valid M11 check digit → 宛名番号; 11 digits → 住民票コード; only
    kana (either script, half-width, with spaces) → フリガナ; a date in 和暦 or 西暦 → 生年月日;
    anything else with a digit → 住所; otherwise → 氏名 (漢字 or alphabet).
    """
    raw = text.strip()
    s = unicodedata.normalize("NFKC", raw)
    if not raw:
        raise QueryError("検索語を入力してください")
    kw: dict[str, Any] = {"include_removed": include_removed, "limit": limit}
    compact = "".join(s.split())
    if compact.isascii() and compact.isdigit():
        if len(compact) == ATENA_LENGTH and is_valid_m11(compact):
            return SearchQuery(atena_no=compact, **kw)
        if len(compact) == JUMINHYO_LENGTH:
            return SearchQuery(juminhyo_code=compact, **kw)
    if is_kana_text(raw):
        return SearchQuery(kana=raw, **kw)
    if looks_like_birth(raw):
        return SearchQuery(birth=raw, **kw)
    if any(c.isdigit() for c in s):
        return SearchQuery(address=raw, **kw)
    return SearchQuery(name=raw, **kw)
