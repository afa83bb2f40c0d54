"""Draining a day's offline work after the WAN returns, and reconciling it at the hub.

1. Drain: a town of 18,800 residents (`--residents`), a node that worked offline for a day:
   2,000 交付記録 (`--certs`), each with its audit entry, queued in its outbox exactly as the
   counter queues them (subjects with the 履歴番号 printed, every 発行番号). Then `node sync
   --once` (a real process) against a real `hub serve` drains the queue while the hub keeps
   committing 異動 (5 a second), which the same run applies. Reported: drain time and items/s,
   on loopback and through the WAN emulator capped at 48,000 B/s. Baseline: the capped run
   against the time the bytes it sent would take at exactly 48,000 B/s (the link's floor).
   The day also holds 200 届出 taken in at the counter (`--certs` / 10) and their audit entries.
2. Reconciliation: 10,000 交付記録 (`--records`) against a day of 300 異動 after their cursor,
   received by `edgenode.hub.uploads.receive` in batches of 500. Baseline: the same findings
   computed by scanning the change log once per record (measured on 500 records, scaled).

`--quick`: 3,000 residents, 300 certificates, 2,000 records.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import build_hub, hub_serve, offline_node, run_cli, stop, table, workdir
from bench.wanem import LinkProfile, WanEmulator
from edgenode import outbox, registry
from edgenode.audit import AuditLog
from edgenode.durable import open_db, utcnow, write_tx
from edgenode.hub.hub import Hub
from edgenode.hub.uploads import ChangeIndex, receive
from edgenode.sync.replica import Replica

LG, NAME = "454214", "門川町"


def queue_day(node: Path, node_id: str, n: int, rng: random.Random) -> None:
    """Queue `n` issuances (and their audit entries) the way the counter does."""
    with Replica(node / "replica").session() as conn:
        people = [json.loads(r) for r in registry.iter_current(conn)]
        cursor = int(Replica.meta(conn)["cursor"])
    audit = AuditLog(node / "node.db", node_id)
    db = open_db(node / "node.db", outbox.SQL)
    for i in range(n):
        p = rng.choice(people)
        replica: dict[str, Any] = {"cursor": cursor, "chain": "0" * 64, "as_of": None}
        record: dict[str, Any] = {
            "id": f"bench-{i:06d}",
            "issued_at": utcnow(),
            "day": "2026-11-27",
            "clerk": "tanaka",
            "node_id": node_id,
            "kind": "住民票の写し",
            "scope": "世帯全員",
            "layout": "世帯連記式",
            "requester": rng.choice(["本人", "本人", "同一世帯", "代理人", "第三者"]),
            "subjects": [{"atena_no": p["atena_no"], "rireki_no": p["rireki_no"], "household_no": p["household_no"]}],
            "omissions": ["個人番号", "住民票コード"],
            "copies": 1,
            "pages": 1,
            "serials": [f"20261127 {NAME} {node_id} プリンタ001 {i + 1:06d} 1/1"],
            "fee": 300,
            "purpose": "",
            "id_document": "マイナンバーカード",
            "approval": None,
            "replica": replica,
        }
        with write_tx(db):
            outbox.append_in(db, node_id, "issuance", "tanaka", record, replica)
        audit.append("issue", "tanaka", {"id": record["id"], "subjects": [p["atena_no"]]})
    for i in range(n // 10):  # and a tenth as many 届出 taken in at the counter
        p = rng.choice(people)
        intake = {
            "id": f"intake-{i:05d}",
            "type": rng.choice(["転居届", "転出届"]),
            "received_at": utcnow(),
            "clerk": "tanaka",
            "node_id": node_id,
            "persons": [{"atena_no": p["atena_no"], "rireki_no": p["rireki_no"]}],
            "date": "令和8年12月1日",
            "new_address": f"{NAME}大字川内{i}番地",
            "notifier": "本人",
            "note": "",
        }
        with write_tx(db):
            outbox.append_in(db, node_id, "intake", "tanaka", intake, {"cursor": cursor})
        audit.append("intake", "tanaka", {"id": intake["id"]})
    db.close()


def drain(root: Path, residents: int, certs: int) -> None:
    hub, _tenant, _, _ = build_hub(root / "hub", LG, NAME, residents)
    proc, url = hub_serve(root / "hub", root)
    rows = []
    try:
        for label, capped in (("loopback", False), ("WAN emulator 48,000 B/s, 30 ms", True)):
            node = root / f"node-{label[:4]}"
            offline_node(node, hub, LG, f"honcho-{int(capped)}", url)
            code, err = run_cli(["node", "sync", "--data", str(node), "--once"])
            assert code == 0, err
            queue_day(node, f"honcho-{int(capped)}", certs, random.Random(1))
            stop_sim = threading.Event()
            sim = threading.Thread(target=simulate_steadily, args=(root / "hub", stop_sim), daemon=True)
            sim.start()
            profile = LinkProfile(bandwidth=48_000, latency=0.03) if capped else LinkProfile()
            with WanEmulator("127.0.0.1", int(url.rsplit(":", 1)[1]), profile) as wan:
                began = time.perf_counter()
                code, err = run_cli(["node", "sync", "--data", str(node), "--once"], env={"EDGENODE_HUB_URL": wan.url})
                took = time.perf_counter() - began
                up = wan.stats.bytes_up
            stop_sim.set()
            sim.join()
            assert code == 0, err
            items = 2 * certs + 2 * (certs // 10)
            floor = up / 48_000 if capped else 0.0
            rows.append(
                [
                    label,
                    items,
                    f"{took:.2f}",
                    f"{items / took:,.0f}",
                    f"{up:,}",
                    f"{floor:.2f}" if capped else "-",
                    f"{took / floor:.2f}" if capped else "-",
                ]
            )
    finally:
        stop(proc)
    table(
        f"Draining a day's offline work ({certs:,} 交付記録, {certs // 10:,} 届出 and their audit entries;"
        " the hub commits 5 異動/s)",
        ["link", "items", "drain s", "items/s", "bytes up", "floor s", "x floor"],
        rows,
    )


def simulate_steadily(hub_data: Path, stop_event: threading.Event) -> None:
    """The registry keeps changing at the datacenter while the node drains."""
    hub = Hub(hub_data)
    seed = 0
    while not stop_event.wait(0.2):
        seed += 1
        hub.simulate(LG, 1, seed)


def reconcile(root: Path, residents: int, records: int) -> None:
    hub, tenant, _, _ = build_hub(root / "rhub", LG, NAME, residents)
    hub.simulate(LG, 300, 7)  # the day's 異動, all after the printed cursor (0)
    conn = tenant.connect()
    people = [json.loads(r) for r in registry.iter_current(conn)]
    conn.close()
    rng = random.Random(3)
    db = open_db(root / "rnode.db", outbox.SQL)
    items: list[dict[str, Any]] = []
    with write_tx(db):
        for i in range(records):
            p = rng.choice(people)
            payload = {
                "id": f"r-{i:06d}",
                "issued_at": "2999-01-01T00:00:00.000000Z",
                "day": "2026-11-27",
                "requester": "本人",
                "replica": {"cursor": 0},
                "subjects": [{"atena_no": p["atena_no"], "rireki_no": 1, "household_no": p["household_no"]}],
            }
            items.append(outbox.append_in(db, "honcho-r", "issuance", "tanaka", payload, {"cursor": 0}))
    db.close()
    began = time.perf_counter()
    found = 0
    for i in range(0, len(items), 500):
        receive(tenant, "honcho-r", items[i : i + 500])
    took = time.perf_counter() - began
    conn = tenant.connect()
    found = conn.execute("SELECT count(*) FROM issuance_record WHERE findings != '[]'").fetchone()[0]
    # baseline: one change-log scan per record
    sample = [it["payload"] for it in items[:500]]
    b0 = time.perf_counter()
    for rec in sample:
        ChangeIndex(conn, 0).findings(rec, rec["issued_at"])
    per_record = (time.perf_counter() - b0) / len(sample)
    conn.close()
    table(
        f"Reconciling {records:,} 交付記録 against 300 異動 (records with findings: {found:,})",
        ["method", "seconds", "records/s"],
        [
            ["receive(): ledger + effect + findings, batches of 500", f"{took:.2f}", f"{records / took:,.0f}"],
            ["BASELINE scan the log per record (500, scaled)", f"{per_record * records:.2f}", f"{1 / per_record:,.0f}"],
            ["ratio", f"{(per_record * records) / took:.1f}x", ""],
        ],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--residents", type=int, default=18_800)
    ap.add_argument("--certs", type=int, default=2_000)
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.residents, args.certs, args.records = 3_000, 300, 2_000
    with workdir("bench-drain-") as root:
        drain(root, args.residents, args.certs)
        reconcile(root, args.residents, args.records)


if __name__ == "__main__":
    main()
