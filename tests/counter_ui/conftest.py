"""A node folder with a replica holding staff accounts, a demo app on `Auth`, and a fake clock."""

from __future__ import annotations

import re
import sqlite3
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from edgenode import registry
from edgenode.counter_ui.auth import Auth, AuthConfig, public, requires
from edgenode.wire import canonical_json

# Starlette 1.x prefers the httpx2 package for its TestClient and warns when it falls back to the
# pinned httpx; the warning says nothing about the code under test.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient as TestClient

PASSWORD = "kadogawa-2026"
#: user -> role of the hub-synced accounts in the test replica
STAFF = {"tanaka": "clerk", "suzuki": "supervisor", "sato": "admin"}
START = 1_800_000_000.0

# cheap parameters keep the suite fast; verification is the real argon2 code path
_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    """A settable clock injected into `Auth`."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Events:
    """Everything the audit hook received."""

    got: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, kind: str, user: str | None, detail: dict[str, Any]) -> None:
        self.got.append((kind, user, dict(detail)))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.got]


def staff_record(user: str, role: str, password: str = PASSWORD) -> dict[str, Any]:
    return {"user": user, "role": role, "password_hash": _HASHER.hash(password), "lg_code": "454214"}


def make_replica(data: Path, staff: dict[str, str]) -> Path:
    """A live replica (as a bootstrap leaves it: replica/CURRENT naming the file) with staff rows."""
    folder = data / "replica"
    folder.mkdir(parents=True)
    path = folder / "replica-1-0000test.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        registry.create_schema(conn)
        for user, role in staff.items():
            conn.execute(
                "INSERT INTO staff (user, record) VALUES (?, ?)", (user, canonical_json(staff_record(user, role)))
            )
    finally:
        conn.close()
    (folder / "CURRENT").write_text(path.name + "\n", encoding="ascii")
    return path


# ---------------------------------------------------------------- the demo app: one route per policy


ANY_STAFF = ("clerk", "supervisor", "admin")


@public
async def open_page(request: Request) -> Response:
    return PlainTextResponse("open")


@requires(*ANY_STAFF)
async def search(request: Request) -> Response:
    ctx = Auth.render_context(request)
    user = ctx["user"]
    return JSONResponse({"user": user.name, "role": user.role, "label": user.role_label, "csrf": ctx["csrf"]})


@requires(*ANY_STAFF)
async def issue(request: Request) -> Response:
    async with request.form() as form:
        return PlainTextResponse(f"issued {form.get('atena_no')}")


@requires("supervisor", "admin")
async def approve(request: Request) -> Response:
    return PlainTextResponse("approved")


@requires("admin")
async def admin_page(request: Request) -> Response:
    return PlainTextResponse("admin")


async def undeclared(request: Request) -> Response:  # no policy on purpose
    return PlainTextResponse("should never be served")


def demo_routes() -> list[BaseRoute]:
    """The demo app's own routes (the auth routes are added by `make_app`)."""
    return [
        Route("/open", open_page),
        Route("/search", search),
        Route("/issue", issue, methods=["POST"]),
        Route("/approve", approve, methods=["POST"]),
        Route("/admin", admin_page),
        Route("/undeclared", undeclared),
        Mount("/static", app=public(StaticFiles(packages=[("edgenode.counter_ui", "static")])), name="static"),
    ]


@dataclass
class Node:
    data: Path
    clock: Clock
    events: Events

    def auth(self, **config: Any) -> Auth:
        cfg = AuthConfig(**{"cookie_secure": False, **config})
        return Auth(self.data, cfg, on_event=self.events, page_context=_page_context, clock=self.clock)

    def app(self, **config: Any) -> tuple[Starlette, Auth]:
        auth = self.auth(**config)
        return Starlette(routes=[*auth.routes(), *demo_routes()], middleware=[auth.middleware()]), auth

    def client(self, base_url: str = "http://testserver", **config: Any) -> TestClient:
        app, _ = self.app(**config)
        return TestClient(app, base_url=base_url, follow_redirects=False)


def _page_context(request: Request) -> dict[str, Any]:
    return {"banner": {"mode": "offline", "label": "縮退運転中", "as_of": "2026-11-01 09:00"}, "municipality": "門川町"}


@pytest.fixture
def node(tmp_path: Path) -> Node:
    data = tmp_path / "node"
    data.mkdir()
    make_replica(data, STAFF)
    return Node(data, Clock(), Events())


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with node.client() as c:
        yield c


# ---------------------------------------------------------------- helpers used by the tests


def form_csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]*)"', html)
    assert m, "no csrf field on the page"
    return m.group(1)


def login(client: TestClient, user: str, password: str = PASSWORD, next_: str | None = None) -> httpx.Response:
    page = client.get("/login")
    # a browser that is still logged in is sent on by GET /login; its session token posts the form
    token = form_csrf(page.text) if page.status_code == 200 else session_csrf(client)
    data = {"csrf": token, "user": user, "password": password}
    if next_ is not None:
        data["next"] = next_
    r: httpx.Response = client.post("/login", data=data)
    return r


def session_csrf(client: TestClient) -> str:
    r = client.get("/search")
    assert r.status_code == 200, r.text
    return str(r.json()["csrf"])
