"""Real hub and node processes on loopback, driven through the `edgenode` command."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgenode.demo import wait_http

LG = "454214"
CLI = [sys.executable, "-m", "edgenode.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(
    *args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one `edgenode` command to completion (`stdin`: what it reads, e.g. a password)."""
    p = subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        input=stdin,
    )
    if check and p.returncode != 0:
        raise AssertionError(f"edgenode {' '.join(args)} exited {p.returncode}:\n{p.stderr}")
    return p


@dataclass
class HubProc:
    data: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    operator_made: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.data.parent / f"hub-{self.port}.log", "ab") as log:
            self.proc = subprocess.Popen(
                [*CLI, "hub", "serve", "--data", str(self.data), "--port", str(self.port)],
                stdout=log,
                stderr=log,
                env={**os.environ, **self.env},
            )
        wait_http(f"{self.url}/healthz")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def export(self, lg: str = LG) -> str:
        return run("hub", "export", "--data", str(self.data), "--lg-code", lg).stdout

    def simulate(self, changes: int, seed: int, lg: str = LG) -> None:
        run(
            "hub", "simulate", "--data", str(self.data), "--lg-code", lg, "--changes", str(changes), "--seed", str(seed)
        )

    def token(self, node: str, lg: str = LG) -> str:
        return run("hub", "token", "--data", str(self.data), "--lg-code", lg, "--node", node).stdout.strip()

    def add_user(self, name: str, role: str, password: str, lg: str = LG) -> None:
        """`edgenode user add` on this hub: an account of the town that syncs to its nodes."""
        run(
            "user",
            "add",
            "--data",
            str(self.data),
            "--name",
            name,
            "--role",
            role,
            "--lg-code",
            lg,
            stdin=password + "\n",
        )

    def staff_client(self) -> httpx.Client:
        """An HTTP client logged in to the staff pages as a datacenter operator (made on first use)."""
        from edgenode.hub.staff import add_operator

        if not self.operator_made:  # argon2 hashing is slow by design: once per hub folder
            add_operator(self.data, "dc-ops", "admin", "operator-pass-2026")
            self.operator_made = True
        client = httpx.Client(base_url=self.url)
        page = client.get("/staff/login").text
        csrf = re.search(r'name="csrf" value="([^"]*)"', page)
        assert csrf, "no login form on the staff pages"
        r = client.post(
            "/staff/login", data={"csrf": csrf.group(1), "user": "dc-ops", "password": "operator-pass-2026"}
        )
        assert r.status_code == 303, f"operator login failed: {r.status_code}"
        return client

    def fleet(self) -> dict[str, Any]:
        """/fleet.json as an operator sees it."""
        client = self.staff_client()
        try:
            data: dict[str, Any] = client.get("/fleet.json").json()
        finally:
            client.close()
        return data


def make_hub(tmp_path: Path, residents: int, chunk_size: int = 16384, db: str = "") -> HubProc:
    """`hub init` a synthetic town (in SQLite under the folder, or in the PostgreSQL `db` names)."""
    data = tmp_path / "hub"
    run(
        "hub",
        "init",
        "--data",
        str(data),
        "--lg-code",
        LG,
        "--name",
        "門川町",
        "--residents",
        str(residents),
        "--seed",
        "7",
        *(["--db", db] if db else []),
    )
    hub = HubProc(
        data, free_port(), env={"EDGENODE_SNAPSHOT_CHUNK_SIZE": str(chunk_size), "EDGENODE_SNAPSHOT_MAX_AGE": "0"}
    )
    return hub


@contextmanager
def running_hub(tmp_path: Path, residents: int, chunk_size: int = 16384, db: str = "") -> Iterator[HubProc]:
    """A hub process with a synthetic town, stopped on exit."""
    h = make_hub(tmp_path, residents, chunk_size, db)
    h.start()
    try:
        yield h
    finally:
        h.stop()


def sql_value(db: Path, query: str, *params: object) -> object:
    """One value from a SQLite file (read by the test, not through edgenode)."""
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(query, params).fetchone()
    finally:
        conn.close()
    return None if row is None else row[0]


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[HubProc]:
    with running_hub(tmp_path, residents=1500) as h:
        yield h


def make_node(tmp_path: Path, hub_url: str, token: str, name: str = "node1") -> Path:
    data = tmp_path / name
    run("node", "init", "--data", str(data), "--hub", hub_url, "--token", token, "--node", name)
    return data


@contextmanager
def serving_node(data: Path, log_dir: Path) -> Iterator[str]:
    """`edgenode node serve` on a free port, stopped on exit; yields its base URL."""
    port = free_port()
    with open(log_dir / f"node-{port}.log", "wb") as log:
        proc = subprocess.Popen(
            [*CLI, "node", "serve", "--data", str(data), "--port", str(port)], stdout=log, stderr=log
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def form_csrf(html: str) -> str:
    """The CSRF field of the first form on a page."""
    m = re.search(r'name="csrf" value="([^"]*)"', html)
    assert m, "no csrf field on the page"
    return m.group(1)


def counter_login(c: httpx.Client, user: str, password: str) -> httpx.Response:
    """Log in at a running node's counter (the client keeps the session cookie)."""
    page = c.get("/login")
    return c.post("/login", data={"csrf": form_csrf(page.text), "user": user, "password": password})


def counter_issue(c: httpx.Client, atena_no: str, id_document: str = "マイナンバーカード") -> httpx.Response:
    """Issue a 住民票の写し of the whole household (本人, one copy) through the counter's form."""
    form = {
        "csrf": form_csrf(c.get(f"/request/{atena_no}").text),
        "kind": "住民票の写し",
        "scope": "世帯全員",
        "layout": "世帯連記式",
        "requester": "本人",
        "copies": "1",
        "id_document": id_document,
        "omit": ["個人番号", "住民票コード"],
    }
    return c.post(f"/request/{atena_no}/issue", data=form)


def node_export(data: Path) -> str:
    return run("node", "export", "--data", str(data)).stdout
