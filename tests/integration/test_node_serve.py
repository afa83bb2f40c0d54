"""`node serve` follows the hub by long-poll and reports its live state."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from tests.integration.conftest import CLI, HubProc, free_port, make_node, node_export, run, serving_node, wait_http


def test_node_serve_follows_new_commits_and_reports_them(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    port = free_port()
    with open(tmp_path / "node.log", "wb") as log:
        proc = subprocess.Popen(
            [*CLI, "node", "serve", "--data", str(node), "--port", str(port)], stdout=log, stderr=log
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        deadline = time.monotonic() + 60
        while httpx.get(f"http://127.0.0.1:{port}/api/status").json()["cursor"] is None:
            assert time.monotonic() < deadline, "node serve never bootstrapped"
            time.sleep(0.2)
        hub.simulate(10, seed=11)
        deadline = time.monotonic() + 30
        while True:
            st = httpx.get(f"http://127.0.0.1:{port}/api/status").json()
            if st["cursor"] and st["cursor"] == st["hub_head"] and st["cursor"] >= 10:
                break
            assert time.monotonic() < deadline, f"node serve did not catch up: {st}"
            time.sleep(0.1)
        assert st["mode"] == "online"
        cli_status = json.loads(run("node", "status", "--data", str(node), "--json").stdout)
        assert cli_status["mode"] == "online" and cli_status["cursor"] == st["cursor"]
        assert cli_status["serving_pid"] == proc.pid
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 303  # the counter needs a login
        page = httpx.get(f"http://127.0.0.1:{port}/login").text
        assert "通常運用" in page and "データ基準日時" in page
        assert node_export(node) == hub.export()
        fleet = hub.fleet()
        assert any(n["node_id"] == "node1" for n in fleet["nodes"]), "no heartbeat reached the hub"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_node_serve_reports_offline_when_the_hub_goes_away(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    run("node", "sync", "--data", str(node), "--once")
    env_cfg = node / "node.toml"
    env_cfg.write_text(env_cfg.read_text() + "feed_wait = 1.0\nrequest_timeout = 2.0\nbackoff_max = 1.0\n")
    with serving_node(node, tmp_path) as url:
        hub.stop()
        deadline = time.monotonic() + 40
        while httpx.get(f"{url}/api/status").json()["mode"] != "offline":
            assert time.monotonic() < deadline, "node never noticed the hub was gone"
            time.sleep(0.3)
        st = httpx.get(f"{url}/api/status").json()
        assert st["last_error"] and st["cursor"] is not None
        # the data it has stays available for the counter
        assert run("node", "export", "--data", str(node)).stdout
