"""Hub and node as real processes: the node's copy ends byte-identical to the hub's."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bench.wanem import LinkProfile, WanEmulator
from tests.integration.conftest import CLI, LG, HubProc, make_node, node_export, run, running_hub, sql_value


def _status(data: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(run("node", "status", "--data", str(data), "--json").stdout)


def test_bootstrap_and_rounds_of_changes_leave_exports_identical(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    run("node", "sync", "--data", str(node), "--once")
    assert node_export(node) == hub.export()
    for r in range(3):
        hub.simulate(25, seed=r)
        run("node", "sync", "--data", str(node), "--once")
        assert node_export(node) == hub.export()
    st = _status(node)
    assert st["cursor"] == st["hub_head"] > 0
    assert st["lag_changes"] == 0 and st["lag_seconds"] == 0
    assert run("node", "verify", "--data", str(node)).returncode == 0


def test_sync_survives_a_link_that_cuts_every_few_hundred_kb(tmp_path: Path) -> None:
    with running_hub(tmp_path, residents=4000, chunk_size=32768) as hub:
        node = make_node(tmp_path, hub.url, hub.token("node1"))
        profile = LinkProfile(cut_after_bytes=150_000, cut_jitter=0.5, latency=0.005, seed=3)
        with WanEmulator("127.0.0.1", hub.port, profile) as wan:
            env = {"EDGENODE_HUB_URL": wan.url, "EDGENODE_BACKOFF_INITIAL": "0.05"}
            attempts = 0
            for rnd in range(3):
                if rnd:
                    hub.simulate(200, seed=rnd)
                while True:
                    attempts += 1
                    assert attempts < 60, "sync never completed through the cutting link"
                    p = run("node", "sync", "--data", str(node), "--once", check=False, env=env)
                    if p.returncode == 0:
                        break
                    assert p.returncode == 3, p.stderr  # unreachable: retry, never a corrupt state
                assert node_export(node) == hub.export()
            assert wan.stats.cuts > 0, "the emulator never cut: the test proved nothing"


def _killed_runs(node: Path, rng: random.Random, runs: int, env: dict[str, str], args: list[str]) -> int:
    """Start `node sync --once` repeatedly and SIGKILL it at a random moment; count kills."""
    kills = 0
    for _ in range(runs):
        p = subprocess.Popen(
            [*CLI, "node", "sync", "--data", str(node), "--once", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **env},
        )
        time.sleep(rng.uniform(0.3, 1.2))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
    return kills


def _hub_chain_at(hub: HubProc, seq: int) -> str:
    return str(sql_value(hub.data / "tenants" / f"{LG}.db", "SELECT chain FROM changelog WHERE seq = ?", seq))


def _hub_head(hub: HubProc) -> int:
    return int(str(sql_value(hub.data / "tenants" / f"{LG}.db", "SELECT v FROM meta WHERE k = 'head'")))


def _node_chain(node: Path) -> str:
    name = (node / "replica" / "CURRENT").read_text().strip()
    return str(sql_value(node / "replica" / name, "SELECT v FROM replica_meta WHERE k = 'chain'"))


@pytest.mark.slow
def test_kill_9_during_bootstrap_resumes_and_ends_identical(tmp_path: Path) -> None:
    with running_hub(tmp_path, residents=6000, chunk_size=16384) as hub:
        node = make_node(tmp_path, hub.url, hub.token("node1"))
        # ~700 KB of snapshot at 40 KB/s: every kill lands inside the bootstrap
        kills = _killed_runs(node, random.Random(42), 6, {}, ["--bandwidth-limit", "40000"])
        assert kills == 6
        assert _status(node)["cursor"] is None, "a killed bootstrap must never install a replica"
        staged = list((node / "bootstrap").glob("chunk-*"))
        assert staged, "verified chunks must survive the kills so that the bootstrap resumes"
        run("node", "sync", "--data", str(node), "--once")
        assert node_export(node) == hub.export()
        assert not (node / "bootstrap").exists()
        assert run("node", "verify", "--data", str(node), "--no-repair").returncode == 0


@pytest.mark.slow
def test_kill_9_during_apply_leaves_an_exact_earlier_cursor(tmp_path: Path) -> None:
    with running_hub(tmp_path, residents=3000, chunk_size=65536) as hub:
        node = make_node(tmp_path, hub.url, hub.token("node1"))
        run("node", "sync", "--data", str(node), "--once")
        hub.simulate(1500, seed=77)
        head = _hub_head(hub)
        env = {"EDGENODE_FEED_MAX_BYTES": "8192"}
        rng = random.Random(7)
        cursors = []
        for _ in range(8):
            assert _killed_runs(node, rng, 1, env, ["--bandwidth-limit", "40000"]) <= 1
            st = _status(node)
            cursors.append(st["cursor"])
            # the replica's position is a real transaction boundary of the hub's log
            conn_chain = _node_chain(node)
            assert conn_chain == (_hub_chain_at(hub, st["cursor"]) if st["cursor"] else conn_chain)
        assert cursors == sorted(cursors) and 0 < cursors[-1] <= head
        assert any(0 < c < head for c in cursors), f"no kill landed mid-apply: {cursors}"
        run("node", "sync", "--data", str(node), "--once")
        assert node_export(node) == hub.export()
        assert run("node", "verify", "--data", str(node), "--no-repair").returncode == 0


def test_corrupted_bytes_are_refused_and_the_replica_keeps_its_cursor(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    run("node", "sync", "--data", str(node), "--once")
    before_export, before = node_export(node), _status(node)["cursor"]
    hub.simulate(30, seed=9)
    with WanEmulator("127.0.0.1", hub.port, LinkProfile(corrupt_probability=1.0, seed=1)) as wan:
        p = run("node", "sync", "--data", str(node), "--once", check=False, env={"EDGENODE_HUB_URL": wan.url})
    assert p.returncode != 0
    assert wan.stats.corruptions > 0
    assert _status(node)["cursor"] == before
    assert node_export(node) == before_export
    run("node", "sync", "--data", str(node), "--once")
    assert node_export(node) == hub.export()


def test_cross_tenant_reads_are_refused(hub: HubProc, tmp_path: Path) -> None:
    run("hub", "init", "--data", str(hub.data), "--lg-code", "011002", "--name", "札幌市", "--residents", "50")
    other = hub.token("sapporo-1", lg="011002")
    mine = hub.token("node1")
    for path in ("snapshot", "feed?after=0", "digest"):
        url = f"{hub.url}/v1/tenants/{LG}/{path}"
        assert httpx.get(url, headers={"authorization": f"Bearer {other}"}).status_code == 403
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"authorization": "Bearer en1.forged"}).status_code == 401
        assert httpx.get(url, headers={"authorization": f"Bearer {mine}"}).status_code == 200
    r = httpx.post(f"{hub.url}/v1/tenants/{LG}/heartbeat", content=b"{}", headers={"authorization": f"Bearer {other}"})
    assert r.status_code == 403


def test_a_410_leads_to_a_clean_rebootstrap(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    run("node", "sync", "--data", str(node), "--once")
    hub.simulate(20, seed=1)
    run("hub", "prune", "--data", str(hub.data), "--lg-code", LG, "--before", "15")
    r = httpx.get(f"{hub.url}/v1/tenants/{LG}/feed?after=0", headers={"authorization": f"Bearer {hub.token('x')}"})
    assert r.status_code == 410 and r.json()["error"] == "cursor_too_old"
    run("node", "sync", "--data", str(node), "--once")
    st = _status(node)
    assert st["snapshot_seq"] == st["cursor"] == 20  # a fresh snapshot, not the old feed
    assert node_export(node) == hub.export()


def test_snapshot_file_bootstraps_a_node_and_a_tampered_one_is_refused(hub: HubProc, tmp_path: Path) -> None:
    hub.simulate(10, seed=5)
    snap = tmp_path / "courier.ensnap"
    run("hub", "snapshot", "--data", str(hub.data), "--lg-code", LG, "--out", str(snap))
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    bad = tmp_path / "tampered.ensnap"
    data = bytearray(snap.read_bytes())
    data[-100] ^= 0x01
    bad.write_bytes(bytes(data))
    p = run("node", "bootstrap", "--data", str(node), "--from", str(bad), check=False)
    assert p.returncode == 1 and "SHA-256" in p.stderr
    assert _status(node)["cursor"] is None
    run("node", "bootstrap", "--data", str(node), "--from", str(snap))
    assert node_export(node) == hub.export()
    hub.simulate(10, seed=6)
    run("node", "sync", "--data", str(node), "--once")
    assert node_export(node) == hub.export()


def test_hub_apply_rejects_a_bad_file_whole_and_names_the_line(hub: HubProc, tmp_path: Path) -> None:
    lines = hub.export().splitlines()
    good = [json.loads(x) for x in lines[:3]]
    good[0]["status"] = "転出"
    broken = dict(good[2], birth_date="")
    f = tmp_path / "in.ndjson"
    f.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in [good[0], good[1], broken]) + "\n")
    before = hub.export()
    p = run("hub", "apply", "--data", str(hub.data), "--lg-code", LG, str(f), check=False)
    assert p.returncode == 1
    assert "in.ndjson:3" in p.stderr and "birth_date" in p.stderr
    assert hub.export() == before
    f.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in good[:2]) + "\n")
    run("hub", "apply", "--data", str(hub.data), "--lg-code", LG, str(f))
    after = hub.export()
    assert after != before and '"status":"転出"' in after


def test_verify_repairs_only_the_differing_buckets(hub: HubProc, tmp_path: Path) -> None:
    import sqlite3

    node = make_node(tmp_path, hub.url, hub.token("node1"))
    run("node", "sync", "--data", str(node), "--once")
    name = (node / "replica" / "CURRENT").read_text().strip()
    conn = sqlite3.connect(node / "replica" / name)
    victim = conn.execute("SELECT atena_no FROM person ORDER BY atena_no LIMIT 1 OFFSET 7").fetchone()[0]
    conn.execute(
        'UPDATE person_history SET record = replace(record, \'"sex":"女"\', \'"sex":"男"\') WHERE atena_no = ?',
        (victim,),
    )
    conn.execute("UPDATE person_history SET record = replace(record, '番地', '番') WHERE atena_no = ?", (victim,))
    conn.commit()
    conn.close()
    assert node_export(node) != hub.export()
    p = run("node", "verify", "--data", str(node), "--no-repair", check=False)
    assert p.returncode == 1 and "1 bucket(s)" in p.stderr
    p = run("node", "verify", "--data", str(node), check=False)
    assert p.returncode == 1 and "repaired" in p.stderr
    assert run("node", "verify", "--data", str(node)).returncode == 0
    assert node_export(node) == hub.export()


def test_the_bandwidth_cap_is_kept(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    with WanEmulator("127.0.0.1", hub.port) as wan:  # counts the bytes actually received
        began = time.monotonic()
        run(
            "node",
            "sync",
            "--data",
            str(node),
            "--once",
            "--bandwidth-limit",
            "50000",
            env={"EDGENODE_HUB_URL": wan.url},
        )
        took = time.monotonic() - began
        received = wan.stats.bytes_down
    # the first second is a burst allowance of one second's worth; the rest must be paced
    assert received > 150_000, "too little data to show the cap"
    assert took >= 0.8 * (received - 50_000) / 50_000


def test_a_usb_snapshot_completes_a_bootstrap_that_the_link_had_interrupted(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    p = subprocess.Popen(
        [*CLI, "node", "sync", "--data", str(node), "--once", "--bandwidth-limit", "20000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert (node / "bootstrap" / "manifest.json").exists(), "the kill should leave a half-done download"
    hub.simulate(5, seed=8)
    snap = tmp_path / "courier.ensnap"
    run("hub", "snapshot", "--data", str(hub.data), "--lg-code", LG, "--out", str(snap))
    run("node", "bootstrap", "--data", str(node), "--from", str(snap))
    assert node_export(node) == hub.export()
