"""Counter search: index build time and size, and query latency per kind of query, at a million.

Builds a replica-like SQLite file (default 1,000,000 synthetic residents, `--residents N`;
`--quick` = 50,000): the registry tables filled by `registry.bulk_load` with the pragmas of a
bootstrap (about 6 % of the residents turned into 除票), then `edgenode.search.index.build` in the
same transaction, as a bootstrap would. Reports the build time and how much the file grew.

Then opens the file as the node does (WAL, synchronous=NORMAL, default cache) and runs about
500 realistic queries (`--queries`) drawn from the population: フリガナ whole / prefix / 名 only /
spelled with ー or オ for ウ (in hiragana or half-width) / three characters from inside the name
(the substring path), 氏名 exact / 氏 only, 生年月日 in 和暦 and in 西暦, 氏 + 生年月日,
住所 (町字 + 番地, or a building), 宛名番号. Prints p50/p95/p99 per
kind (goal: p95 ≤ 30 ms) and the hits found.

Baseline, in the same run: the naive scan a system without a search index would do, ``LIKE
'%q%'`` on what the clerk typed over ``person.kana`` or ``person.name`` (given the 西暦 day for
dates, ``= birth_date_iso``; for addresses the 町字 over ``person.address``), 住民 only, sorted by
kana, 50 rows; run on the first `--baseline` queries of each kind (a scan of a million rows is
slow). Printed as its p50/p95, its hits and the ratio to ours. The baseline is not only slower, it
finds less: it knows nothing of the folding rules (hiragana, ー for ウ, a missing space).

Population generation (~23 s per million) is not measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench._common import mib, percentile, table, workdir
from edgenode import registry
from edgenode.hub.synth import generate_population
from edgenode.search import index
from edgenode.search.query import SearchQuery, search
from edgenode.wire import canonical_json

LG, TOWN = "454214", "門川町"
TODAY = dt.date(2026, 11, 27)
REMOVED_SHARE = 0.06
_HIRA = str.maketrans({chr(c): chr(c - 0x60) for c in range(0x30A1, 0x30F7)})
_HALF = dict(
    zip(
        "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンァィゥェォャュョッー",
        "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜｦﾝｧｨｩｪｫｬｭｮｯｰ",
        strict=True,
    )
)
_VOICED = {"ガ": "ｶﾞ", "ギ": "ｷﾞ", "グ": "ｸﾞ", "ゲ": "ｹﾞ", "ゴ": "ｺﾞ", "ザ": "ｻﾞ", "ジ": "ｼﾞ", "ズ": "ｽﾞ", "ゼ": "ｾﾞ"}
_VOICED |= {"ゾ": "ｿﾞ", "ダ": "ﾀﾞ", "ヂ": "ﾁﾞ", "ヅ": "ﾂﾞ", "デ": "ﾃﾞ", "ド": "ﾄﾞ", "バ": "ﾊﾞ", "ビ": "ﾋﾞ", "ブ": "ﾌﾞ"}
_VOICED |= {"ベ": "ﾍﾞ", "ボ": "ﾎﾞ", "パ": "ﾊﾟ", "ピ": "ﾋﾟ", "プ": "ﾌﾟ", "ペ": "ﾍﾟ", "ポ": "ﾎﾟ", "ヴ": "ｳﾞ"}
_O_ROW_U = re.compile("(?<=[オコソトノホモヨロゴゾドボポョ])ウ")


def hiragana(s: str) -> str:
    """Katakana → hiragana (what a clerk types with an IME off)."""
    return s.translate(_HIRA)


def half_width(s: str) -> str:
    """Katakana → half-width katakana."""
    return "".join(_VOICED.get(c) or _HALF.get(c) or (" " if c == "\u3000" else c) for c in s)


def replica_lines(records: list[dict[str, Any]]) -> Iterator[bytes]:
    """The records as snapshot put-op lines (what a bootstrap streams into `bulk_load`)."""
    for r in records:
        yield f'{{"a":{json.dumps(r["atena_no"])},"r":1,"t":"ph","v":{canonical_json(r)}}}'.encode()


def build_replica(path: Path, records: list[dict[str, Any]]) -> tuple[float, float, int, int]:
    """Load the registry as a bootstrap does, then build the search index in the same transaction.

    Returns (load seconds, index build seconds, file size before the index, after).
    """
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE", "cache_size=-200000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(f"PRAGMA page_size={registry.PAGE_SIZE}")
    registry.create_schema(conn)
    conn.execute("BEGIN")
    t0 = time.perf_counter()
    registry.bulk_load(conn, replica_lines(records), len(records))
    load = time.perf_counter() - t0
    size_before = int(conn.execute("PRAGMA page_count").fetchone()[0]) * registry.PAGE_SIZE
    gc.collect()
    t0 = time.perf_counter()
    index.build(conn)
    built = time.perf_counter() - t0
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return load, built, size_before, path.stat().st_size


# ------------------------------------------------------------------------------ queries

#: (kind, query, the baseline's WHERE clause on ``person`` and its parameters)
Query = tuple[str, SearchQuery, str, list[Any]]
_NAME_LIKE = "(kana LIKE ? OR name LIKE ?)"


def _like(text: str) -> tuple[str, list[Any]]:
    """The naive system's condition for what the clerk typed: a substring of kana or name."""
    return _NAME_LIKE, [f"%{text}%", f"%{text}%"]


def _given(s: str) -> str:
    return s.split("\u3000", 1)[1] if "\u3000" in s else ""


def _sei(s: str) -> str:
    return s.split("\u3000", 1)[0]


def make_queries(records: list[dict[str, Any]], per_kind: int, seed: int) -> list[Query]:
    """Realistic counter queries about residents drawn from the population."""
    rng = random.Random(seed)
    live = [r for r in records if r["status"] == "住民" and r.get("kana") and "\u3000" in r["kana"]]
    pick = lambda: rng.choice(live)  # noqa: E731

    def kana_full() -> tuple[SearchQuery, str, list[Any]]:
        kana = pick()["kana"]
        typed = rng.choice([kana, kana.replace("\u3000", ""), hiragana(kana), half_width(kana)])
        return SearchQuery(kana=typed), *_like(typed)

    def kana_prefix() -> tuple[SearchQuery, str, list[Any]]:
        kana = pick()["kana"]
        sei, given = _sei(kana), _given(kana)
        typed = rng.choice([sei + given[: rng.randint(1, 2)], hiragana(sei + given[: rng.randint(1, 2)])])
        return SearchQuery(kana=typed), *_like(typed)

    def kana_given() -> tuple[SearchQuery, str, list[Any]]:
        given = rng.choice([_given(pick()["kana"]), hiragana(_given(pick()["kana"]))])
        return SearchQuery(kana=given), *_like(given)

    def kana_u_variant() -> tuple[SearchQuery, str, list[Any]]:
        cands = [r for r in (pick() for _ in range(50)) if _O_ROW_U.search(r["kana"][1:])]
        kana = (cands or [pick()])[0]["kana"]
        typed = kana[0] + _O_ROW_U.sub(rng.choice(["ー", "オ"]), kana[1:])
        typed = rng.choice([typed, hiragana(typed), half_width(typed)])
        return SearchQuery(kana=typed), *_like(typed)

    def kana_substring() -> tuple[SearchQuery, str, list[Any]]:
        kana = pick()["kana"].replace("\u3000", "")
        start = rng.randint(1, max(1, len(kana) - 3))
        typed = kana[start : start + 3]
        return SearchQuery(kana=typed), *_like(typed)

    def kanji_full() -> tuple[SearchQuery, str, list[Any]]:
        name = rng.choice([pick()["name"], pick()["name"].replace("\u3000", "")])
        return SearchQuery(name=name), *_like(name)

    def kanji_surname() -> tuple[SearchQuery, str, list[Any]]:
        sei = _sei(pick()["name"])
        return SearchQuery(name=sei), *_like(sei)

    def kana_and_birth() -> tuple[SearchQuery, str, list[Any]]:
        r = pick()
        where, args = _like(_sei(r["kana"]))
        return (
            SearchQuery(kana=_sei(r["kana"]), birth=r["birth_date"]),
            f"{where} AND birth_date_iso = ?",
            [
                *args,
                r["birth_date_iso"],
            ],
        )

    def birth_wareki() -> tuple[SearchQuery, str, list[Any]]:
        r = pick()
        d = dt.date.fromisoformat(r["birth_date_iso"])
        text = r["birth_date"] if r["resident_type"] == "日本人住民" else f"{d.year}年{d.month}月{d.day}日"
        if rng.random() < 0.5 and r["birth_date"].startswith(("昭和", "平成", "令和", "大正")):
            era = {"昭和": "S", "平成": "H", "令和": "R", "大正": "T"}[r["birth_date"][:2]]
            y = re.match(r"..(元|\d+)年", r["birth_date"])
            yy = 1 if y is None or y.group(1) == "元" else int(y.group(1))
            text = f"{era}{yy}.{d.month}.{d.day}"
        return SearchQuery(birth=text), "birth_date_iso = ?", [r["birth_date_iso"]]  # given the 西暦 day

    def birth_seireki() -> tuple[SearchQuery, str, list[Any]]:
        iso = pick()["birth_date_iso"]
        typed = rng.choice([iso, iso.replace("-", ""), iso.replace("-", "/")])
        return SearchQuery(birth=typed), "birth_date_iso = ?", [iso]

    def address() -> tuple[SearchQuery, str, list[Any]]:
        r = pick()
        town = r["address"].removeprefix("宮崎県門川町")
        if r.get("katagaki") and rng.random() < 0.5:
            text = r["katagaki"]
        else:
            text = town + r.get("banchi", "").split("番地")[0] + "番地"
        # person.address holds the 町字 only (番地 and 方書 are inside the JSON record)
        return SearchQuery(address=text), "address LIKE ?", [f"%{town}%"]

    def atena() -> tuple[SearchQuery, str, list[Any]]:
        a = pick()["atena_no"]
        return SearchQuery(atena_no=a), "atena_no LIKE ?", [f"%{a}%"]

    kinds: dict[str, Callable[[], tuple[SearchQuery, str, list[Any]]]] = {
        "kana whole name": kana_full,
        "kana prefix (氏+1-2)": kana_prefix,
        "kana 名 only": kana_given,
        "kana ー/オ for ウ": kana_u_variant,
        "kana 3 from mid-name": kana_substring,
        "kanji whole name": kanji_full,
        "kanji 氏 only": kanji_surname,
        "kana 氏 + birth": kana_and_birth,
        "birth 和暦": birth_wareki,
        "birth 西暦": birth_seireki,
        "address partial": address,
        "atena_no": atena,
    }
    out: list[Query] = []
    for kind, make in kinds.items():
        for _ in range(per_kind):
            out.append((kind, *make()))
    return out


def baseline(conn: sqlite3.Connection, where: str, args: list[Any]) -> int:
    """The naive scan: the condition over the person table, 住民 only, by kana, 50 rows."""
    sql = f"SELECT atena_no FROM person WHERE {where} AND status = '住民' ORDER BY kana LIMIT 50"
    return len(conn.execute(sql, args).fetchall())


def run(path: Path, queries: list[Query], baseline_per_kind: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)  # as `Replica.connect` opens the live file
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for _, q, _, _ in queries[::10]:  # warm up: first page faults, statement cache
        search(conn, q)
    ours: dict[str, list[float]] = {}
    hits: dict[str, list[int]] = {}
    for kind, q, _, _ in queries:
        t0 = time.perf_counter()
        found = search(conn, q)
        ours.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
        hits.setdefault(kind, []).append(len(found))
    base: dict[str, list[float]] = {}
    base_hits: dict[str, list[int]] = {}
    for kind, _, where, args in queries:
        if len(base.get(kind, [])) >= baseline_per_kind:
            continue
        t0 = time.perf_counter()
        n = baseline(conn, where, args)
        base.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
        base_hits.setdefault(kind, []).append(n)
    conn.close()
    rows = []
    for kind, ms in ours.items():
        b = base[kind]
        rows.append(
            [
                kind,
                len(ms),
                f"{percentile(ms, 50):.2f}",
                f"{percentile(ms, 95):.2f}",
                f"{percentile(ms, 99):.2f}",
                f"{sum(hits[kind]) / len(hits[kind]):.1f}",
                f"{percentile(b, 50):.1f}",
                f"{percentile(b, 95):.1f}",
                f"{sum(base_hits[kind]) / len(base_hits[kind]):.1f}",
                f"{percentile(b, 50) / max(percentile(ms, 50), 1e-6):,.0f}x",
            ]
        )
    every = [m for ms in ours.values() for m in ms]
    rows.append(
        [
            "all",
            len(every),
            f"{percentile(every, 50):.2f}",
            f"{percentile(every, 95):.2f}",
            f"{percentile(every, 99):.2f}",
            "",
            "",
            "",
            "",
            "",
        ]
    )
    table(
        "query latency, ms (ours: every query; baseline: naive LIKE scan on the first queries of each kind)",
        ["kind", "n", "p50", "p95", "p99", "hits", "base p50", "base p95", "base hits", "p50 ratio"],
        rows,
    )


def measure_reindex(path: Path, records: list[dict[str, Any]], n: int) -> float:
    """Mean ms of `index.reindex` for one person after a change (what the apply path adds)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    sample = random.Random(3).sample(records, n)
    conn.execute("BEGIN IMMEDIATE")
    for r in sample:  # a 転居 within the town, as the apply path would write it
        moved = {**r, "rireki_no": 2, "banchi": "1番地1", "change_reason": "転居", "change_class": "修正"}
        registry.apply_ops(conn, [{"t": "ph", "a": r["atena_no"], "r": 2, "v": moved}])
    t0 = time.perf_counter()
    index.reindex(conn, [r["atena_no"] for r in sample])
    elapsed = time.perf_counter() - t0
    conn.execute("ROLLBACK")
    conn.close()
    return elapsed * 1000 / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--residents", type=int, default=1_000_000, help="synthetic residents (default 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="50,000 residents")
    ap.add_argument("--queries", type=int, default=42, help="queries per kind (default 42, 12 kinds)")
    ap.add_argument("--baseline", type=int, default=10, help="baseline scans per kind (default 10)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    n = 50_000 if args.quick else args.residents
    with workdir("bench-search-") as root:
        print(f"generating {n:,} residents of a synthetic {TOWN} ({LG}) …", flush=True)
        records = generate_population(LG, TOWN, n, args.seed, TODAY)
        rng = random.Random(args.seed)
        for r in records:
            if rng.random() < REMOVED_SHARE:
                r["status"] = rng.choice(("転出", "死亡"))
        path = root / "replica.db"
        load, built, before, after = build_replica(path, records)
        table(
            f"replica of {n:,} residents",
            ["step", "seconds", "file"],
            [
                ["registry bulk load", f"{load:.1f}", mib(before)],
                ["search index build", f"{built:.1f}", f"+{mib(after - before)}"],
            ],
        )
        with sqlite3.connect(path) as conn:
            sizes = conn.execute(
                "SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'search%' GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
        table("search tables and indexes", ["name", "size"], [[name, mib(size)] for name, size in sizes])
        queries = make_queries(records, args.queries, args.seed)
        run(path, queries, args.baseline)
        per = measure_reindex(path, records, 1000)
        print(f"\nreindex after a change: {per:.3f} ms a person (1,000 persons, one transaction)")
        print(f"replica file: {mib(os.path.getsize(path))}")


if __name__ == "__main__":
    main()
