"""The hub's HTTP API (Starlette): snapshot, feed, digest, heartbeat, and the fleet view.

Tenant-scoped endpoints live under ``/v1/tenants/{lg_code}/`` and need
``Authorization: Bearer TOKEN``: a missing or unknown token gets 401, a token of another
municipality 403. The wire format is described in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from edgenode import __version__, wire
from edgenode.errors import StoreError, StoreUnavailable, WireError
from edgenode.hub import fleet as fleet_view
from edgenode.hub import uploads as upload_mod
from edgenode.hub.listen import NotifyWatcher, Waker
from edgenode.hub.pg import PostgresBackend
from edgenode.hub.snapshot import SnapshotCache
from edgenode.hub.staff_app import create_staff_app, is_staff_path
from edgenode.hub.store import HubStore
from edgenode.metrics import CONTENT_TYPE as METRICS_TYPE
from edgenode.metrics import HubCollector, RequestLatency
from edgenode.metrics import render as render_metrics
from edgenode.settings import Settings

BATCH_TYPE = "application/vnd.edgenode.batch"
MAX_HEARTBEAT = 64 * 1024
MAX_UPLOAD = 8 << 20


class HeadWatcher:
    """Wakes long-polls when a tenant's head moves, whichever process committed it.

    One polling task per tenant with waiters (every 100 ms), instead of one poll per request.
    The SQLite hub's waker; a PostgreSQL hub is woken by its commits (`edgenode.hub.listen`).
    """

    recheck = 1.0

    def __init__(self, store: HubStore, interval: float = 0.1) -> None:
        self.store = store
        self.interval = interval
        self._conds: dict[str, asyncio.Condition] = {}
        self._heads: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._waiters: dict[str, int] = {}

    async def _poll(self, lg_code: str) -> None:
        tenant = self.store.tenant(lg_code)
        idle_since: float | None = None
        while True:
            head = await run_in_threadpool(tenant.head)
            cond = self._conds[lg_code]
            if head != self._heads.get(lg_code):
                self._heads[lg_code] = head
                async with cond:
                    cond.notify_all()
            if self._waiters.get(lg_code, 0) == 0:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 5:
                    self._tasks.pop(lg_code, None)
                    return
            else:
                idle_since = None
            await asyncio.sleep(self.interval)

    async def wait_beyond(self, lg_code: str, seq: int, timeout: float) -> None:
        """Return once the tenant's head exceeds `seq`, or after `timeout` seconds."""
        cond = self._conds.setdefault(lg_code, asyncio.Condition())
        if lg_code not in self._tasks:
            self._tasks[lg_code] = asyncio.create_task(self._poll(lg_code))
        self._waiters[lg_code] = self._waiters.get(lg_code, 0) + 1
        try:
            async with cond:
                await asyncio.wait_for(cond.wait_for(lambda: self._heads.get(lg_code, -1) > seq), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters[lg_code] -= 1


def _int_param(request: Request, name: str, default: int | None = None, lo: int = 0, hi: int = 2**62) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        if default is None:
            raise HTTPException(400, f"query parameter {name} is required")
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise HTTPException(400, f"query parameter {name} must be an integer") from exc
    if not lo <= value <= hi:
        raise HTTPException(400, f"query parameter {name} must be between {lo} and {hi}")
    return value


async def json_body(request: Request, limit: int, what: str) -> dict[str, Any]:
    """A request body that must be one JSON object of at most `limit` bytes (zstd allowed)."""
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(413, f"{what} too large")
    if request.headers.get("content-encoding") == "zstd":
        try:
            raw_size = int(request.headers.get("x-edgenode-raw-size", "-1"))
            body = wire.decompress_bounded(body, raw_size, limit * 8)
        except (ValueError, WireError) as exc:
            raise HTTPException(400, f"{what} does not decompress: {exc}") from exc
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(400, f"{what} is not JSON") from exc
    if not isinstance(doc, dict):
        raise HTTPException(400, f"{what} must be a JSON object")
    return doc


def create_app(store: HubStore, settings: Settings) -> HubApp:
    """Build the hub's Starlette application over `store`."""
    key = store.key()
    snapshots = SnapshotCache(
        store,
        key,
        settings["snapshot_chunk_size"],
        settings["snapshot_max_age"],
        settings["snapshot_keep"],
        settings["snapshot_hold"],
    )
    watcher: Waker = HeadWatcher(store)
    if isinstance(store.backend, PostgresBackend):
        watcher = NotifyWatcher(store.backend.url)

    async def authorize(request: Request, lg_code: str | None = None) -> tuple[str, str]:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or len(auth) > 512:
            raise HTTPException(401, "missing bearer token")
        who = await run_in_threadpool(store.authenticate, auth[7:].strip())
        if who is None:
            raise HTTPException(401, "unknown or revoked token")
        if lg_code is not None and who[0] != lg_code:
            raise HTTPException(403, "this token belongs to another municipality")
        return who

    async def hub_info(request: Request) -> JSONResponse:
        return JSONResponse(
            {"public_key": key.public_b64, "key_id": key.key_id, "schema": wire.SCHEMA_VERSION, "version": __version__}
        )

    async def whoami(request: Request) -> JSONResponse:
        lg_code, node_id = await authorize(request)
        name = (await run_in_threadpool(store.tenants)).get(lg_code, "")
        return JSONResponse(
            {"lg_code": lg_code, "node_id": node_id, "name": name, "public_key": key.public_b64, "key_id": key.key_id}
        )

    async def snapshot(request: Request) -> JSONResponse:
        lg_code = request.path_params["lg_code"]
        await authorize(request, lg_code)
        manifest = await run_in_threadpool(snapshots.current, lg_code)
        return JSONResponse(manifest)

    async def chunk(request: Request) -> Response:
        lg_code = request.path_params["lg_code"]
        await authorize(request, lg_code)
        try:
            data = await run_in_threadpool(
                snapshots.chunk, lg_code, request.path_params["snap_id"], request.path_params["index"]
            )
        except StoreError as exc:
            raise HTTPException(404, str(exc)) from exc
        return Response(data, media_type="application/octet-stream")

    async def feed(request: Request) -> Response:
        lg_code = request.path_params["lg_code"]
        await authorize(request, lg_code)
        after = _int_param(request, "after")
        max_bytes = _int_param(request, "max_bytes", settings["feed_max_bytes"], 1024, settings["feed_max_bytes"])
        wait = min(float(_int_param(request, "wait", 0, 0, 3600)), settings["feed_max_wait"])
        tenant = store.tenant(lg_code)
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or await run_in_threadpool(tenant.head) > after:
                break
            if await request.is_disconnected():
                return Response(status_code=499)
            await watcher.wait_beyond(lg_code, after, min(remaining, watcher.recheck))
        sl = await run_in_threadpool(tenant.read_feed, after, max_bytes, key)
        if sl.frame is None:
            return JSONResponse(
                {
                    "error": sl.gone_reason,
                    "retained_from": sl.retained_from,
                    "head": sl.head,
                    "detail": "re-bootstrap from /snapshot",
                },
                status_code=410,
            )
        return Response(sl.frame, media_type=BATCH_TYPE)

    async def digest(request: Request) -> JSONResponse:
        lg_code = request.path_params["lg_code"]
        await authorize(request, lg_code)
        buckets = _int_param(request, "buckets", 256, 1, 65536)
        result = await run_in_threadpool(store.tenant(lg_code).digest, buckets)
        return JSONResponse(result)

    async def digest_bucket(request: Request) -> Response:
        lg_code = request.path_params["lg_code"]
        await authorize(request, lg_code)
        buckets = _int_param(request, "buckets", 256, 1, 65536)
        bucket = request.path_params["bucket"]
        if not 0 <= bucket < buckets:
            raise HTTPException(400, "bucket out of range")
        head, chain, rows = await run_in_threadpool(store.tenant(lg_code).bucket, bucket, buckets)
        body = b"".join(r + b"\n" for r in rows)
        return Response(
            wire.compress(body),
            media_type="application/zstd",
            headers={"x-edgenode-seq": str(head), "x-edgenode-chain": chain, "x-edgenode-raw-size": str(len(body))},
        )

    async def heartbeat(request: Request) -> JSONResponse:
        lg_code = request.path_params["lg_code"]
        _, node_id = await authorize(request, lg_code)
        status = await json_body(request, MAX_HEARTBEAT, "heartbeat")
        await run_in_threadpool(store.record_heartbeat, lg_code, node_id, status)
        head = await run_in_threadpool(store.tenant(lg_code).head)
        return JSONResponse({"ok": True, "head_seq": head})

    async def uploads(request: Request) -> JSONResponse:
        lg_code = request.path_params["lg_code"]
        _, node_id = await authorize(request, lg_code)
        doc = await json_body(request, MAX_UPLOAD, "upload")
        if not isinstance(doc.get("items"), list):
            raise HTTPException(400, "upload must be an object with an items list")
        if doc.get("node_id") != node_id:
            raise HTTPException(403, "this token belongs to another node")
        if len(doc["items"]) > upload_mod.MAX_ITEMS:
            raise HTTPException(413, f"at most {upload_mod.MAX_ITEMS} items at once")
        results = await run_in_threadpool(upload_mod.receive, store.tenant(lg_code), node_id, doc["items"])
        return JSONResponse({"results": results})

    def fleet(lg_code: str | None) -> dict[str, Any]:
        return fleet_view.fleet(store, settings, lg_code)

    async def uploads_ledger(request: Request) -> JSONResponse:
        # a restored node asks which of its items the hub holds; a token sees its own node only
        lg_code = request.path_params["lg_code"]
        _, node_id = await authorize(request, lg_code)
        if request.query_params.get("node_id", node_id) != node_id:
            raise HTTPException(403, "this token belongs to another node")
        after = _int_param(request, "after", 0)
        limit = _int_param(request, "limit", 1000, 1, 1000)
        return JSONResponse(await run_in_threadpool(upload_mod.ledger, store.tenant(lg_code), node_id, after, limit))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    def heads() -> dict[str, int]:
        return {lg: store.tenant(lg).head() for lg in store.tenants()}

    collector = HubCollector(heads, store.nodes)
    latency = RequestLatency("edgenode_hub")

    async def metrics(request: Request) -> Response:
        return Response(await run_in_threadpool(render_metrics, collector, latency), media_type=METRICS_TYPE)

    async def on_store_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503 if isinstance(exc, StoreUnavailable) else 404)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        headers = {"www-authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=headers)

    routes = [
        Route("/v1/hub", hub_info),
        Route("/v1/whoami", whoami),
        Route("/v1/tenants/{lg_code}/snapshot", snapshot),
        Route("/v1/tenants/{lg_code}/snapshot/{snap_id}/chunks/{index:int}", chunk),
        Route("/v1/tenants/{lg_code}/feed", feed),
        Route("/v1/tenants/{lg_code}/digest", digest),
        Route("/v1/tenants/{lg_code}/digest/{bucket:int}", digest_bucket),
        Route("/v1/tenants/{lg_code}/heartbeat", heartbeat, methods=["POST"]),
        Route("/v1/tenants/{lg_code}/uploads", uploads, methods=["POST"]),
        Route("/v1/tenants/{lg_code}/uploads/ledger", uploads_ledger),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
    ]
    exception_handlers: dict[Any, Any] = {StoreError: on_store_error, HTTPException: on_http_error}
    api = Starlette(routes=routes, exception_handlers=exception_handlers, middleware=[latency.middleware(routes)])
    return HubApp(api, create_staff_app(store, store.data, settings, fleet))


class HubApp:
    """The node API and the staff pages (login, CSRF) side by side, each with its own middleware."""

    def __init__(self, api: Starlette, staff: Starlette) -> None:
        self.api = api
        self.staff = staff

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_staff_path(str(scope["path"])):
            await self.staff(scope, receive, send)
        else:
            await self.api(scope, receive, send)
