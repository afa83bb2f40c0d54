"""The hub at national scale: a thousand long-polling nodes, and the largest municipality.

Runs each scenario on the SQLite hub and on the PostgreSQL hub (a throwaway local cluster
this run starts), side by side; each backend is the other's baseline.

Fleet (default 200 tenants x 5 nodes = 1,000 nodes, `--tenants`, `--per-tenant`): one hub
process; every node is a coroutine in this process holding one keep-alive HTTP connection and
long-polling ``/feed`` with its own real token (a minimal HTTP/1.1 client: httpx would spend
more of the two cores than the hub). Phases:

- idle: all nodes waiting in long-polls (``wait=20``) for `--idle` seconds: hub CPU per node,
- commits: a separate process commits `--rate` changes/s across random tenants (``hub
  simulate``'s engine) for `--seconds`: seconds from the commit returning to each of the
  tenant's nodes holding it (p50/p99; goal p99 <= 2 s), hub CPU,
- idle polls: every node polls with ``wait=0`` as fast as answers come for 10 s: requests/s.

City (`--city N`, default 3,800,000, Yokohama's size; `--city-sizes` for scaling points): the
same synthetic population loaded into each backend; snapshot production time and size at the
hub, and a node's bootstrap from that snapshot file.

    python -m bench.hub_scale --quick     # 20 tenants x 5 nodes, 20,000-resident city
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import TODAY, cpu_seconds, hub_serve, mib, percentile, stop, table, workdir
from bench.bootstrap import bootstrap_node
from edgenode import settings as settings_mod
from edgenode import wire
from edgenode.hub.hub import Hub
from edgenode.hub.pgtemp import TempCluster
from edgenode.sync.nodeconfig import init_node

CITY_LG, CITY_NAME = "141003", "横浜市"


def lg_codes(n: int) -> list[str]:
    """`n` valid municipality codes (check digit computed), distinct."""
    out = []
    for body in range(1001, 47999):
        s = f"{body:05d}"
        total = sum(int(d) * w for d, w in zip(s, (6, 5, 4, 3, 2), strict=True))
        out.append(s + str((11 - total % 11) % 10))
        if len(out) == n:
            return out
    raise ValueError(n)


def make_hub(data: Path, db: str) -> Hub:
    data.mkdir(parents=True, exist_ok=True)
    settings_mod.write(settings_mod.HUB_SETTINGS, data / "hub.toml", {"db": db})
    return Hub(data, settings_mod.load(settings_mod.HUB_SETTINGS, data / "hub.toml", {}, {}))


def tree_cpu(root_pid: int) -> float:
    """CPU seconds of a process and its direct children (the PostgreSQL postmaster and backends)."""
    total = cpu_seconds(root_pid) or 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == root_pid:
                total += cpu_seconds(int(d.name)) or 0.0
    return total


def postmaster_pid(cluster: TempCluster | None) -> int | None:
    if cluster is None:
        return None
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


# ---------------------------------------------------------------- a minimal keep-alive client


class Node:
    """One simulated node: a token, a cursor, one HTTP/1.1 connection."""

    def __init__(self, lg: str, token: str, cursor: int) -> None:
        self.lg, self.cursor = lg, cursor
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, port: int, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: hub\r\n{self.auth}\r\n".encode())
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.partition(b":")
            if k.lower() == b"content-length":
                length = int(v)
        return status, await self.reader.readexactly(length)


class Fleet:
    def __init__(self, port: int, nodes: list[Node]) -> None:
        self.port, self.nodes = port, nodes
        self.wait = 20
        self.requests = 0
        self.errors = 0
        self.received: list[tuple[str, int, float]] = []

    async def run_node(self, node: Node) -> None:
        while True:
            try:
                status, body = await node.get(
                    self.port, f"/v1/tenants/{node.lg}/feed?after={node.cursor}&wait={self.wait}"
                )
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                self.errors += 1
                node.writer = None
                await asyncio.sleep(1)
                continue
            now = time.time()
            self.requests += 1
            if status != 200:
                self.errors += 1
                await asyncio.sleep(1)
                continue
            header, _ = wire.decode_frame_header(wire.BATCH_MAGIC, body)
            last = int(header["last_seq"])
            for s in range(node.cursor + 1, last + 1):
                self.received.append((node.lg, s, now))
            node.cursor = max(node.cursor, last)


def commit_worker(data: Path, rate: float, seconds: float, seed: int) -> None:
    """(separate process) commit `rate` registry changes per second; print `lg seq time` lines."""
    hub = Hub(data)
    lgs = sorted(hub.store.tenants())
    rng = random.Random(seed)
    end = time.monotonic() + seconds
    nxt = time.monotonic()
    while time.monotonic() < end:
        lg = rng.choice(lgs)
        before = hub.store.tenant(lg).head()
        head = hub.simulate(lg, 1, seed=rng.randrange(1 << 30), today=TODAY)
        t = time.time()
        for s in range(before + 1, head + 1):
            print(lg, s, f"{t:.6f}", flush=True)
        nxt += 1.0 / rate
        time.sleep(max(0.0, nxt - time.monotonic()))


def fleet(root: Path, backend: str, db: str, cluster: TempCluster | None, args: argparse.Namespace) -> dict[str, Any]:
    data = root / f"fleet-{backend}"
    hub = make_hub(data, db)
    lgs = lg_codes(args.tenants)
    t0 = time.perf_counter()
    nodes: list[Node] = []
    for i, lg in enumerate(lgs):
        hub.init_tenant(lg, f"町{i}", residents=args.residents, seed=i, today=TODAY)
        for k in range(args.per_tenant):
            nodes.append(Node(lg, hub.store.issue_token(lg, f"n{k}"), 0))
    print(f"  {backend}: {len(lgs)} tenants, {len(nodes)} tokens in {time.perf_counter() - t0:.1f} s", flush=True)
    proc, url = hub_serve(data, root, {"EDGENODE_FEED_MAX_WAIT": "30"})
    port = int(url.rsplit(":", 1)[1])
    pm = postmaster_pid(cluster)

    def cpu() -> tuple[float, float]:
        return (cpu_seconds(proc.pid) or 0.0, tree_cpu(pm) if pm else 0.0)

    async def drive() -> dict[str, Any]:
        fl = Fleet(port, nodes)
        tasks = []
        for n in nodes:  # connect gradually, as a fleet would after a hub restart
            tasks.append(asyncio.create_task(fl.run_node(n)))
            await asyncio.sleep(0.002)
        await asyncio.sleep(5)
        res: dict[str, Any] = {}
        c0, r0, t0 = cpu(), fl.requests, time.monotonic()
        await asyncio.sleep(args.idle)
        c1, dt = cpu(), time.monotonic() - t0
        res["idle_hub_cpu"] = (c1[0] - c0[0]) / dt
        res["idle_db_cpu"] = (c1[1] - c0[1]) / dt
        res["idle_rps"] = (fl.requests - r0) / dt
        out = root / f"commits-{backend}.txt"
        with open(out, "wb") as f:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.hub_scale",
                    "--commit-worker",
                    str(data),
                    str(args.rate),
                    str(args.seconds),
                ],
                stdout=f,
            )
            c0, t0 = cpu(), time.monotonic()
            while worker.poll() is None:
                await asyncio.sleep(0.2)
            await asyncio.sleep(3)  # the last commits reach their nodes
            c1, dt = cpu(), time.monotonic() - t0
        res["commit_hub_cpu"] = (c1[0] - c0[0]) / dt
        res["commit_db_cpu"] = (c1[1] - c0[1]) / dt
        committed = {}
        for line in out.read_text().split("\n"):
            if line:
                lg, s, t = line.split()
                committed[(lg, int(s))] = float(t)
        lat = [t - committed[(lg, s)] for lg, s, t in fl.received if (lg, s) in committed]
        expected = sum(args.per_tenant for _ in committed)
        res["commits"], res["samples"], res["expected"] = len(committed), len(lat), expected
        res["p50"], res["p99"] = (percentile(lat, 50), percentile(lat, 99)) if lat else (float("nan"),) * 2
        res["max"] = max(lat) if lat else float("nan")
        fl.wait = 0  # idle polls, as fast as they are answered
        await asyncio.sleep(2)
        c0, r0, t0 = cpu(), fl.requests, time.monotonic()
        await asyncio.sleep(10)
        c1, dt = cpu(), time.monotonic() - t0
        res["poll_rps"] = (fl.requests - r0) / dt
        res["poll_hub_cpu"] = (c1[0] - c0[0]) / dt
        res["poll_db_cpu"] = (c1[1] - c0[1]) / dt
        res["errors"] = fl.errors
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return res

    try:
        return asyncio.run(drive())
    finally:
        stop(proc)


def city(root: Path, sizes: list[int], dbs: dict[str, str], cluster: TempCluster | None) -> list[list[Any]]:
    from edgenode.hub.synth import generate_population

    rows: list[list[Any]] = []
    for n in sizes:
        t0 = time.perf_counter()
        records = generate_population(CITY_LG, CITY_NAME, n, 1, TODAY)
        print(f"  generated {n:,} residents in {time.perf_counter() - t0:.0f} s", flush=True)
        for backend, db in dbs.items():
            db_n = cluster.create_database(f"city{n}") if db and cluster else ""
            hub = make_hub(root / f"city-{backend}-{n}", db_n)
            hub.store.create()
            tenant = hub.store.add_tenant(CITY_LG, CITY_NAME)
            t0 = time.perf_counter()
            hub.load_records(tenant, records, reason="初期移行")
            t_load = time.perf_counter() - t0
            snap = root / f"city-{backend}-{n}.ensnap"
            t0 = time.perf_counter()
            manifest = hub.snapshot_file(CITY_LG, snap)
            t_snap = time.perf_counter() - t0
            node = root / f"node-{backend}-{n}"
            init_node(
                node,
                "http://127.0.0.1:9",
                hub.store.issue_token(CITY_LG, "b1"),
                "b1",
                lg_code=CITY_LG,
                hub_key=hub.store.key().public_b64,
            )
            t_boot, got, _ = bootstrap_node(node, snap)
            assert got == n, (got, n)
            rows.append(
                [
                    f"{backend} {n:,}",
                    f"{t_load:.1f}",
                    f"{t_snap:.1f}",
                    f"{n / t_snap:,.0f}",
                    mib(snap.stat().st_size),
                    f"{t_boot:.1f}",
                    f"{n / t_boot:,.0f}",
                    int(manifest["seq"]),
                ]
            )
            print(f"  {rows[-1]}", flush=True)
            snap.unlink()
        del records
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 tenants x 5 nodes, a 20,000-resident city")
    ap.add_argument("--tenants", type=int, default=200)
    ap.add_argument("--per-tenant", type=int, default=5)
    ap.add_argument("--residents", type=int, default=30, help="residents per fleet tenant")
    ap.add_argument("--rate", type=float, default=5.0, help="commits per second across tenants")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the commit phase")
    ap.add_argument("--idle", type=float, default=45.0, help="length of the idle long-poll phase")
    ap.add_argument("--city", type=int, default=3_800_000, help="residents of the largest municipality")
    ap.add_argument("--city-sizes", default="", help="comma-separated sizes instead of --city (scaling points)")
    ap.add_argument("--skip-fleet", action="store_true")
    ap.add_argument("--skip-city", action="store_true")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--commit-worker", nargs=3, metavar=("DATA", "RATE", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.commit_worker:
        commit_worker(Path(args.commit_worker[0]), float(args.commit_worker[1]), float(args.commit_worker[2]), 1)
        return
    if args.quick:
        args.tenants, args.seconds, args.idle, args.city = 20, 15.0, 5.0, 20_000
    sizes = [int(s) for s in args.city_sizes.split(",")] if args.city_sizes else [args.city]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a thousand sockets on each side
    backends = args.backends.split(",")
    cluster = TempCluster(max_connections=300).start() if "postgresql" in backends else None
    try:
        with workdir("bench-hub-scale-") as root:
            dbs = {b: ("" if b == "sqlite" else cluster.url if cluster else "") for b in backends}
            n_nodes = args.tenants * args.per_tenant
            if not args.skip_fleet:
                print(f"fleet: {args.tenants} tenants x {args.per_tenant} nodes, {args.rate}/s commits …", flush=True)
                res = {}
                for b in backends:
                    db = ""
                    if cluster is not None and b == "postgresql":
                        db = cluster.create_database("fleet")
                    res[b] = fleet(root, b, db, cluster if b == "postgresql" else None, args)
                    print(f"  {b}: {res[b]}", flush=True)
                table(
                    f"{n_nodes:,} long-polling nodes, one hub process, 2 cores (this run)",
                    ["", *backends],
                    [
                        ["commit -> node p50 (s)", *(f"{res[b]['p50']:.3f}" for b in backends)],
                        ["commit -> node p99 (s)", *(f"{res[b]['p99']:.3f}" for b in backends)],
                        ["deliveries / expected", *(f"{res[b]['samples']}/{res[b]['expected']}" for b in backends)],
                        ["idle: hub CPU (% of a core)", *(f"{100 * res[b]['idle_hub_cpu']:.1f}" for b in backends)],
                        [
                            "idle: hub CPU per node (ms/s)",
                            *(f"{1000 * res[b]['idle_hub_cpu'] / n_nodes:.3f}" for b in backends),
                        ],
                        ["idle: database server CPU (%)", *(f"{100 * res[b]['idle_db_cpu']:.1f}" for b in backends)],
                        ["commits: hub CPU (%)", *(f"{100 * res[b]['commit_hub_cpu']:.1f}" for b in backends)],
                        [
                            "commits: database server CPU (%)",
                            *(f"{100 * res[b]['commit_db_cpu']:.1f}" for b in backends),
                        ],
                        ["idle polls (wait=0) req/s", *(f"{res[b]['poll_rps']:,.0f}" for b in backends)],
                        ["idle polls: hub CPU (%)", *(f"{100 * res[b]['poll_hub_cpu']:.1f}" for b in backends)],
                        ["idle polls: database CPU (%)", *(f"{100 * res[b]['poll_db_cpu']:.1f}" for b in backends)],
                        ["client errors", *(str(res[b]["errors"]) for b in backends)],
                    ],
                )
            if not args.skip_city:
                print(f"city: {', '.join(f'{n:,}' for n in sizes)} residents …", flush=True)
                rows = city(root, sizes, dbs, cluster)
                table(
                    "The largest municipality: snapshot at the hub, bootstrap at a node",
                    [
                        "backend, residents",
                        "load s",
                        "snapshot s",
                        "rows/s",
                        "snapshot size",
                        "bootstrap s",
                        "rows/s",
                        "seq",
                    ],
                    rows,
                )
    finally:
        if cluster is not None:
            cluster.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
