"""Bootstrap throughput: a node installs a snapshot of a large registry from a file.

Measures, for a synthetic city (default 1,000,000 residents, `--residents N`; `--quick` =
20,000):

- the hub's initial migration (`Hub.load_records` on a fresh tenant) and the snapshot file it
  writes (`Hub.snapshot_file`: time and size);
- a node bootstrapped offline from that file (`Syncer.bootstrap(DirectoryFeedClient(file))`,
  what `edgenode node bootstrap --from FILE` does): wall time and records/s (goal ≥ 100,000/s),
  and the replica file size;
- the same bootstrap once more with timers wrapped around edgenode functions (no edits to
  edgenode), broken into phases: staging the chunks, re-reading them, zstd decompression,
  parse + insert, waiting for the validation worker, index + commit + fsync + switch.

Baseline, in the same run: the physical limit of SQLite on this machine — the same rows
(atena_no, rireki_no, record text) inserted into one table with the same primary key, in one
transaction, journal_mode=OFF, synchronous=OFF, page_size 16384, then one fsync. Printed as
records/s and the node/baseline ratio. Population generation (~23 s per million) is not measured.
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench._common import CITY_LG, CITY_NAME, build_hub, mib, offline_node, table, workdir
from edgenode import registry, wire
from edgenode.sync import syncer as syncer_mod
from edgenode.sync.client import DirectoryFeedClient
from edgenode.sync.nodeconfig import load_node_settings
from edgenode.sync.replica import Replica
from edgenode.sync.syncer import Syncer


def bootstrap_node(data: Path, snap: Path) -> tuple[float, int, Path]:
    """Bootstrap the node in `data` from `snap`; (seconds, rows, replica file)."""
    syncer = Syncer(data, load_node_settings(data))
    gc.collect()
    t0 = time.perf_counter()
    syncer.bootstrap(DirectoryFeedClient(snap))
    elapsed = time.perf_counter() - t0
    path = syncer.replica.current_file()
    assert path is not None
    with syncer.replica.session() as conn:
        rows = int(conn.execute("SELECT COUNT(*) FROM person_history").fetchone()[0])
    return elapsed, rows, path


class Phases:
    """Timers wrapped around the functions a bootstrap calls (installed, then removed)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = dict.fromkeys(("write", "chunks", "lines", "bulk", "spawn", "wait", "install"), 0.0)
        self._saved: list[tuple[Any, str, Any]] = []

    def _patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        orig = getattr(owner, name)
        self._saved.append((owner, name, orig))
        setattr(owner, name, make(orig))

    def _timed(self, key: str) -> Callable[[Any], Any]:
        def make(orig: Any) -> Any:
            def wrapper(*a: Any, **kw: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return orig(*a, **kw)
                finally:
                    self.t[key] += time.perf_counter() - t0

            return wrapper

        return make

    def _timed_gen(self, key: str) -> Callable[[Any], Any]:
        def make(orig: Any) -> Any:
            def wrapper(*a: Any, **kw: Any) -> Iterator[Any]:
                it = orig(*a, **kw)
                while True:
                    t0 = time.perf_counter()
                    try:
                        item = next(it)
                    except StopIteration:
                        self.t[key] += time.perf_counter() - t0
                        return
                    self.t[key] += time.perf_counter() - t0
                    yield item

            return wrapper

        return make

    def __enter__(self) -> Phases:
        self._patch(syncer_mod, "atomic_write", self._timed("write"))
        self._patch(Syncer, "_staged_chunks", self._timed_gen("chunks"))
        self._patch(wire, "iter_snapshot_lines", self._timed_gen("lines"))
        self._patch(registry, "bulk_load", self._timed("bulk"))
        self._patch(registry._Validator, "__init__", self._timed("spawn"))
        self._patch(registry._Validator, "finish", self._timed("wait"))
        self._patch(Replica, "install_snapshot", self._timed("install"))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, orig in reversed(self._saved):
            setattr(owner, name, orig)


def raw_insert(rows: list[tuple[str, int, str]], path: Path) -> float:
    """The baseline: one table, one transaction, no journal; seconds including one fsync."""
    t0 = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size=16384")
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(
        "CREATE TABLE person_history (atena_no TEXT NOT NULL, rireki_no INTEGER NOT NULL,"
        " record TEXT NOT NULL, PRIMARY KEY (atena_no, rireki_no))"
    )
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO person_history VALUES (?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--residents", type=int, default=1_000_000, help="synthetic residents (default 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="20,000 residents: a smoke test")
    args = ap.parse_args()
    n = 20_000 if args.quick else args.residents
    with workdir("bench-bootstrap-") as root:
        print(f"generating {n:,} residents of a synthetic {CITY_NAME} ({CITY_LG}) and loading the hub …", flush=True)
        hub, tenant, t_gen, t_load = build_hub(root / "hub", CITY_LG, CITY_NAME, n)
        snap = root / "city.ensnap"
        t0 = time.perf_counter()
        manifest = hub.snapshot_file(CITY_LG, snap)
        t_snap = time.perf_counter() - t0
        hub_rows, snap_bytes = int(manifest["rows"]), snap.stat().st_size

        offline_node(root / "node", hub, CITY_LG, "bench-1", "http://127.0.0.1:9")
        t_node, rows, replica = bootstrap_node(root / "node", snap)
        assert rows == n, f"replica holds {rows} rows, expected {n}"
        replica_size = replica.stat().st_size

        offline_node(root / "node2", hub, CITY_LG, "bench-2", "http://127.0.0.1:9")
        with Phases() as ph:
            t_prof, _, _ = bootstrap_node(root / "node2", snap)

        conn = sqlite3.connect(tenant.path)
        hist = conn.execute("SELECT atena_no, rireki_no, record FROM person_history ORDER BY 1, 2").fetchall()
        conn.close()
        gc.collect()
        t_raw = raw_insert(hist, root / "raw.db")
        raw_size = (root / "raw.db").stat().st_size
        del hist

    node_rate, raw_rate = rows / t_node, rows / t_raw
    print(f"\n(setup, not measured: generating the population took {t_gen:.1f} s)")
    table(
        f"Bootstrap of {n:,} residents ({hub_rows:,} snapshot rows)",
        ["step", "wall s", "records/s", "size"],
        [
            ["hub initial migration (load_records)", f"{t_load:.2f}", f"{n / t_load:,.0f}", ""],
            ["hub snapshot file (snapshot_file)", f"{t_snap:.2f}", f"{hub_rows / t_snap:,.0f}", mib(snap_bytes)],
            ["node bootstrap from file", f"{t_node:.2f}", f"{node_rate:,.0f}", f"replica {mib(replica_size)}"],
            ["BASELINE raw SQLite insert", f"{t_raw:.2f}", f"{raw_rate:,.0f}", f"file {mib(raw_size)}"],
            ["ratio node / baseline", "", f"{node_rate / raw_rate:.2f}", ""],
        ],
    )
    print(f"goal ≥ 100,000 records/s applied: {'met' if node_rate >= 100_000 else 'NOT met'} ({node_rate:,.0f}/s)")

    t = ph.t
    staging = t_prof - t["install"]
    insert = t["bulk"] - t["lines"] - t["spawn"] - t["wait"]
    decompress = t["lines"] - t["chunks"]
    rest = t["install"] - t["bulk"]
    table(
        f"Phases of an instrumented second bootstrap (total {t_prof:.2f} s; timers add overhead)",
        ["phase", "s", "share"],
        [
            [label, f"{v:.2f}", f"{100 * v / t_prof:.0f} %"]
            for label, v in (
                ("stage: manifest, read+hash chunks, write, cleanup", staging),
                ("  of which chunk writes + fsync (atomic_write)", t["write"]),
                ("re-read + re-check staged chunks", t["chunks"]),
                ("zstd decompress + split lines", decompress),
                ("parse + insert (main process)", insert),
                ("create validation pool", t["spawn"]),
                ("wait for validation worker at the end", t["wait"]),
                ("index + meta + commit + fsync + switch", rest),
            )
        ],
    )


if __name__ == "__main__":
    main()
