"""The hub's pages for datacenter staff: reconciliation (findings, 届出 conflicts, 本人通知,
day totals, CSV for the registry system) and the fleet view, behind a staff login.

The same login machinery as the counter (`edgenode.counter_ui.auth`: argon2, lockout,
server-side sessions, CSRF on every form, fail-closed route policies), with the hub's own
accounts (`edgenode.hub.staff`). Every page and action checks the viewer's scope: a
municipality's staff never see another municipality's data, not even that it exists.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from edgenode.counter_ui.auth import Auth, AuthConfig, User, public, requires
from edgenode.hub import fleet as fleet_view
from edgenode.hub import uploads
from edgenode.hub.staff import STAFF_PAGE_ROLES, StaffAccounts, scope_of
from edgenode.hub.store import HubStore
from edgenode.settings import Settings
from edgenode.wareki import time_label

log = logging.getLogger("edgenode.hub.staff")

LOGIN_PATH = "/staff/login"
LOGOUT_PATH = "/staff/logout"
HOME = "/staff"
LOGIN_HINT = (
    "団体の監督者・管理者は「ユーザー名@団体コード」（例：suzuki@454214）でログインします。"
    " Municipal supervisors sign in as NAME@LGCODE; datacenter operators with their operator name."
)
#: rows shown per list on a page (the CSV has them all)
PAGE_ROWS = 500
DECISIONS = {"accept": True, "reject": False}

FleetRows = Callable[[str | None], dict[str, Any]]


def _user(request: Request) -> User:
    user = Auth.current_user(request)
    assert user is not None  # every route below requires a login
    return user


def _csv(rows: Any, filename: str) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
    # UTF-8 with BOM: the registry system's import and a spreadsheet both read it as UTF-8
    body = "\ufeff" + buf.getvalue()
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"},
    )


def tenant_summary(store: HubStore, lg_code: str) -> dict[str, Any]:
    """What needs a person's attention in one municipality (for the staff home page)."""
    tenant = store.tenant(lg_code)
    recs = uploads.issuances(tenant)
    ins = uploads.intakes(tenant)
    return {
        "lg_code": lg_code,
        "issuances": len(recs),
        "findings": sum(1 for r in recs if r["findings"]),
        "notices_due": sum(1 for r in recs if r["notify"] and not r["notified_at"]),
        "conflicts": sum(1 for i in ins if i["status"] == "conflict"),
        "intakes_open": sum(1 for i in ins if i["status"] in ("received", "conflict")),
    }


def create_staff_app(store: HubStore, data: Path, settings: Settings, fleet: FleetRows) -> Starlette:
    """The staff pages; `fleet(lg_code or None)` gives the fleet view's data for a scope."""
    env = Environment(
        loader=ChoiceLoader(
            [PackageLoader("edgenode.hub", "templates"), PackageLoader("edgenode.counter_ui", "templates")]
        ),
        autoescape=select_autoescape(),
    )
    env.filters["jst"] = lambda v: time_label(v) or (v or "")
    accounts = StaffAccounts(data, store)

    def on_event(kind: str, user: str | None, detail: dict[str, Any]) -> None:
        log.info("staff %s", kind, extra={"event": kind, "staff_user": user, **detail})

    auth = Auth(
        data,
        AuthConfig(
            cookie_secure=bool(settings["staff_cookie_secure"]),
            login_path=LOGIN_PATH,
            logout_path=LOGOUT_PATH,
            home=HOME,
        ),
        on_event=on_event,
        templates=env,
        page_context=lambda request: {"logout_path": LOGOUT_PATH, "login_hint": LOGIN_HINT},
        store=accounts.auth_store,
        accounts=accounts,
    )

    def visible(user: User) -> list[tuple[str, str]]:
        scope = scope_of(user)
        return [(lg, name) for lg, name in sorted(store.tenants().items()) if scope.allows(lg)]

    async def visible_tenant(request: Request) -> tuple[str, str]:
        """(団体コード, name) of the path's municipality; 404 if it is unknown or not the viewer's."""
        lg = request.path_params["lg_code"]
        names = dict(await run_in_threadpool(visible, _user(request)))
        if lg not in names:
            raise HTTPException(404, "その団体は見つからないか、見る権限がありません。")
        return lg, names[lg]

    async def not_found(request: Request, exc: Exception) -> HTMLResponse:
        message = exc.detail if isinstance(exc, HTTPException) else ""
        return await auth.page(request, "staff_error.html", 404, message=message or "ページが見つかりません。")

    @requires(*STAFF_PAGE_ROLES)
    async def home(request: Request) -> HTMLResponse:
        def rows() -> list[dict[str, Any]]:
            return [{**tenant_summary(store, lg), "name": name} for lg, name in visible(_user(request))]

        return await auth.page(request, "staff_home.html", tenants=await run_in_threadpool(rows))

    @requires(*STAFF_PAGE_ROLES)
    async def tenant_page(request: Request) -> HTMLResponse:
        lg, name = await visible_tenant(request)
        tenant = store.tenant(lg)

        def load() -> dict[str, Any]:
            recs = uploads.issuances(tenant)
            ins = uploads.intakes(tenant)
            return {
                "conflicts": [i for i in ins if i["status"] == "conflict"],
                "received": [i for i in ins if i["status"] == "received"][-PAGE_ROWS:],
                "findings": [r for r in recs if r["findings"]][-PAGE_ROWS:],
                "notices": [r for r in recs if r["notify"] and not r["notified_at"]][:PAGE_ROWS],
                "totals": uploads.totals(recs)[-60:],
            }

        ctx = await run_in_threadpool(load)
        return await auth.page(
            request,
            "staff_tenant.html",
            lg_code=lg,
            name=name,
            done=request.query_params.get("done", "")[:40],
            **ctx,
        )

    @requires(*STAFF_PAGE_ROLES)
    async def decide(request: Request) -> Response:
        lg, _ = await visible_tenant(request)
        async with request.form() as form:
            decision, note = str(form.get("decision") or ""), str(form.get("note") or "").strip()
        user = _user(request)
        if decision not in DECISIONS or not note or len(note) > 500:
            return await auth.page(
                request, "staff_error.html", 422, message="受理か却下かを選び、理由（500字以内）を入力してください。"
            )
        try:
            await run_in_threadpool(
                uploads.resolve,
                store.tenant(lg),
                request.path_params["intake_id"],
                DECISIONS[decision],
                note,
                user.name,
            )
        except uploads.Rejected as exc:
            return await auth.page(request, "staff_error.html", 409, message=f"処理できません：{exc}")
        log.info("intake decided", extra={"lg_code": lg, "decision": decision, "staff_user": user.name})
        return RedirectResponse(f"{HOME}/{lg}?done=decided", status_code=303)

    @requires(*STAFF_PAGE_ROLES)
    async def notified(request: Request) -> Response:
        lg, _ = await visible_tenant(request)
        async with request.form() as form:
            note = str(form.get("note") or "").strip()[:500]
        try:
            await run_in_threadpool(
                uploads.mark_notified, store.tenant(lg), request.path_params["issuance_id"], _user(request).name, note
            )
        except uploads.Rejected as exc:
            return await auth.page(request, "staff_error.html", 409, message=f"処理できません：{exc}")
        return RedirectResponse(f"{HOME}/{lg}?done=notified", status_code=303)

    @requires(*STAFF_PAGE_ROLES)
    async def issuances_csv(request: Request) -> Response:
        lg, _ = await visible_tenant(request)
        rows = await run_in_threadpool(uploads.issuances, store.tenant(lg))
        return _csv(uploads.csv_rows(rows), f"issuances-{lg}.csv")

    @requires(*STAFF_PAGE_ROLES)
    async def intakes_csv(request: Request) -> Response:
        lg, _ = await visible_tenant(request)
        rows = await run_in_threadpool(uploads.intakes, store.tenant(lg))
        return _csv(uploads.intake_csv_rows(rows), f"intakes-{lg}.csv")

    @requires(*STAFF_PAGE_ROLES)
    async def fleet_page(request: Request) -> HTMLResponse:
        doc = await run_in_threadpool(fleet, scope_of(_user(request)).lg_code)
        return await auth.page(request, "fleet.html", **fleet_view.template_context(doc))

    @requires(*STAFF_PAGE_ROLES)
    async def fleet_json(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(fleet, scope_of(_user(request)).lg_code))

    static = StaticFiles(packages=[("edgenode.hub", "static")])
    public(static)
    routes: list[BaseRoute] = [
        *auth.routes(),
        Route(HOME, home),
        Route(HOME + "/{lg_code}", tenant_page),
        Route(HOME + "/{lg_code}/intakes/{intake_id}", decide, methods=["POST"]),
        Route(HOME + "/{lg_code}/notices/{issuance_id}", notified, methods=["POST"]),
        Route(HOME + "/{lg_code}/issuances.csv", issuances_csv),
        Route(HOME + "/{lg_code}/intakes.csv", intakes_csv),
        Route("/fleet", fleet_page),
        Route("/fleet.json", fleet_json),
        Mount("/staff-static", app=static, name="static"),
    ]
    Auth.check_routes(routes)
    return Starlette(routes=routes, middleware=[auth.middleware()], exception_handlers={404: not_found})


def is_staff_path(path: str) -> bool:
    """Requests the staff app answers (the rest is the node API)."""
    return path == HOME or path.startswith((HOME + "/", "/staff-static/")) or path in ("/fleet", "/fleet.json")
