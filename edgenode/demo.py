"""`edgenode demo`: a hub, a node and the activity simulator on one machine.

Seeds a synthetic 門川町 (454214, the 2010 trial's town), starts `hub serve` and `node serve`
as real child processes on loopback, and applies a few simulated 異動 every few seconds.
Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import httpx

from edgenode.hub.hub import Hub
from edgenode.sync.nodeconfig import init_node, write_certs_template

LG_CODE = "454214"
NAME = "門川町"
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-madoguchi"  # demo only: printed on the terminal for the person trying it
DEMO_SUPERVISOR = "demo-kanri"
DEMO_SUPERVISOR_PASSWORD = "demo-kanri-pass"
DEMO_MAYOR = "門川　一郎"  # a made-up name for the demo's certificates


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait until `url` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f}s")


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo until interrupted; return the exit code."""
    root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="edgenode-demo-"))
    hub_dir, node_dir = root / "hub", root / "node"
    hub = Hub(hub_dir)
    if not (hub_dir / "hub.db").exists() or LG_CODE not in hub.store.tenants():
        print(f"creating {NAME} ({LG_CODE}) with {args.residents} synthetic residents …", file=sys.stderr)
        hub.init_tenant(LG_CODE, NAME, args.residents, seed=1)
        hub.add_user(LG_CODE, DEMO_USER, "clerk", DEMO_PASSWORD)
        hub.add_user(LG_CODE, DEMO_SUPERVISOR, "supervisor", DEMO_SUPERVISOR_PASSWORD)
    hub_url = f"http://127.0.0.1:{args.hub_port}"
    node_url = f"http://127.0.0.1:{args.port}"
    cli = [sys.executable, "-m", "edgenode.cli"]
    procs: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        procs.append(subprocess.Popen([*cli, "hub", "serve", "--data", str(hub_dir), "--port", str(args.hub_port)]))
        wait_http(f"{hub_url}/healthz")
        if not (node_dir / "node.toml").exists():
            token = hub.store.issue_token(LG_CODE, "kadogawa-honcho-1")
            init_node(node_dir, hub_url, token, "kadogawa-honcho-1")
            write_certs_template(node_dir, LG_CODE, NAME, DEMO_MAYOR, replace=True)
            # the demo's browser talks plain HTTP to 127.0.0.1, so the cookie cannot be HTTPS-only
            with open(node_dir / "node.toml", "a", encoding="utf-8") as f:
                f.write("cookie_secure = false\n")
        procs.append(subprocess.Popen([*cli, "node", "serve", "--data", str(node_dir), "--port", str(args.port)]))
        wait_http(f"{node_url}/healthz")
        print(
            f"\nedgenode demo is running (data in {root})\n"
            f"  node (counter):  {node_url}/\n"
            f"  node status:     {node_url}/api/status\n"
            f"  datacenter pages: {hub_url}/staff and {hub_url}/fleet"
            f" (login {DEMO_SUPERVISOR}@{LG_CODE} / {DEMO_SUPERVISOR_PASSWORD})\n"
            f"  demo login:      {DEMO_USER} / {DEMO_PASSWORD}\n"
            f"  supervisor:      {DEMO_SUPERVISOR} / {DEMO_SUPERVISOR_PASSWORD}\n"
            f"Simulated 異動 every {args.interval:g}s. Ctrl-C stops everything.\n",
            file=sys.stderr,
        )
        rng = random.Random()
        while True:
            time.sleep(args.interval)
            if any(p.poll() is not None for p in procs):
                print("a child process ended unexpectedly; stopping", file=sys.stderr)
                return 1
            hub.simulate(LG_CODE, rng.randint(1, 5), rng.randrange(1 << 30))
    except KeyboardInterrupt:
        print("\nstopping …", file=sys.stderr)
        return 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
