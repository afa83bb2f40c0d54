"""Bytes on the wire per changed record when a node takes in a day of 異動.

Town: 130,000 synthetic residents by default (`--residents N`; `--quick` = 10,000). A real
`edgenode hub serve` process; the node (in this process) bootstraps and pulls the feed through
a `bench.wanem.WanEmulator` with no limits, which counts every byte (HTTP headers included).

"One day" = 200 異動 (`--day N`). Reasoning for a 130,000-resident town: about 1 % of residents
move per month (~1,300 people ≈ 60 a working day, as 転入/転出/転居 of households), plus
~4 births and ~6 deaths a day, 世帯 changes and corrections: ~80-120 異動 on an ordinary day,
two to three times that in the March/April moving season. 200 is a busy ordinary day; 1,000
(`--busy N`) is a peak day. Each 異動 is one registry transaction that may touch several
residents. Changed records = person history rows the day's change-log entries put (ph ops).

Node figures: the change-log lines before compression (the frames' raw_size), the signed frame
headers, body bytes (sum of the feed frames the node received: signed header + zstd payload)
and on-the-wire bytes (downstream incl. HTTP headers; upstream requests shown apart).
Baselines from the same run: (a) re-sending a full CSV export of every current record
(header row + one line per resident), raw and zstd level 3; (b) copying the node's whole
database file (checkpointed replica), raw and zstd level 3 — each divided by the same number
of changed records. Goal: ≤ 150 B per changed record.
"""

from __future__ import annotations

import argparse
import csv
import io
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import zstandard

from bench._common import TOWN_LG, TOWN_NAME, build_hub, hub_serve, mib, offline_node, stop, table, workdir
from bench.wanem import LinkProfile, WanEmulator
from edgenode import wire
from edgenode.hub.hub import Hub
from edgenode.resident import EXPORT_KEYS
from edgenode.sync.client import HttpFeedClient
from edgenode.sync.syncer import Syncer


class CountingClient(HttpFeedClient):
    """An `HttpFeedClient` that adds up the feed frames (response bodies) it returns."""

    body_bytes = header_bytes = raw_bytes = requests = 0

    def feed(self, after: int, wait: float, max_bytes: int) -> bytes | None:
        body = super().feed(after, wait, max_bytes) or b""
        header, offset = wire.decode_frame_header(wire.BATCH_MAGIC, body)
        self.body_bytes += len(body)
        self.header_bytes += offset
        self.raw_bytes += int(header["raw_size"])
        self.requests += 1
        return body


def zstd_size(data: bytes) -> int:
    return len(zstandard.ZstdCompressor(level=3).compress(data))


def csv_export(hub: Hub, lg: str) -> bytes:
    """Every current record as CSV with a header row (UTF-8)."""
    recs = [orjson.loads(line) for line in hub.export(lg)]
    extra = sorted({k for r in recs for k in r} - set(EXPORT_KEYS))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*EXPORT_KEYS, *extra], lineterminator="\n")
    w.writeheader()
    w.writerows(recs)
    return buf.getvalue().encode()


def db_file(syncer: Syncer) -> bytes:
    """The node's replica file, checkpointed so the main file holds everything."""
    with syncer.replica.session() as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = syncer.replica.current_file()
    assert path is not None
    return path.read_bytes()


def changed_records(tenant_path: Path, after: int) -> tuple[int, int]:
    """(transactions, person history rows put) in the change log after `after`."""
    conn = sqlite3.connect(f"file:{tenant_path}?mode=ro", uri=True)
    txs = ops = 0
    for (line,) in conn.execute("SELECT line FROM changelog WHERE seq > ?", (after,)):
        txs += 1
        ops += sum(1 for op in orjson.loads(line)["ops"] if op["t"] == "ph")
    conn.close()
    return txs, ops


def measure(
    hub: Hub, lg: str, syncer: Syncer, client: CountingClient, wan: WanEmulator, n: int, seed: int
) -> dict[str, Any]:
    """Apply `n` 異動 at the hub, pull them through the emulator; the byte counts."""
    tenant = hub.store.tenant(lg)
    head0 = tenant.head()
    head = hub.simulate(lg, n, seed)
    txs, recs = changed_records(tenant.path, head0)
    client.body_bytes = client.header_bytes = client.raw_bytes = client.requests = 0
    w0 = wan.stats.snapshot()
    syncer.catch_up()
    w1 = wan.stats.snapshot()
    pos = syncer.replica.position()
    assert pos is not None and pos[0] == head, f"node at {pos}, hub at {head}"
    export, dbf = csv_export(hub, lg), db_file(syncer)
    return {
        "n": n,
        "txs": txs,
        "recs": recs,
        "requests": client.requests,
        "body": client.body_bytes,
        "head": client.header_bytes,
        "raw": client.raw_bytes,
        "down": w1["bytes_down"] - w0["bytes_down"],
        "up": w1["bytes_up"] - w0["bytes_up"],
        "csv": len(export),
        "csv_z": zstd_size(export),
        "db": len(dbf),
        "db_z": zstd_size(dbf),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--residents", type=int, default=130_000, help="synthetic residents (default 130,000)")
    ap.add_argument("--day", type=int, default=200, help="異動 in one day (default 200)")
    ap.add_argument("--busy", type=int, default=1000, help="異動 in a peak day (default 1,000)")
    ap.add_argument("--quick", action="store_true", help="10,000 residents: a smoke test")
    args = ap.parse_args()
    n = 10_000 if args.quick else args.residents
    with workdir("bench-wire-") as root:
        print(f"building a hub with {n:,} residents ({TOWN_NAME} {TOWN_LG}, synthetic) …", flush=True)
        hub, _, _, _ = build_hub(root / "hub", TOWN_LG, TOWN_NAME, n)
        proc, url = hub_serve(root / "hub", root)
        try:
            with WanEmulator("127.0.0.1", int(url.rsplit(":", 1)[1]), LinkProfile()) as wan:
                settings = offline_node(root / "node", hub, TOWN_LG, "wire-1", wan.url)
                client = CountingClient(wan.url, settings["token"], TOWN_LG)
                syncer = Syncer(root / "node", settings, client=client)
                w0 = wan.stats.snapshot()
                syncer.bootstrap()
                snap_down = wan.stats.bytes_down - w0["bytes_down"]
                results = [
                    measure(hub, TOWN_LG, syncer, client, wan, k, seed) for seed, k in enumerate((args.day, args.busy))
                ]
                syncer.close()
        finally:
            stop(proc)

    table(
        f"Feed traffic, town of {n:,} residents (bootstrap snapshot over the wire: {mib(snap_down)})",
        ["day", "txs", "records put", "requests", "raw lines B", "frame hdr B", "body B", "wire down B", "wire up B"],
        [
            [
                f"{r['n']:,} changes",
                r["txs"],
                r["recs"],
                r["requests"],
                f"{r['raw']:,}",
                f"{r['head']:,}",
                f"{r['body']:,}",
                f"{r['down']:,}",
                f"{r['up']:,}",
            ]
            for r in results
        ],
    )
    for r in results:
        per = r["recs"]
        node_body, node_wire = r["body"] / per, r["down"] / per
        rows: list[list[str]] = [
            ["edgenode feed, body (frames)", f"{node_body:,.1f}", "1.0"],
            ["edgenode feed, on the wire (down)", f"{node_wire:,.1f}", f"{node_wire / node_body:.2f}"],
        ]
        for label, key in (
            ("CSV export, raw", "csv"),
            ("CSV export, zstd-3", "csv_z"),
            ("whole DB file, raw", "db"),
            ("whole DB file, zstd-3", "db_z"),
        ):
            rows.append([f"BASELINE {label} ({mib(r[key])})", f"{r[key] / per:,.0f}", f"{r[key] / r['body']:,.0f}"])
        rows.append(["re-bootstrap snapshot over the wire", f"{snap_down / per:,.0f}", f"{snap_down / r['body']:,.0f}"])
        table(
            f"Bytes per changed record: {r['n']:,} 異動 = {per:,} records put",
            ["transfer", "B / changed record", "x feed body"],
            rows,
        )
        ok = "met" if node_wire <= 150 else "NOT met"
        print(f"goal ≤ 150 B per changed record: {ok} (body {node_body:.1f} B, wire {node_wire:.1f} B)")


if __name__ == "__main__":
    main()
