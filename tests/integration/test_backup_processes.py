"""Continuous backup with the real Litestream binary: replicate, destroy, restore, reconcile.

Each test runs real processes (`hub serve`, `node serve` / `node backup`, which run
`litestream replicate`) on loopback and waits with bounded polls, never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from edgenode.backup import config
from edgenode.backup.config import databases
from edgenode.durable import utcnow
from edgenode.sync.nodeconfig import load_node_settings, write_certs_template
from tests.integration.conftest import CLI, LG, HubProc, make_node, run, serving_node, sql_value

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def status(node: Path) -> dict[str, Any]:
    return dict(json.loads(run("node", "status", "--data", str(node), "--json").stdout))


def backup_node(tmp_path: Path, hub: HubProc, name: str = "honcho-1", **extra: object) -> tuple[Path, Path]:
    """A bootstrapped node whose node.toml points its backup at tmp_path/NAME-backup."""
    node = make_node(tmp_path, hub.url, hub.token(name), name)
    backup = tmp_path / f"{name}-backup"
    backup.mkdir()
    values = {"backup_path": str(backup), "backup_sync_interval": 0.2, "backup_stall_after": 3.0, **extra}
    with open(node / "node.toml", "a", encoding="utf-8") as f:
        for k, v in values.items():
            f.write(f"{k} = {json.dumps(v)}\n")
    write_certs_template(node, LG, "門川町", "門川　一郎", replace=True)
    run("node", "sync", "--data", str(node), "--once")
    return node, backup


@contextmanager
def backup_process(node: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`edgenode node backup` (what the systemd unit runs), stopped with SIGTERM on exit."""
    with open(node.parent / f"{node.name}-backup.log", "ab") as log:
        proc = subprocess.Popen([*CLI, "node", "backup", "--data", str(node)], stdout=log, stderr=log)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_backed_up(node: Path, serials: list[str], timeout: float = 60.0) -> None:
    """Wait until the backup holds the 交付記録 with these 発行番号 and the counter past them.

    Checked by what counts: a real `litestream restore` of node.db and serial.db from the backup
    target into a scratch folder, repeated until it shows them (and the registry replica is there).
    """
    settings = load_node_settings(node)
    want = max(seq_of(s) for s in serials)
    scratch = node.parent / f"{node.name}-probe"

    def done() -> bool:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        cfg = scratch / "litestream.json"
        for db in databases(node):
            config.write(cfg, config.build(node, settings, [db]))
            out = scratch / db.path.name
            p = subprocess.run(
                [str(config.binary()), "restore", "-no-expand-env", "-config", str(cfg), "-o", str(out), str(db.path)],
                capture_output=True,
                timeout=60,
            )
            if p.returncode != 0:
                return False
        try:
            kept = str(sql_value(scratch / "node.db", "SELECT group_concat(serials, '|') FROM issuance"))
            last = sql_value(scratch / "serial.db", "SELECT last FROM cert_serial")
        except sqlite3.OperationalError:  # a backup from before the first issuance
            return False
        return all(s in kept for s in serials) and isinstance(last, int) and last >= want

    wait_for("the backup to hold the new 交付記録", done, timeout)
    shutil.rmtree(scratch, ignore_errors=True)


def issue(node: Path, tmp_path: Path, hub: HubProc, n: int = 0) -> list[str]:
    """Issue one 住民票の写し with `node issue`; return its 発行番号."""
    people = [json.loads(x) for x in hub.export().splitlines() if '"relationship":"世帯主"' in x]
    person = people[n % len(people)]
    out = tmp_path / f"c{n}.pdf"
    p = run(
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
        str(out),
    )
    serials = p.stderr.split(": ", 1)[1].rsplit(" -> ", 1)[0].split(", ")
    return serials


def seq_of(serial: str) -> int:
    return int(serial.split()[-2])


def restore(node: Path, target: Path, backup: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    p = run(
        "node",
        "restore",
        "--data",
        str(node),
        "--to",
        str(target),
        "--backup-path",
        str(backup),
        *extra,
        check=False,
        timeout=600,
    )
    report = json.loads(p.stdout) if p.stdout.strip() else {}
    return p.returncode, report, p.stderr


def ledger(hub: HubProc, node_id: str) -> list[tuple[int, str]]:
    conn = sqlite3.connect(hub.data / "tenants" / f"{LG}.db")
    try:
        return conn.execute(
            "SELECT seq, status FROM upload_ledger WHERE node_id = ? ORDER BY seq", (node_id,)
        ).fetchall()
    finally:
        conn.close()


def test_replicate_destroy_restore_round_with_the_real_binary(hub: HubProc, tmp_path: Path) -> None:
    node, backup = backup_node(tmp_path, hub)
    with serving_node(node, tmp_path) as url:
        b = wait_for("node serve to run the backup", lambda: status(node)["backup"]["state"] == "running")
        assert b
        serials = issue(node, tmp_path, hub, 0) + issue(node, tmp_path, hub, 1)
        wait_backed_up(node, serials)
        point = utcnow()  # after the first two certificates, before the third
        before_point = list(serials)
        serials += issue(node, tmp_path, hub, 3)
        wait_backed_up(node, serials)
        api = httpx.get(f"{url}/api/status").json()["backup"]
        assert api["target"] == str(backup) and api["restarts"] == 0
        metrics = httpx.get(f"{url}/metrics").text
        assert 'edgenode_node_backup_state{state="running"} 1.0' in metrics
        assert "edgenode_node_backup_lag_seconds" in metrics
    hub_export = hub.export()
    last_serial = max(seq_of(s) for s in serials)
    shutil.rmtree(node)  # the appliance's disk is gone

    restored = tmp_path / "restored"
    code, report, err = restore(node, restored, backup)
    assert code == 0, err
    assert report["proven"] is True and report["files_ok"] is True
    assert report["digest"]["identical"] is True
    assert set(report["integrity"].values()) == {"ok"} and len(report["integrity"]) == 3
    assert report["replica"] and report["config_files"] == ["certs.toml", "node.toml"]
    assert report["serial_counter"]["now"] >= last_serial + 1000
    assert not os.path.exists(node)  # the restore never recreates or touches the old folder
    assert (restored / "node.toml").stat().st_mode & 0o777 == 0o600
    # a point in time restores the state then: the 発行番号 counter stood at the second certificate
    code, pit, err = restore(node, tmp_path / "pit", backup, "--timestamp", point)
    assert code == 0 and pit["proven"] is True, err
    assert pit["serial_counter"]["restored"] == max(seq_of(s) for s in before_point)
    assert pit["serial_counter"]["restored"] < min(seq_of(s) for s in serials if s not in before_point)
    assert pit["backup_point"]["last_item"] < report["backup_point"]["last_item"]
    # the restored folder is a working node with the same registry and the same 交付記録
    assert run("node", "export", "--data", str(restored)).stdout == hub_export
    run("node", "audit", "verify", "--data", str(restored))
    kept = sql_value(restored / "node.db", "SELECT group_concat(serials, '|') FROM issuance")
    assert all(s in str(kept) for s in serials)
    run("node", "sync", "--data", str(restored), "--once")
    assert [s for _, s in ledger(hub, "honcho-1")].count("rejected") == 0
    assert len(json.loads(run("hub", "issuances", "--data", str(hub.data), "--lg-code", LG, "--json").stdout)) == 3
    # the restored node backs up to the same place and that backup restores too
    with backup_process(restored):
        later = issue(restored, tmp_path, hub, 2)
        wait_backed_up(restored, later)
    code, report, err = restore(restored, tmp_path / "again", backup)
    assert code == 0 and report["proven"] is True, err
    assert later[0] in str(sql_value(tmp_path / "again" / "node.db", "SELECT group_concat(serials, '|') FROM issuance"))


def test_a_restored_node_takes_the_hubs_verdicts_and_reports_what_it_lost(hub: HubProc, tmp_path: Path) -> None:
    node, backup = backup_node(tmp_path, hub)
    with backup_process(node):
        first = issue(node, tmp_path, hub, 0)  # queued, not yet uploaded, in the backup
        wait_backed_up(node, first)
    second = issue(node, tmp_path, hub, 1)  # after the backup point: only the hub will have it
    run("node", "sync", "--data", str(node), "--once")
    third = issue(node, tmp_path, hub, 2)  # after the backup point and never uploaded: gone
    assert [s for _, s in ledger(hub, "honcho-1")] == ["accepted"] * 4
    shutil.rmtree(node)

    hub.stop()  # without the hub the files are restored and checked, but not proven
    code, offline, err = restore(node, tmp_path / "offline", backup)
    assert code == 3 and offline["files_ok"] is True and offline["proven"] is False, err
    assert offline["hub_unreachable"] is True and "NOT PROVEN" in err
    hub.start()
    restored = tmp_path / "restored"
    code, report, err = restore(node, restored, backup)
    assert code == 0, err
    rec = report["reconcile"]
    assert rec["backup_last_item"] == 2 and rec["hub_last_item"] == 4 and report["backup_point"]["last_item"] == 2
    assert rec["marked"] == {"accepted": 2}  # nothing is sent twice
    lost = rec["possibly_lost"]
    assert [x["seq"] for x in lost] == [3, 4] and [x["kind"] for x in lost] == ["issuance", "audit"]
    assert lost[0]["serials"] == second
    assert "20" in err and second[0] in err  # the operator is told the 発行番号 of what may be lost
    # never a 発行番号 again that may have been printed: the lost third one included
    assert (
        report["serial_counter"]["now"] >= seq_of(third[0])
        and report["serial_counter"]["now"] > seq_of(second[0]) + 999
    )
    run("node", "audit", "verify", "--data", str(restored))
    fourth = issue(restored, tmp_path, hub, 3)
    assert seq_of(fourth[0]) > seq_of(third[0])
    run("node", "sync", "--data", str(restored), "--once")
    verdicts = ledger(hub, "honcho-1")
    # the restore's own audit entry (5), the new issuance (6) and its audit entry (7): the chain goes on
    assert verdicts == [(i, "accepted") for i in range(1, 8)]
    st = status(restored)
    assert st["queue_depth"] == 0 and st["queue"]["by_state"]["rejected"] == 0
    held = sql_value(hub.data / "tenants" / f"{LG}.db", "SELECT count(*) FROM node_audit WHERE node_id = 'honcho-1'")
    assert held == sql_value(restored / "node.db", "SELECT count(*) FROM audit_log")
    kept = str(sql_value(restored / "node.db", "SELECT group_concat(serials, '|') FROM issuance"))
    assert first[0] in kept and second[0] in kept and third[0] not in kept  # the lost one is back from the hub


def test_a_killed_or_hung_replicator_is_reported_and_restarted(hub: HubProc, tmp_path: Path) -> None:
    node, _backup = backup_node(tmp_path, hub)
    with serving_node(node, tmp_path) as url:
        first = wait_for("a running replicator", lambda: _running(node))
        os.kill(first["litestream_pid"], signal.SIGKILL)
        again = wait_for("a restarted replicator", lambda: _running(node, restarts=1))
        assert again["litestream_pid"] != first["litestream_pid"]
        assert again["last_exit"] == "killed by signal 9"
        assert "edgenode_node_backup_restarts_total 1.0" in httpx.get(f"{url}/metrics").text
        # a replicator that stops answering (SIGSTOP) is stalled, with the lag growing
        os.kill(again["litestream_pid"], signal.SIGSTOP)
        try:
            stalled = wait_for("a stalled backup", lambda: _in_state(node, "stalled"), timeout=30)
            assert "answered" in stalled["hint"] and stalled["lag_seconds"] >= 3.0
            assert 'edgenode_node_backup_state{state="stalled"} 1.0' in httpx.get(f"{url}/metrics").text
        finally:
            os.kill(again["litestream_pid"], signal.SIGCONT)
        wait_for("the backup to recover", lambda: _running(node, restarts=1))
        # a new bootstrap switches the replica file: the backup follows it
        before = status(node)["backup"]["databases"]
        snap = tmp_path / "snap.ensnap"
        run("hub", "snapshot", "--data", str(hub.data), "--lg-code", LG, "--out", str(snap))
        run("node", "bootstrap", "--data", str(node), "--from", str(snap))
        after = wait_for(
            "the backup to follow the new replica file",
            lambda: (b := _running(node, restarts=1)) and b["databases"] != before and b,
        )
        live = (node / "replica" / "CURRENT").read_text().strip().removesuffix(".db")
        assert after["databases"].endswith(f"replica/{live}")
        wait_for(
            "the new replica file in the backup",
            lambda: (node.parent / f"{node.name}-backup" / "replica" / live / "ltx").is_dir(),
        )
    assert status(node)["backup"]["state"] == "stopped"


def _running(node: Path, restarts: int = 0) -> dict[str, Any] | None:
    b = status(node)["backup"]
    ok = b["state"] == "running" and b.get("restarts") == restarts and b.get("litestream_pid")
    return dict(b) if ok else None


def _in_state(node: Path, state: str) -> dict[str, Any] | None:
    b = status(node)["backup"]
    return dict(b) if b["state"] == state else None


def test_restore_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    backup = tmp_path / "bk"
    backup.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    code, _report, err = restore(tmp_path / "gone", target, backup)
    assert code == 2 and "not empty" in err
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    code, _report, err = restore(tmp_path / "gone", tmp_path / "new", backup, "--timestamp", "yesterday")
    assert code == 2 and "--timestamp" in err and not (tmp_path / "new").exists()
    # an empty backup: a clear error, and no half-made folder left behind
    code, _report, err = restore(tmp_path / "gone", tmp_path / "new", backup)
    assert code == 1 and "restoring node failed" in err and not (tmp_path / "new").exists()


def test_the_hub_shows_a_node_its_own_ledger_in_pages_and_no_one_elses(hub: HubProc, tmp_path: Path) -> None:
    from edgenode.hub.store import HubStore
    from edgenode.hub.uploads import receive
    from tests.outbox_items import queue_issuances

    items = queue_issuances(tmp_path / "node.db", 5, "honcho-1")
    store = HubStore(hub.data)
    receive(store.tenant(LG), "honcho-1", items)
    receive(store.tenant(LG), "shisho-2", queue_issuances(tmp_path / "other.db", 2, "shisho-2"))
    url = f"{hub.url}/v1/tenants/{LG}/uploads/ledger"
    auth = {"authorization": f"Bearer {hub.token('honcho-1')}"}
    page = httpx.get(url, params={"after": 2, "limit": 2}, headers=auth).json()
    assert page["last_seq"] == 5 and [r["seq"] for r in page["items"]] == [3, 4]
    assert page["items"][0]["item"] == items[2] and page["items"][0]["status"] == "accepted"
    assert httpx.get(url, params={"after": 5}, headers=auth).json()["items"] == []
    assert httpx.get(url, params={"node_id": "shisho-2"}, headers=auth).status_code == 403
    assert httpx.get(url).status_code == 401
    assert httpx.get(f"{hub.url}/v1/tenants/999999/uploads/ledger", headers=auth).status_code == 403
    assert httpx.get(url, params={"after": "x"}, headers=auth).status_code == 400


def test_a_killed_supervisor_takes_its_replicator_with_it(hub: HubProc, tmp_path: Path) -> None:
    node, _backup = backup_node(tmp_path, hub)
    with backup_process(node) as proc:
        first = wait_for("a running replicator", lambda: _running(node))
        proc.kill()
        proc.wait(timeout=10)
        wait_for("the replicator to end", lambda: not Path(f"/proc/{first['litestream_pid']}").exists())
        assert status(node)["backup"]["state"] == "not_running"
    with backup_process(node):
        again = wait_for("a running replicator again", lambda: _running(node))
        assert again["litestream_pid"] != first["litestream_pid"]


def test_a_target_that_refuses_writes_stalls_the_backup_until_it_is_back(hub: HubProc, tmp_path: Path) -> None:
    from edgenode.audit import AuditLog

    node, backup = backup_node(tmp_path, hub)
    with backup_process(node):
        wait_for(
            "node.db in the backup",
            lambda: (b := _running(node)) and b.get("node_db_backup_txid", 0) >= b.get("node_db_local_txid", 0) > 0,
        )
        # the node's folder on the backup disk becomes a file: every write there fails
        shutil.rmtree(backup / "node")
        (backup / "node").write_text("in the way")
        AuditLog(node / "node.db", "honcho-1").append("test", "tanaka", {"what": "a change to back up"})
        stalled = wait_for("a stalled backup", lambda: _in_state(node, "stalled"), timeout=30)
        assert stalled["hint"].startswith("node:") and "not a directory" in stalled["last_error"]
        assert stalled["node_db_backup_txid"] < stalled["node_db_local_txid"] and stalled["lag_seconds"] >= 3.0
        (backup / "node").unlink()
        back = wait_for(
            "the backup to catch up",
            lambda: (b := _running(node)) and b["node_db_backup_txid"] == b["node_db_local_txid"] and b,
        )
        assert back["lag_seconds"] == 0.0
