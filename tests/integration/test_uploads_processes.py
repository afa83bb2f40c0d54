"""Queued writes reach the hub exactly once, through kills of node and hub, and get reconciled."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from edgenode.sync.nodeconfig import write_certs_template
from tests.integration.conftest import CLI, LG, HubProc, make_node, run, running_hub, sql_value
from tests.outbox_items import queue_issuances


def _status(node: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(run("node", "status", "--data", str(node), "--json").stdout)


def test_an_offline_issuance_reaches_the_hub_once_with_its_findings(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("honcho-1"), "honcho-1")
    write_certs_template(node, LG, "門川町", "門川　一郎", replace=True)
    run("node", "sync", "--data", str(node), "--once")
    person = next(json.loads(x) for x in hub.export().splitlines() if '"relationship":"世帯主"' in x)
    # the datacenter sets a 支援措置 on the household while the node does not know it yet
    run("hub", "restrict", "--data", str(hub.data), "--lg-code", LG, "--household", person["household_no"])
    run(
        "node",
        "issue",
        "--data",
        str(node),
        "--person",
        person["atena_no"],
        "--kind",
        "住民票の写し",
        "--clerk",
        "tanaka",
        "-o",
        str(tmp_path / "c.pdf"),
    )
    assert _status(node)["queue_depth"] == 2  # the 交付記録 and its audit entry
    run("node", "sync", "--data", str(node), "--once")
    run("node", "sync", "--data", str(node), "--once")  # a second round sends nothing twice
    st = _status(node)
    assert st["queue_depth"] == 0 and st["queue"]["by_state"]["accepted"] >= 2
    assert st["queue"]["by_state"]["rejected"] == 0
    rows = json.loads(run("hub", "issuances", "--data", str(hub.data), "--lg-code", LG, "--json").stdout)
    assert len(rows) == 1
    (finding,) = rows[0]["findings"]
    assert "支援措置" in finding["reason"] and rows[0]["record"]["clerk"] == "tanaka"
    assert rows[0]["record"]["serials"] and rows[0]["node_id"] == "honcho-1"
    assert rows[0]["notify"] is False  # 本人 asked: no 本人通知
    csv_out = run("hub", "issuances", "--data", str(hub.data), "--lg-code", LG, "--csv").stdout.splitlines()
    assert csv_out[0].startswith("id,node_id") and person["atena_no"] in csv_out[1]
    totals = run("hub", "issuances", "--data", str(hub.data), "--lg-code", LG, "--totals").stdout
    assert "1 件" in totals and "300 円" in totals
    # the node's audit chain is held by the hub too (so dropping the newest entries shows)
    from edgenode.audit import AuditLog

    n_node, problem = AuditLog(node / "node.db").verify()
    assert problem is None and n_node >= 1
    held = sql_value(hub.data / "tenants" / f"{LG}.db", "SELECT count(*) FROM node_audit WHERE node_id = 'honcho-1'")
    assert held == n_node


def test_kill_9_of_node_and_hub_during_upload_leaves_every_item_exactly_once(tmp_path: Path) -> None:
    with running_hub(tmp_path, residents=200) as hub:
        node = make_node(tmp_path, hub.url, hub.token("honcho-1"), "honcho-1")
        run("node", "sync", "--data", str(node), "--once")
        queue_issuances(node / "node.db", 3000, pad=2000)
        rng = random.Random(5)
        kills = 0
        progress: list[int] = []
        for round_ in range(10):
            p = subprocess.Popen(
                [*CLI, "node", "sync", "--data", str(node), "--once"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=os.environ.copy(),
            )
            time.sleep(rng.uniform(0.1, 0.6))
            if round_ % 2 and hub.proc is not None:
                hub.proc.send_signal(signal.SIGKILL)  # the hub dies, possibly after a commit, before answering
                hub.proc.wait()
                hub.proc = None
                kills += 1
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
            if hub.proc is None:
                hub.start()
            progress.append(_status(node)["queue"]["by_state"]["accepted"])
        assert kills >= 5  # hub kills every other round, node kills when still running
        assert any(0 < a < 3000 for a in progress), f"no kill landed mid-upload: {progress}"
        run("node", "sync", "--data", str(node), "--once")
        st = _status(node)
        assert st["queue"]["by_state"] == {"pending": 0, "sent": 0, "accepted": 3000, "conflict": 0, "rejected": 0}
        db = hub.data / "tenants" / f"{LG}.db"
        assert sql_value(db, "SELECT count(*) FROM issuance_record") == 3000
        assert sql_value(db, "SELECT count(*) FROM upload_ledger WHERE status = 'accepted'") == 3000
        assert sql_value(db, "SELECT count(DISTINCT id) FROM issuance_record") == 3000
