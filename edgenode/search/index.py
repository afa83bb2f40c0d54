"""The search index: folded keys of every current record, in the replica file beside the registry.

Tables (`SEARCH_SQL`), all derived from ``person``/``person_history`` and rebuilt at any time:

- ``search_text``: one row a person; ``id`` is ours (stable across `reindex`), ``live`` is 1
  for 住民 and 0 for 除票. ``kana`` is the フリガナ folded (`edgenode.search.kana`) with its
  parts joined, ``kana_cut`` the length of its 氏 (0 for a one-part name), ``kana_given`` its 名
  (NULL for a one-part name); ``name``/``name_cut``/``name_given`` the same for 氏名; ``address`` is
  住所 + 番地 + 方書 folded; ``birth`` is ``birth_date_iso`` as YYYYMMDD; ``juminhyo`` the 住民票コード.
  ``extra`` holds the person's rows of ``search_key`` (kind + key, each between U+001F) or NULL.
  B-tree indexes: kana, kana_given, name, name_given, birth, juminhyo, atena_no. Ordering by
  ``kana`` is 氏 then 名 in 五十音 order (濁点 ignored);
- ``search_key (kind, key, id)``: the keys the columns cannot hold, for the few persons who have
  them: ``k`` a whole フリガナ (通称, 旧氏 + 名, the other ヂ/ヅ reading, the name run together
  when the ウ rule then differs), ``p`` a part of one, ``n``/``q`` the same for 氏名 (通称,
  旧氏 + 名, アルファベット氏名, a third part);
- ``search_kana_fts``, ``search_name_fts``, ``search_address_fts``: FTS5 ``trigram`` indexes
  (external content ``search_text``, ``detail=none``) for substrings of three or more characters.

`reindex` and `build` run inside the caller's transaction and never commit: the apply path calls
`reindex` with the 宛名番号 it touched, a bootstrap calls `build`. 除票 stay indexed (``live`` 0).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from edgenode.search.kana import O_ROW, fold_address, kana_index_readings, name_index_parts, run_together

#: Joins the entries of ``search_text.extra``; never inside a folded key or query.
SEP = "\x1f"
#: 住民状態 of a person who is not a 除票.
LIVE_STATUS = "住民"
FTS_FIELDS = ("kana", "name", "address")

# Each index also holds what a query filters on (live, birth) and sorts by (kana, birth), so a query
# reads index entries only, in フリガナ order where it can, and looks up rows just for its hits.
_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS search_text_atena ON search_text (atena_no);
CREATE INDEX IF NOT EXISTS search_text_kana ON search_text (kana, birth, kana_cut, live);
CREATE INDEX IF NOT EXISTS search_text_kana_given ON search_text (kana_given, live, kana, birth);
CREATE INDEX IF NOT EXISTS search_text_name ON search_text (name, name_cut, live, birth, kana);
CREATE INDEX IF NOT EXISTS search_text_name_given ON search_text (name_given, live, kana, birth);
CREATE INDEX IF NOT EXISTS search_text_birth ON search_text (birth, live, kana);
CREATE INDEX IF NOT EXISTS search_text_juminhyo ON search_text (juminhyo);
"""
SEARCH_SQL = (
    """
CREATE TABLE IF NOT EXISTS search_text (
  id       INTEGER PRIMARY KEY,
  atena_no TEXT NOT NULL,
  live     INTEGER NOT NULL,
  kana     TEXT NOT NULL,
  kana_cut INTEGER NOT NULL,
  kana_given TEXT,
  name     TEXT NOT NULL,
  name_cut INTEGER NOT NULL,
  name_given TEXT,
  address  TEXT NOT NULL,
  birth    INTEGER,
  juminhyo TEXT,
  extra    TEXT
);
CREATE TABLE IF NOT EXISTS search_key (
  kind TEXT NOT NULL,
  key  TEXT NOT NULL,
  id   INTEGER NOT NULL,
  PRIMARY KEY (kind, key, id)
) WITHOUT ROWID;
"""
    + _INDEXES
    + "".join(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS search_{f}_fts USING fts5({f}, content='search_text',"
        " content_rowid='id', tokenize='trigram', detail=none, columnsize=0);\n"
        for f in FTS_FIELDS
    )
)

#: Kinds of search key (`index_rows`). k p n q live in ``search_text`` columns, and in
#: ``search_key`` where the columns cannot hold them; a b j are ``search_text`` columns.
KINDS = {
    "k": "フリガナ, whole name (kana; alias_kana; former_surname_kana + 名)",
    "p": "フリガナ, one part (氏, 名)",
    "n": "氏名, whole name (name; alias; former_surname + 名; name_alpha)",
    "q": "氏名, one part (氏, 名)",
    "a": "住所 + 番地 + 方書",
    "b": "生年月日 (birth_date_iso)",
    "j": "住民票コード",
}
_COLS = "atena_no, live, kana, kana_cut, kana_given, name, name_cut, name_given, address, birth, juminhyo, extra"


class Entry(NamedTuple):
    """The ``search_text`` row of one person, without its ``id`` (`entry` makes one)."""

    atena_no: str
    live: int
    kana: str
    kana_cut: int
    kana_given: str | None
    name: str
    name_cut: int
    name_given: str | None
    address: str
    birth: int | None
    juminhyo: str | None
    extra: str | None

    def extra_keys(self) -> list[tuple[str, str]]:
        """The (kind, key) rows of ``search_key`` for this person."""
        if not self.extra:
            return []
        return [(e[0], e[1:]) for e in self.extra.split(SEP) if e]

    def keys(self) -> list[tuple[str, str]]:
        """Every (kind, key) this person is found under (`KINDS`), wherever it is stored."""
        out = self.extra_keys()
        for col, cut, whole, part in ((self.kana, self.kana_cut, "k", "p"), (self.name, self.name_cut, "n", "q")):
            if col:
                out.append((whole, col))
            if cut:
                out += [(part, col[:cut]), (part, col[cut:])]
        out.append(("a", self.address))
        if self.birth is not None:
            out.append(("b", f"{self.birth // 10000:04d}-{self.birth // 100 % 100:02d}-{self.birth % 100:02d}"))
        if self.juminhyo:
            out.append(("j", self.juminhyo))
        return sorted(set(out))


def birth_number(iso: str | None) -> int | None:
    """``birth_date_iso`` as the integer ``search_text.birth`` holds (1980-12-26 → 19801226)."""
    if not iso:
        return None
    return int(iso.replace("-", ""))


def _given(full: str) -> str:
    """The 名 of a name written 氏 + space + 名 ('' without a space)."""
    for sep in ("\u3000", " "):
        if sep in full:
            return full.split(sep, 1)[1]
    return ""


def _with_given(surname: str, full: str) -> str:
    given = _given(full)
    return f"{surname}\u3000{given}" if given else surname


def _columns(readings: list[tuple[str, ...]], whole: str, part: str, extra: dict[str, None]) -> tuple[str, int]:
    """(column text, cut) of the first reading; every key the columns cannot hold into `extra`."""
    if not readings:
        return "", 0
    first = readings[0]
    col = "".join(first)
    cut = len(first[0]) if len(first) > 1 else 0
    if len(readings) == 1 and len(first) <= 2:  # the usual 氏 + 名: only the ウ rule at 名 can add a key
        if whole == "k" and cut and col[cut] in "ウオ" and col[cut - 1] in O_ROW:
            extra["k" + run_together(col)] = None
        return col, cut
    covered = {whole + col, part + col[:cut], part + col[cut:]} if cut else {whole + col}
    for i, parts in enumerate(readings):
        joined = "".join(parts)
        keys = [whole + joined]
        if whole == "k":
            keys.append(whole + run_together(joined))
        if len(parts) > 1 and (i > 0 or len(parts) > 2):
            keys += [part + p for p in parts]
        extra.update(dict.fromkeys(k for k in keys if k not in covered and len(k) > 1))
    return col, cut


def entry(rec: dict[str, Any]) -> Entry:
    """The search row of one current record (pure: reads nothing but the record).

    旧氏 is indexed with the current 名 (a clerk types the old full name) and as a part alone;
    通称 and アルファベット氏名 like 氏名.
    """
    kana = rec.get("kana") or ""
    name = rec.get("name") or ""
    kana_texts = [kana, rec.get("alias_kana") or ""]
    if former := rec.get("former_surname_kana"):
        kana_texts.append(_with_given(former, kana))
    name_texts = [name, rec.get("alias") or "", rec.get("name_alpha") or ""]
    if former := rec.get("former_surname"):
        name_texts.append(_with_given(former, name))
    kana_readings = [r for text in kana_texts if text for r in kana_index_readings(text)]
    name_readings = [name_index_parts(text) for text in name_texts if text]
    extra: dict[str, None] = {}
    kana_col, kana_cut = _columns([r for r in kana_readings if r], "k", "p", extra)
    name_col, name_cut = _columns([r for r in name_readings if r], "n", "q", extra)
    return Entry(
        atena_no=rec["atena_no"],
        live=int(rec.get("status") == LIVE_STATUS),
        kana=kana_col,
        kana_cut=kana_cut,
        kana_given=kana_col[kana_cut:] if kana_cut else None,
        name=name_col,
        name_cut=name_cut,
        name_given=name_col[name_cut:] if name_cut else None,
        address=fold_address(rec.get("address") or "")
        + fold_address(rec.get("banchi") or "")
        + fold_address(rec.get("katagaki") or ""),
        birth=birth_number(rec.get("birth_date_iso")),
        juminhyo=rec.get("juminhyo_code") or None,
        extra=SEP + SEP.join(extra) + SEP if extra else None,
    )


def index_rows(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """The (kind, key) pairs of one current record (pure; kinds as in `KINDS`).

    Where they are stored is `entry`'s business: this is the record's search identity, for
    tests and for anyone who wants to know why a person is (not) found.
    """
    return entry(rec).keys()


_CURRENT = (
    "SELECT h.record FROM person p JOIN person_history h ON h.atena_no = p.atena_no AND h.rireki_no = p.rireki_no"
)
_INSERT_TEXT = f"INSERT INTO search_text (id, {_COLS}) VALUES ({', '.join('?' * 13)})"
_INSERT_KEY = "INSERT OR IGNORE INTO search_key (kind, key, id) VALUES (?, ?, ?)"


def _statements(sql: str) -> list[str]:
    return [s for s in sql.split(";") if s.strip()]


def create(conn: sqlite3.Connection) -> None:
    """Create the search tables if they are missing (idempotent; fill them with `build`).

    Statement by statement: ``executescript`` would commit the caller's transaction.
    """
    for statement in _statements(SEARCH_SQL):
        conn.execute(statement)


def needs_build(conn: sqlite3.Connection) -> bool:
    """True if the search tables are missing or do not hold one row per person (run `build`).

    For a replica made before the search index existed, or one whose index a crash or a manual
    change left behind; counting a million rows takes some tens of milliseconds.
    """
    has = conn.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('search_text', 'search_key')").fetchone()
    if has[0] < 2:
        return True
    people = conn.execute("SELECT count(*) FROM person").fetchone()[0]
    return bool(conn.execute("SELECT count(*) FROM search_text").fetchone()[0] != people)


def _fts(conn: sqlite3.Connection, pid: int, old: Entry | None, new: Entry | None) -> None:
    for f in FTS_FIELDS:
        before, after = getattr(old, f, None), getattr(new, f, None)
        if before == after:
            continue
        if before is not None:
            conn.execute(
                f"INSERT INTO search_{f}_fts (search_{f}_fts, rowid, {f}) VALUES ('delete', ?, ?)", (pid, before)
            )
        if after is not None:
            conn.execute(f"INSERT INTO search_{f}_fts (rowid, {f}) VALUES (?, ?)", (pid, after))


def reindex(conn: sqlite3.Connection, atena_nos: Iterable[str]) -> None:
    """Recompute the rows of these persons from their current record (no record: rows removed).

    Runs inside the caller's transaction (the one that applied the change); does not commit.
    """
    for atena in dict.fromkeys(atena_nos):
        row = conn.execute(f"SELECT id, {_COLS} FROM search_text WHERE atena_no = ?", (atena,)).fetchone()
        rec = conn.execute(f"{_CURRENT} WHERE p.atena_no = ?", (atena,)).fetchone()
        new = None if rec is None else entry(orjson.loads(rec[0]))
        old: Entry | None = None
        if row is None:
            pid = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM search_text").fetchone()[0])
        else:
            pid, old = int(row[0]), Entry._make(row[1:])
        if old == new:
            continue
        if old is not None:
            delete = "DELETE FROM search_key WHERE kind = ? AND key = ? AND id = ?"
            conn.executemany(delete, [(*k, pid) for k in old.extra_keys()])
            conn.execute("DELETE FROM search_text WHERE id = ?", (pid,))
        if new is not None:
            conn.execute(_INSERT_TEXT, (pid, *new))
            conn.executemany(_INSERT_KEY, [(*k, pid) for k in new.extra_keys()])
        _fts(conn, pid, old, new)


def build(conn: sqlite3.Connection) -> int:
    """Rebuild the whole index from the current records; return the number of persons indexed.

    For after a bootstrap; runs inside the caller's transaction and does not commit. Rows are
    appended in 宛名番号 order with the indexes dropped; each index is then built in one sorted
    pass, and each trigram index from its column: several times faster than row-by-row upkeep.
    """
    create(conn)
    for statement in _statements(_INDEXES):
        conn.execute(f"DROP INDEX IF EXISTS {statement.split(' ON ')[0].split()[-1]}")
    conn.execute("DELETE FROM search_key")
    conn.execute("DELETE FROM search_text")
    n = 0
    keys: list[tuple[str, str, int]] = []
    cur = conn.execute(f"{_CURRENT} ORDER BY p.atena_no")
    while batch := cur.fetchmany(2000):
        texts = []
        for (record,) in batch:
            n += 1
            e = entry(orjson.loads(record))
            texts.append((n, *e))
            if e.extra:
                keys += [(kind, key, n) for kind, key in e.extra_keys()]
        conn.executemany(_INSERT_TEXT, texts)
    keys.sort()
    conn.executemany(_INSERT_KEY, keys)
    # The trigram indexes first: 'rebuild' reads (id, column) ordered by id, which SQLite would
    # answer from a covering name index plus a sort of a million rows (15x slower).
    for f in FTS_FIELDS:
        conn.execute(f"INSERT INTO search_{f}_fts (search_{f}_fts) VALUES ('rebuild')")
    create(conn)  # the indexes dropped above
    return n
