"""Helpers shared by the benchmarks: temp folders, hub/node processes, tables, percentiles.

Not a benchmark itself. Everything runs on 127.0.0.1; temporary data lives under one
`tempfile.mkdtemp()` folder that `workdir()` deletes at the end.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgenode.demo import wait_http
from edgenode.hub.hub import Hub
from edgenode.hub.store import TenantDB
from edgenode.settings import Settings
from edgenode.sync.nodeconfig import init_node

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "edgenode.cli"]
TODAY = _dt.date(2026, 4, 1)
#: Synthetic towns: 延岡市-sized (~130,000) for the trial scale, 京都市 for a million.
TOWN_LG, TOWN_NAME = "452033", "延岡市"
CITY_LG, CITY_NAME = "261009", "京都市"


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A fresh temporary folder, deleted (with everything in it) on exit."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `edgenode ARGS` in the background, output appended to `log`."""
    with open(log, "ab") as f:
        return subprocess.Popen([*CLI, *args], stdout=f, stderr=f, cwd=REPO, env={**os.environ, **(env or {})})


def run_cli(args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 3600) -> tuple[int, str]:
    """Run `edgenode ARGS` to completion; return (exit code, stderr)."""
    p = subprocess.run(
        [*CLI, *args], cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    return p.returncode, p.stderr


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate one process we started, and wait for it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def hub_serve(data: Path, root: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A real `edgenode hub serve` process on a free port; returns (process, base URL)."""
    port = free_port()
    proc = spawn(["hub", "serve", "--data", str(data), "--port", str(port)], root / f"hub-{port}.log", env)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz")
    return proc, url


def build_hub(data: Path, lg: str, name: str, residents: int, seed: int = 1) -> tuple[Hub, TenantDB, float, float]:
    """A hub with one tenant holding a synthetic population as its initial migration.

    Returns (hub, tenant, seconds generating the population, seconds loading it).
    """
    from edgenode.hub.synth import generate_population

    t0 = time.perf_counter()
    records = generate_population(lg, name, residents, seed, TODAY)
    t1 = time.perf_counter()
    hub = Hub(data)
    hub.store.create()
    tenant = hub.store.add_tenant(lg, name)
    hub.load_records(tenant, records, reason="初期移行")
    return hub, tenant, t1 - t0, time.perf_counter() - t1


def offline_node(data: Path, hub: Hub, lg: str, node_id: str, hub_url: str) -> Settings:
    """`node init` without asking the hub: pins the hub key directly, with a real token."""
    token = hub.store.issue_token(lg, node_id)
    return init_node(data, hub_url, token, node_id, lg_code=lg, hub_key=hub.store.key().public_b64)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None if unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def mib(n: float) -> str:
    """Bytes as MiB with two decimals."""
    return f"{n / 1048576:,.2f} MiB"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a small plain-text table (first column left-aligned, the rest right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))
    sys.stdout.flush()
