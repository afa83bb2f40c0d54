"""The hub on either backend, as real processes: same registry, same answers, several processes.

The contract part runs over SQLite and PostgreSQL; the multi-process part is PostgreSQL's
alone (several stateless hub processes behind one database).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import psycopg

from edgenode.hub.pgtemp import TempCluster
from tests.integration.conftest import LG, HubProc, free_port, make_hub, make_node, node_export, run, running_hub
from tests.outbox_items import queue_issuances


def test_init_migrate_export_and_a_node_sync_agree_on_both_backends(tmp_path: Path, hub_db: str) -> None:
    with running_hub(tmp_path, residents=300, db=hub_db) as hub:
        run("hub", "migrate", "--data", str(hub.data))
        run("hub", "migrate", "--data", str(hub.data))  # idempotent, also while the hub serves
        hub.simulate(40, seed=3)
        node = make_node(tmp_path, hub.url, hub.token("node1"))
        run("node", "sync", "--data", str(node), "--once")
        exported = hub.export()
        assert node_export(node) == exported
        # digests computed by PostgreSQL's rows and the node's SQLite rows agree bucket for bucket
        assert run("node", "verify", "--data", str(node)).returncode == 0
    assert len(exported.splitlines()) >= 300


def test_the_same_town_exports_identically_from_sqlite_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    exports = []
    for name, db in (("lite", ""), ("pg", pg_url)):
        hub = make_hub(tmp_path / name, residents=200, db=db)
        exports.append(hub.export())
    assert exports[0] == exports[1] and exports[0]


def test_hub_init_refuses_a_store_url_it_cannot_use(tmp_path: Path, pg_url: str) -> None:
    p = run(
        "hub",
        "init",
        "--data",
        str(tmp_path / "h"),
        "--lg-code",
        LG,
        "--name",
        "門川町",
        "--db",
        "mysql://x",
        check=False,
    )
    assert p.returncode == 2 and "postgresql://" in p.stderr
    make_hub(tmp_path, residents=0, db=pg_url)
    other = pg_url.rsplit("/", 1)[0] + "/elsewhere"
    p = run(
        "hub",
        "init",
        "--data",
        str(tmp_path / "hub"),
        "--lg-code",
        "452033",
        "--name",
        "延岡市",
        "--db",
        other,
        check=False,
    )
    assert p.returncode == 2 and "already names" in p.stderr
    assert "elsewhere" not in (tmp_path / "hub" / "hub.toml").read_text()


def test_a_postgresql_hub_that_cannot_be_reached_says_so(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    p = run("hub", "init", "--data", str(tmp_path / "h"), "--lg-code", LG, "--name", "門川町", "--db", url, check=False)
    assert p.returncode != 0 and "cannot reach PostgreSQL" in p.stderr


def _second_process(hub: HubProc, tmp_path: Path) -> HubProc:
    """Another stateless hub process on the same database (its own copy of the data folder)."""
    data = tmp_path / "hub-b"
    shutil.copytree(hub.data, data, ignore=shutil.ignore_patterns("snapshots"))
    b = HubProc(data, free_port(), env=hub.env)
    b.start()
    return b


def test_a_commit_wakes_long_polls_in_every_hub_process(tmp_path: Path, pg_url: str) -> None:
    with running_hub(tmp_path, residents=200, db=pg_url) as a:
        b = _second_process(a, tmp_path)
        try:
            token = a.token("node1")
            headers = {"authorization": f"Bearer {token}"}
            head = httpx.post(f"{b.url}/v1/tenants/{LG}/heartbeat", headers=headers, json={}).json()["head_seq"]
            woke: dict[str, float] = {}

            def poll(name: str, url: str) -> None:
                t0 = time.monotonic()
                r = httpx.get(
                    f"{url}/v1/tenants/{LG}/feed", params={"after": head, "wait": 25}, headers=headers, timeout=60
                )
                assert r.status_code == 200
                woke[name] = time.monotonic() - t0

            threads = [threading.Thread(target=poll, args=(n, u)) for n, u in (("a", a.url), ("b", b.url))]
            for t in threads:
                t.start()
            time.sleep(1.0)  # both requests are waiting
            assert not woke
            t0 = time.monotonic()
            a.simulate(1, seed=5)  # a third process commits, straight into PostgreSQL
            commit_took = time.monotonic() - t0
            for t in threads:
                t.join()
            # woken by the notification, not by the 10 s re-check nor by the 25 s deadline
            assert set(woke) == {"a", "b"}
            assert max(woke.values()) < 1.0 + commit_took + 5.0, woke
        finally:
            b.stop()


def test_hub_processes_share_one_upload_ledger(tmp_path: Path, pg_url: str) -> None:
    with running_hub(tmp_path, residents=50, db=pg_url) as a:
        b = _second_process(a, tmp_path)
        try:
            token = a.token("honcho-1")
            items = queue_issuances(tmp_path / "node.db", 4)
            headers = {"authorization": f"Bearer {token}"}
            doc = {"node_id": "honcho-1", "items": items}
            first = httpx.post(f"{a.url}/v1/tenants/{LG}/uploads", headers=headers, json=doc).json()["results"]
            again = httpx.post(f"{b.url}/v1/tenants/{LG}/uploads", headers=headers, json=doc).json()["results"]
            assert [r["status"] for r in first] == ["accepted"] * 4
            assert [r["status"] for r in again] == ["duplicate"] * 4
            listed = json.loads(run("hub", "issuances", "--data", str(b.data), "--lg-code", LG, "--json").stdout)
            assert len(listed) == 4
            httpx.post(f"{a.url}/v1/tenants/{LG}/heartbeat", headers=headers, json={"mode": "online"})
            fleet = b.fleet()  # heartbeats are shared too
            assert [n["node_id"] for n in fleet["nodes"]] == ["honcho-1"]
            assert httpx.get(f"{b.url}/metrics").status_code == 200
        finally:
            b.stop()


def test_each_tenant_is_its_own_schema(tmp_path: Path, pg_url: str) -> None:
    hub = make_hub(tmp_path, residents=20, db=pg_url)
    run("hub", "init", "--data", str(hub.data), "--lg-code", "452033", "--name", "延岡市", "--residents", "10")
    with psycopg.connect(pg_url) as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'")}
        assert schemas == {"t_454214", "t_452033"}
        assert conn.execute("SELECT count(*) FROM t_452033.person").fetchone() == (10,)


def test_a_hub_whose_database_is_down_answers_retryable_503(tmp_path: Path) -> None:
    with TempCluster() as cluster:
        with running_hub(tmp_path, residents=20, db=cluster.create_database("hub")) as hub:
            headers = {"authorization": f"Bearer {hub.token('node1')}"}
            feed = f"{hub.url}/v1/tenants/{LG}/feed"
            assert httpx.get(feed, params={"after": 0}, headers=headers).status_code == 200
            cluster.stop()
            for _ in range(2):  # a lost pooled connection, then a refused new one
                r = httpx.get(feed, params={"after": 0}, headers=headers, timeout=60)
                assert r.status_code == 503 and "unavailable" in r.json()["error"], r.text
