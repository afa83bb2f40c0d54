"""The node's HTTP side: status page, /api/status, /healthz.

The clerks' counter UI grows here (its own issue); for now the page shows the node's sync
state in Japanese so an administrator can see at a glance whether the data is current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from edgenode.settings import Settings
from edgenode.sync.syncer import node_status

MODE_LABELS = {
    "online": "通常運用（データセンターと同期中）",
    "offline": "縮退運転（データセンターと通信できません）",
    "reconciling": "復旧処理中",
    "bootstrapping": "初期データ取得中",
}


def create_app(data: Path, settings: Settings) -> Starlette:
    """Build the node's Starlette application for the data folder `data`."""
    env = Environment(loader=PackageLoader("edgenode.counter_ui", "templates"), autoescape=select_autoescape())

    async def status_json(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(node_status, data, settings))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def index(request: Request) -> HTMLResponse:
        st: dict[str, Any] = await run_in_threadpool(node_status, data, settings)
        page = env.get_template("status.html").render(st=st, mode_label=MODE_LABELS.get(st["mode"], st["mode"]))
        return HTMLResponse(page)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/admin", index),
            Route("/api/status", status_json),
            Route("/healthz", healthz),
        ]
    )
