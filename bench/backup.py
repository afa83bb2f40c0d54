"""Continuous backup with Litestream: how fast a change reaches the backup, what it costs, restore time.

A town of 18,800 residents (`--residents`), a node bootstrapped from a real `hub serve`, and a
real `edgenode node backup` (supervisor + `litestream replicate`) to a file target. Then the
counter's write pattern: `--rate` 交付記録 a second (each with its audit entry, one transaction
each, as the counter commits them) for `--seconds`. Reported:

1. commit-to-backup time: from each commit until an LTX file captured after it is in the
   target (p50, p99, max). Reference: Litestream's own cadence here (monitor 1 s + sync interval).
2. bytes written to the target per commit. Baseline (same run): a periodic whole-file copy of
   node.db and serial.db, i.e. what copying the files after each change would ship.
3. `node restore` of the whole node (litestream restore of every file, integrity checks,
   reconciliation with the hub, digest proof). Baseline: copying the same files with `cp`.

`--quick`: 3,000 residents, 10 seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
from pathlib import Path

from bench._common import build_hub, hub_serve, offline_node, percentile, run_cli, spawn, stop, table, workdir
from edgenode import outbox
from edgenode.audit import AuditLog
from edgenode.backup import positions
from edgenode.backup.config import Database
from edgenode.durable import open_db, utcnow, write_tx

LG, NAME = "454214", "門川町"


def _target_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.ltx") if "/ltx/0/" in str(p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--residents", type=int, default=18800)
    ap.add_argument("--rate", type=float, default=5.0, help="交付記録 per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.residents, a.seconds = 3000, 10.0
    with workdir("edgenode-bench-backup-") as root:
        hub, _tenant, _, _ = build_hub(root / "hub", LG, NAME, a.residents)
        hub_proc, url = hub_serve(root / "hub", root)
        node, target = root / "node", root / "usb"
        target.mkdir()
        backup_proc = None
        try:
            offline_node(node, hub, LG, "honcho-1", url)
            with open(node / "node.toml", "a", encoding="utf-8") as f:
                f.write(f'backup_path = "{target}"\n')
            code, err = run_cli(["node", "sync", "--data", str(node), "--once"])
            assert code == 0, err
            t0 = time.perf_counter()
            backup_proc = spawn(["node", "backup", "--data", str(node)], root / "backup.log")
            live = next((node / "replica").glob("replica-*.db"))
            replica = Database(f"replica/{live.stem}", live)
            while positions.in_file_target(target, replica) is None:
                time.sleep(0.05)
            first_backup = time.perf_counter() - t0
            t0 = time.perf_counter()
            shutil.copyfile(live, root / "copy.db")
            first_copy = time.perf_counter() - t0

            # the counter's writes, and a watcher noting when each new LTX file shows in the target
            seen: list[tuple[float, float]] = []  # (wall time seen in the target, LTX capture time)
            done = threading.Event()

            def watch() -> None:
                last = 0
                while not done.is_set():
                    newest = positions.scan(target / "node" / "ltx" / "0")
                    for x in sorted(newest, key=lambda x: x.max_txid):
                        if x.max_txid > last:
                            seen.append((time.time(), x.mtime))
                            last = x.max_txid
                    time.sleep(0.02)

            watcher = threading.Thread(target=watch)
            watcher.start()
            bytes_before = _target_bytes(target)
            audit = AuditLog(node / "node.db", "honcho-1")
            conn = open_db(node / "node.db", outbox.SQL)
            commits: list[float] = []
            n = int(a.rate * a.seconds)
            start = time.time()
            for i in range(n):
                time.sleep(max(0.0, start + i / a.rate - time.time()))
                record = {
                    "id": f"bench-{i:06d}",
                    "issued_at": utcnow(),
                    "serials": [f"20261127 門川町 honcho-1 プリンタ001 {i:06d} 1/1"],
                }
                with write_tx(conn):
                    outbox.append_in(conn, "honcho-1", "issuance", "tanaka", record, {"cursor": 0})
                audit.append("issue", "tanaka", {"id": record["id"]})
                commits.append(time.time())
            conn.close()
            deadline = time.time() + 60
            while time.time() < deadline and not (seen and seen[-1][1] >= commits[-1] - 0.01):
                time.sleep(0.1)
            done.set()
            watcher.join()
            waits = []
            for c in commits:
                hit = next((s for s, captured in seen if captured >= c - 0.002), None)
                if hit is not None:
                    waits.append(hit - c)
            shipped = _target_bytes(target) - bytes_before
            whole = os.path.getsize(node / "node.db") + os.path.getsize(node / "serial.db")
            stop(backup_proc)
            backup_proc = None

            # restore the whole node, proven against the hub; baseline: cp of the same files
            t0 = time.perf_counter()
            code, err = run_cli(["node", "restore", "--data", str(node), "--to", str(root / "restored")])
            restore_s = time.perf_counter() - t0
            assert code == 0, err
            t0 = time.perf_counter()
            (root / "copied").mkdir()
            for p in [node / "node.db", node / "serial.db", live]:
                shutil.copyfile(p, root / "copied" / p.name)
            copy_s = time.perf_counter() - t0
        finally:
            stop(backup_proc)
            stop(hub_proc)
        table(
            f"Backup of a node of {a.residents:,} residents to a file target ({len(commits)} commits at {a.rate}/s)",
            ["what", "figure", "baseline (same run)"],
            [
                ["first backup of the registry replica", f"{first_backup:.2f} s", f"file copy {first_copy:.3f} s"],
                [
                    "commit to backup, p50 / p99 / max",
                    f"{percentile(waits, 50):.2f} / {percentile(waits, 99):.2f} / {max(waits):.2f} s",
                    "Litestream cadence: monitor 1 s + sync 1 s",
                ],
                [
                    "bytes to the target per commit",
                    f"{shipped / len(commits):,.0f} B",
                    f"whole-file copy {whole:,} B ({whole / max(1.0, shipped / len(commits)):,.0f}x)",
                ],
                ["node restore, proven against the hub", f"{restore_s:.2f} s", f"cp of the files {copy_s:.3f} s"],
            ],
        )
        print(json.dumps({"commits": len(commits), "measured": len(waits)}))


if __name__ == "__main__":
    main()
