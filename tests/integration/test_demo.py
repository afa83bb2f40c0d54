"""`edgenode demo` starts everything, keeps the node current, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.integration.conftest import CLI, free_port, wait_http


def test_demo_runs_hub_node_and_simulator_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port, hub_port = free_port(), free_port()
    with open(tmp_path / "demo.log", "wb") as log:
        proc = subprocess.Popen(
            [
                *CLI,
                "demo",
                "--data",
                str(tmp_path / "demo"),
                "--residents",
                "400",
                "--interval",
                "0.5",
                "--port",
                str(port),
                "--hub-port",
                str(hub_port),
            ],
            stdout=log,
            stderr=log,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        deadline = time.monotonic() + 60
        seen: set[int] = set()
        while len(seen) < 3:
            st = httpx.get(f"http://127.0.0.1:{port}/api/status").json()
            if st["cursor"]:
                seen.add(st["cursor"])
            assert time.monotonic() < deadline, f"the node did not follow the simulator: {st}"
            time.sleep(0.3)
        assert st["mode"] == "online"
        printed = (tmp_path / "demo.log").read_text()
        assert f"http://127.0.0.1:{port}/" in printed and "demo login" in printed
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    # every child went away with it
    for p in (port, hub_port):
        try:
            httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=1)
            raise AssertionError(f"port {p} still answers after the demo stopped")
        except httpx.HTTPError:
            pass
