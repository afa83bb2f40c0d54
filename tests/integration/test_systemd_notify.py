"""`node serve` and `hub serve` speak sd_notify to a real socket, as they would under systemd.

The node has no hub to talk to (its hub URL points at a closed port): it must still say
READY=1 once the counter UI listens, and the sync loop (failing, backing off) still pings the
watchdog.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.integration.conftest import CLI, LG, free_port, run


def _messages(sock: socket.socket, until: str, timeout: float = 60) -> list[list[str]]:
    """Datagrams received until one holds the line `until`."""
    got: list[list[str]] = []
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode("utf-8").split("\n")
        except TimeoutError as exc:
            raise AssertionError(f"no {until} within {timeout}s; got {got}") from exc
        got.append(msg)
        if until in msg:
            return got


def _serve(args: list[str], sock_path: str, log: Path, watchdog_usec: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NOTIFY_SOCKET": sock_path,
        "WATCHDOG_USEC": str(watchdog_usec),
        # systemd names the pid it watches; the test cannot know it before the start, so leave it out
        "EDGENODE_BACKOFF_INITIAL": "0.2",
        "EDGENODE_BACKOFF_MAX": "0.5",
    }
    env.pop("WATCHDOG_PID", None)
    with open(log, "wb") as f:
        return subprocess.Popen([*CLI, *args], stdout=f, stderr=f, env=env)


def test_node_is_ready_with_no_hub_and_its_sync_loop_feeds_the_watchdog(tmp_path: Path) -> None:
    hub_key = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
    data = tmp_path / "node"
    dead_hub = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run(
        "node", "init", "--data", str(data), "--hub", dead_hub, "--token", "en1." + "x" * 43,
        "--node", "honcho-1", "--lg-code", LG, "--hub-key", hub_key,
    )  # fmt: skip
    port = free_port()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        proc = _serve(
            ["node", "serve", "--data", str(data), "--port", str(port)],
            str(tmp_path / "notify.sock"),
            tmp_path / "node.log",
            watchdog_usec=2_000_000,
        )
        try:
            before = _messages(sock, "READY=1")
            # READY=1 means the counter UI answers now, hub or no hub
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            assert any(f"STATUS=counter UI on 127.0.0.1:{port}" in m for m in before)
            # the sync loop keeps failing against the dead hub, and keeps pinging while it does
            pings = 0
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                pings += _messages(sock, "WATCHDOG=1", timeout=2)[-1] == ["WATCHDOG=1"]
            assert pings >= 3
            proc.send_signal(signal.SIGTERM)
            assert any(m[0] == "STOPPING=1" for m in _messages(sock, "STOPPING=1", timeout=15))
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = (tmp_path / "node.log").read_text()
    assert "en1." + "x" * 43 not in log


def test_hub_is_ready_once_its_api_listens_and_its_event_loop_feeds_the_watchdog(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    run("hub", "init", "--data", str(data), "--lg-code", LG, "--name", "門川町")
    port = free_port()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        proc = _serve(
            ["hub", "serve", "--data", str(data), "--port", str(port)],
            str(tmp_path / "notify.sock"),
            tmp_path / "hub.log",
            watchdog_usec=2_000_000,
        )
        try:
            _messages(sock, "READY=1")
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            _messages(sock, "WATCHDOG=1", timeout=2)
            _messages(sock, "WATCHDOG=1", timeout=2)
            proc.send_signal(signal.SIGTERM)
            _messages(sock, "STOPPING=1", timeout=15)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
