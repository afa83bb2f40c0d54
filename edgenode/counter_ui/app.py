"""The node's HTTP side: the clerks' counter UI, the local admin page, status and health.

Every route declares who may use it (`requires` / `public`); `Auth.check_routes` refuses to
build an app with an undeclared route. Pages are server-rendered Jinja2 with autoescape, so
nothing in resident data is ever interpreted as markup.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from edgenode.audit import AuditLog
from edgenode.certs.config import DEFAULT_OMISSIONS
from edgenode.certs.errors import CertError
from edgenode.certs.model import CertRequest, Kind, Layout, Omission, Requester, Scope
from edgenode.counter_ui.adminview import VerifyRunner, admin_facts
from edgenode.counter_ui.auth import Auth, AuthConfig, public, requires
from edgenode.counter_ui.lagchart import duration
from edgenode.errors import EdgenodeError
from edgenode.issuance import INTAKE_TYPES, JST, MAX_NEWCOMERS, NEWCOMER_FIELDS, Approval, IssuanceService
from edgenode.metrics import CONTENT_TYPE as METRICS_TYPE
from edgenode.metrics import NodeCollector, RequestLatency
from edgenode.metrics import render as render_metrics
from edgenode.outbox import Outbox
from edgenode.settings import Settings
from edgenode.sync.mode import ModeMachine
from edgenode.sync.replica import Replica
from edgenode.sync.state import NodeState
from edgenode.sync.syncer import node_status
from edgenode.wareki import short_time_label, time_label, to_wareki

MODE_LABELS = {
    "online": "通常運用（データセンターと同期中）",
    "offline": "縮退運転中：データセンターと通信できません",
    "reconciling": "復旧処理中：データセンターとの同期を再開しています",
    "bootstrapping": "初期データ取得中：まだ窓口業務には使えません",
}
ID_DOCUMENTS = (
    "マイナンバーカード",
    "運転免許証",
    "旅券",
    "在留カード",
    "特別永住者証明書",
    "身体障害者手帳",
    "健康保険の資格確認書と年金手帳（2点）",
    "その他（備考に記入）",
)
CLERKS = ("clerk", "supervisor", "admin")
SUPERVISORS = ("supervisor", "admin")


def clock_time(iso: str | None) -> str:
    """「10時42分」 in JST from a stored UTC time (the day's lists), or "" if unreadable."""
    label = time_label(iso)
    return label.rsplit(" ", 1)[-1] if label else ""


def as_of_label(iso: str | None) -> str:
    """「令和8年11月27日 10時42分」 in JST from a stored UTC time, or 「不明」."""
    return time_label(iso) or "不明"


def banner_for(status: dict[str, Any]) -> dict[str, str]:
    """The mode banner shown on every page: mode, データ基準日時, lag."""
    mode = status["mode"]
    lag = ""
    if status.get("lag_changes"):
        seconds = status.get("lag_seconds") or 0
        lag = f"未反映の異動 {status['lag_changes']} 件（約{max(1, round(seconds / 60))}分の遅れ）"
    if mode == "offline":
        lag = f"最終同期 {as_of_label(status.get('last_sync_at'))}" + (
            "（監督者による強制縮退）" if status.get("forced_offline") else ""
        )
    return {
        "mode": mode,
        "label": MODE_LABELS.get(mode, mode),
        "as_of": as_of_label(status.get("data_as_of")),
        "lag": lag,
    }


def create_app(
    data: Path,
    settings: Settings,
    mode: ModeMachine | None = None,
    *,
    warm: bool = False,
    wake: Callable[[], None] | None = None,
) -> Starlette:
    """Build the node's Starlette application for the data folder `data`.

    `mode` is the running node's mode machine (so that a supervisor's 強制縮退 takes effect in
    the same process); without it a machine over the same state file is used. `wake` wakes
    the running sync loop (the admin page's 今すぐ同期); without it that button says no loop
    runs in this process.
    """
    env = Environment(loader=PackageLoader("edgenode.counter_ui", "templates"), autoescape=select_autoescape())
    env.globals["wareki"] = to_wareki
    env.filters["jst_time"] = clock_time
    env.filters["jst"] = short_time_label
    env.filters["duration"] = lambda s: "—" if s is None else duration(float(s))
    audit = AuditLog(data / "node.db", settings["node_id"])
    machine = mode or ModeMachine(NodeState(data / "node.db"), audit, offline_after=settings["offline_after"])
    service = IssuanceService(data, settings)
    replica = Replica(data / "replica")

    def status() -> dict[str, Any]:
        return node_status(data, settings)

    def municipality() -> str:
        try:
            return service.config.municipality
        except EdgenodeError:
            return str(settings["lg_code"])

    def page_context(request: Request) -> dict[str, Any]:
        return {"banner": banner_for(status()), "municipality": municipality()}

    def on_auth_event(kind: str, user: str | None, detail: dict[str, Any]) -> None:
        audit.append(kind, user, dict(detail))

    auth = Auth(
        data,
        AuthConfig(cookie_secure=settings["cookie_secure"]),
        on_event=on_auth_event,
        templates=env,
        page_context=page_context,
    )

    async def page(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        base = await run_in_threadpool(page_context, request)
        html = env.get_template(template).render(**base, **auth.render_context(request), **ctx)
        return HTMLResponse(html, status_code=status_code)

    # ------------------------------------------------------------ search and person

    @requires(*CLERKS)
    async def search_page(request: Request) -> HTMLResponse:
        from edgenode.search.query import parse_free_text, search

        q = request.query_params.get("q", "").strip()[:100]
        removed = request.query_params.get("removed") == "1"
        hits: list[Any] = []
        error = ""
        if q:
            try:
                query = parse_free_text(q, include_removed=removed)

                def run() -> list[Any]:
                    with replica.session() as conn:
                        found = list(search(conn, query))
                        hidden = restricted_inquiry(conn, found)
                    # 支援措置・抑止 (照会): the person is listed so the clerk sees the warning,
                    # but nothing of where they live or who they live with is shown
                    return [
                        dataclasses.replace(h, address="（照会制限）", banchi="", katagaki="", birth_date="")
                        if h.atena_no in hidden
                        else h
                        for h in found
                    ]

                hits = await run_in_threadpool(run)
            except EdgenodeError as exc:
                error = str(exc)
        return await page(request, "search.html", q=q, removed=removed, hits=hits, error=error)

    @requires(*CLERKS)
    async def person_page(request: Request) -> HTMLResponse:
        atena = request.path_params["atena"]
        try:
            person, members, restrictions = await run_in_threadpool(service.household_of, atena)
        except EdgenodeError as exc:
            return await page(request, "error.html", 404, message=str(exc))
        blocked = service.blocking_restrictions(members, restrictions)
        if any("照会" in r.get("processes", []) for r in restrictions):
            # 照会 is restricted too: show the warning only, not the address or the household
            return await page(
                request,
                "person.html",
                person={"name": person["name"], "atena_no": atena},
                members=[],
                blocked=blocked,
                inquiry_restricted=True,
            )
        return await page(request, "person.html", person=person, members=order(members), blocked=blocked)

    # ------------------------------------------------------------ request, preview, issue

    def form_request(form: Any, atena: str) -> CertRequest:
        omissions = frozenset(Omission(v) for v in form.getlist("omit") if v in Omission._value2member_map_)
        persons = tuple(p for p in form.getlist("person") if isinstance(p, str))
        try:
            copies = int(str(form.get("copies") or "1"))
        except ValueError:
            copies = 0
        if not 1 <= copies <= 10:
            raise CertError("通数は 1 から 10 までです。")
        id_doc = str(form.get("id_document") or "")
        if id_doc not in ID_DOCUMENTS:
            raise CertError("本人確認書類を選んでください。")
        return CertRequest(
            kind=str(form.get("kind") or ""),
            scope=str(form.get("scope") or ""),
            layout=str(form.get("layout") or ""),
            requester=str(form.get("requester") or ""),
            # the chosen persons matter for 世帯の一部 and 除票; 世帯全員 means everyone who lives there
            persons=persons
            if str(form.get("scope")) == Scope.PART.value or form.get("kind") == Kind.REMOVED_COPY
            else (),
            omissions=omissions,
            copies=copies,
            purpose=str(form.get("purpose") or "")[:200],
            id_document=id_doc,
        )

    def form_defaults(atena: str) -> dict[str, Any]:
        return {
            "kind": Kind.COPY.value,
            "scope": Scope.WHOLE.value,
            "layout": Layout.HOUSEHOLD.value,
            "requester": Requester.SELF.value,
            "omit": [o.value for o in DEFAULT_OMISSIONS],
            "copies": 1,
            "person": [atena],
            "id_document": ID_DOCUMENTS[0],
            "purpose": "",
        }

    def form_values(form: Any) -> dict[str, Any]:
        return {
            k: (form.getlist(k) if k in ("omit", "person") else form.get(k))
            for k in ("kind", "scope", "layout", "requester", "omit", "copies", "person", "id_document", "purpose")
        }

    async def request_form(
        request: Request, atena: str, values: dict[str, Any], error: str = "", status_code: int = 200
    ) -> HTMLResponse:
        try:
            person, members, restrictions = await run_in_threadpool(service.household_of, atena)
        except EdgenodeError as exc:
            return await page(request, "error.html", 404, message=str(exc))
        return await page(
            request,
            "request.html",
            status_code,
            person=person,
            members=order(members),
            values=values,
            error=error,
            kinds=list(Kind),
            scopes=list(Scope),
            layouts=list(Layout),
            requesters=list(Requester),
            omissions=list(Omission),
            id_documents=ID_DOCUMENTS,
            blocked=service.blocking_restrictions(members, restrictions),
        )

    @requires(*CLERKS)
    async def request_page(request: Request) -> HTMLResponse:
        atena = request.path_params["atena"]
        return await request_form(request, atena, form_defaults(atena))

    @requires(*CLERKS)
    async def preview(request: Request) -> Response:
        atena = request.path_params["atena"]
        form = await request.form()
        try:
            req = form_request(form, atena)
            doc, html = await run_in_threadpool(service.preview, atena, req)
            approval_needed = await run_in_threadpool(service.needs_approval, req)
        except EdgenodeError as exc:
            return await request_form(request, atena, form_values(form), str(exc), 422)
        return await page(
            request,
            "preview.html",
            atena=atena,
            doc=doc,
            cert_html=html,
            values=form_values(form),
            approval_needed=approval_needed,
        )

    def verify_supervisor(name: str, password: str) -> bool:
        return auth.verify_credentials(name, password, SUPERVISORS)

    @requires(*CLERKS)
    async def issue(request: Request) -> Response:
        atena = request.path_params["atena"]
        form = await request.form()
        user = Auth.current_user(request)
        assert user is not None
        approval = None
        sup, sup_pw = str(form.get("approver") or ""), str(form.get("approver_password") or "")
        try:
            req = form_request(form, atena)
            if sup:
                if sup == user.name or not await run_in_threadpool(verify_supervisor, sup, sup_pw):
                    audit.append("approval_refused", user.name, {"approver": sup, "atena_no": atena})
                    raise CertError("監督者の承認を確認できません（本人以外の監督者のユーザー名とパスワード）。")
                approval = Approval(sup, "データ遅延時の代理人・第三者請求")
            issued = await run_in_threadpool(service.issue, atena, req, user.name, approval)
        except EdgenodeError as exc:
            return await request_form(request, atena, form_values(form), str(exc), 422)
        return Response(
            issued.pdf,
            media_type="application/pdf",
            headers={
                "content-disposition": f'attachment; filename="juminhyo-{issued.id[:12]}.pdf"',
                "x-edgenode-issuance": issued.id,
            },
        )

    # ------------------------------------------------------------ 届出受付 (intake only)

    async def listed_household(
        request: Request, atena: str
    ) -> tuple[tuple[dict[str, Any], list[dict[str, Any]]] | None, HTMLResponse | None]:
        """((person, members), None) for a form that lists the household, or (None, the refusal page):
        not for a household whose 照会 is restricted."""
        try:
            person, members, restrictions = await run_in_threadpool(service.household_of, atena)
        except EdgenodeError as exc:
            return None, await page(request, "error.html", 404, message=str(exc))
        if any("照会" in r.get("processes", []) for r in restrictions):
            message = "この世帯には照会の制限があります。監督者に相談してください。"
            return None, await page(request, "error.html", 403, message=message)
        return (person, members), None

    async def intake_form(
        request: Request, atena: str, values: dict[str, Any], error: str = "", done: str = "", status_code: int = 200
    ) -> HTMLResponse:
        found, refusal = await listed_household(request, atena)
        if found is None:
            assert refusal is not None
            return refusal
        person, members = found
        return await page(
            request,
            "intake.html",
            status_code,
            person=person,
            members=order(members),
            types=INTAKE_TYPES,
            values=values,
            error=error,
            done=done,
        )

    @requires(*CLERKS)
    async def intake_page(request: Request) -> HTMLResponse:
        atena = request.path_params["atena"]
        return await intake_form(request, atena, {"person": [atena]})

    @requires(*CLERKS)
    async def intake_submit(request: Request) -> HTMLResponse:
        atena = request.path_params["atena"]
        form = await request.form()
        user = Auth.current_user(request)
        assert user is not None
        fields = {k: str(form.get(k) or "") for k in ("date", "new_address", "notifier", "note")}
        persons = [p for p in form.getlist("person") if isinstance(p, str)]
        kind = str(form.get("type") or "")
        try:
            done = await run_in_threadpool(service.intake, atena, kind, persons, fields, user.name)
        except EdgenodeError as exc:
            values: dict[str, Any] = {**fields, "type": kind, "person": persons}
            return await intake_form(request, atena, values, str(exc), status_code=422)
        return await intake_form(request, atena, {"person": []}, done=done)

    async def move_in_form(
        request: Request, values: dict[str, Any], error: str = "", done: str = "", status_code: int = 200
    ) -> HTMLResponse:
        join = str(values.get("join") or "")
        head = None
        if join:
            found, refusal = await listed_household(request, join)
            if found is None:
                assert refusal is not None
                return refusal
            head = next((m for m in order(found[1]) if m["status"] == "住民"), None)
        rows = list(values.get("newcomers") or [])
        rows += [{}] * max(0, 4 - len(rows))
        return await page(
            request,
            "intake_new.html",
            status_code,
            join=join,
            head=head,
            rows=rows[:MAX_NEWCOMERS],
            values=values,
            error=error,
            done=done,
        )

    @requires(*CLERKS)
    async def move_in_page(request: Request) -> HTMLResponse:
        return await move_in_form(request, {"join": request.query_params.get("join", "")[:20]})

    @requires(*CLERKS)
    async def move_in_submit(request: Request) -> HTMLResponse:
        form = await request.form()
        user = Auth.current_user(request)
        assert user is not None
        fields = {
            k: str(form.get(k) or "") for k in ("date", "prior_address", "new_address", "notifier", "note", "join")
        }
        columns = {k: [str(v) for v in form.getlist(k)] for k in NEWCOMER_FIELDS}
        count = min(max((len(v) for v in columns.values()), default=0), MAX_NEWCOMERS + 1)
        newcomers = [{k: (columns[k][i] if i < len(columns[k]) else "") for k in NEWCOMER_FIELDS} for i in range(count)]
        join = fields.pop("join").strip() or None
        try:
            done = await run_in_threadpool(service.intake_newcomers, join, newcomers, fields, user.name)
        except EdgenodeError as exc:
            values: dict[str, Any] = {**fields, "join": join or "", "newcomers": newcomers}
            return await move_in_form(request, values, str(exc), status_code=422)
        return await move_in_form(request, {"join": ""}, done=done)

    # ------------------------------------------------------------ the day's list and 処分

    async def day_page(request: Request, status_code: int = 200, error: str = "") -> HTMLResponse:
        rows, totals = await run_in_threadpool(service.day)
        for r in rows:
            r["serial_list"] = json.loads(r["serials"])
        return await page(
            request,
            "issuances.html",
            status_code,
            rows=rows,
            totals=totals,
            intakes=await run_in_threadpool(service.day_intakes),
            error=error,
            today=to_wareki(_dt.datetime.now(JST).date()),
        )

    @requires(*CLERKS)
    async def issuances(request: Request) -> HTMLResponse:
        return await day_page(request)

    @requires(*CLERKS)
    async def void(request: Request) -> Response:
        form = await request.form()
        user = Auth.current_user(request)
        assert user is not None
        try:
            await run_in_threadpool(service.void, request.path_params["id"], str(form.get("reason") or ""), user.name)
        except EdgenodeError as exc:
            return await day_page(request, 422, str(exc))
        return RedirectResponse("/issuances", status_code=303)

    # ------------------------------------------------------------ admin

    verifier = VerifyRunner(data, settings, audit, machine)
    notices = {
        "verify_started": "照合を開始しました（数十秒かかることがあります。再読み込みで結果を表示）",
        "verify_busy": "照合はすでに実行中です",
        "sync_requested": "同期ループを起こしました（数秒から長くて待ち受け時間の後に反映）",
        "no_sync_loop": "このプロセスでは同期ループが動いていません（edgenode node serve で起動してください）",
    }

    @requires(*SUPERVISORS)
    async def admin(request: Request) -> HTMLResponse:
        st = await run_in_threadpool(status)
        facts = await run_in_threadpool(admin_facts, data, settings, st, audit, verifier.running())
        # our own SVG, built from numbers and escaped text (lagchart): safe to embed as markup
        facts["charts"] = {k: Markup(v) for k, v in facts["charts"].items()}
        notice = notices.get(request.query_params.get("done", ""), "")
        return await page(request, "admin.html", st=st, notice=notice, **facts)

    @requires("admin")
    async def admin_verify(request: Request) -> Response:
        user = Auth.current_user(request)
        assert user is not None
        started = await run_in_threadpool(verifier.start, user.name)
        return RedirectResponse("/admin?done=" + ("verify_started" if started else "verify_busy"), status_code=303)

    @requires(*SUPERVISORS)
    async def admin_sync(request: Request) -> Response:
        user = Auth.current_user(request)
        assert user is not None
        if wake is None:
            return RedirectResponse("/admin?done=no_sync_loop", status_code=303)
        await run_in_threadpool(audit.append, "sync_requested", user.name, {})
        wake()
        return RedirectResponse("/admin?done=sync_requested", status_code=303)

    @requires(*SUPERVISORS)
    async def admin_queue(request: Request) -> HTMLResponse:
        """The quarantine: items the hub rejected or opened as conflicts, with its reasons."""
        items = await run_in_threadpool(Outbox(data / "node.db").problems)
        summary = await run_in_threadpool(Outbox(data / "node.db").summary)
        return await page(request, "queue.html", items=items, summary=summary)

    @requires(*SUPERVISORS)
    async def admin_mode(request: Request) -> Response:
        form = await request.form()
        user = Auth.current_user(request)
        assert user is not None
        action = form.get("action")
        if action == "force_offline":
            reason = str(form.get("reason") or "").strip()[:200] or "理由の記入なし"
            await run_in_threadpool(machine.force_offline, user.name, reason)
        elif action == "release":
            await run_in_threadpool(machine.release, user.name)
        return RedirectResponse("/admin", status_code=303)

    # ------------------------------------------------------------ machine endpoints

    @public
    async def status_json(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(status))

    @public
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    collector = NodeCollector(status, service.counts, data / "node.db")
    latency = RequestLatency("edgenode_node")

    @public
    async def metrics(request: Request) -> Response:
        return Response(await run_in_threadpool(render_metrics, collector, latency), media_type=METRICS_TYPE)

    routes: list[BaseRoute] = [
        *auth.routes(),
        Route("/", search_page),
        Route("/person/{atena}", person_page),
        Route("/request/{atena}", request_page),
        Route("/request/{atena}/preview", preview, methods=["POST"]),
        Route("/request/{atena}/issue", issue, methods=["POST"]),
        Route("/intake/new", move_in_page),
        Route("/intake/new", move_in_submit, methods=["POST"]),
        Route("/intake/{atena}", intake_page),
        Route("/intake/{atena}", intake_submit, methods=["POST"]),
        Route("/issuances", issuances),
        Route("/issuances/{id}/void", void, methods=["POST"]),
        Route("/admin", admin),
        Route("/admin/mode", admin_mode, methods=["POST"]),
        Route("/admin/queue", admin_queue),
        Route("/admin/verify", admin_verify, methods=["POST"]),
        Route("/admin/sync", admin_sync, methods=["POST"]),
        Route("/api/status", status_json),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Mount("/static", app=public(StaticFiles(packages=[("edgenode.counter_ui", "static")])), name="static"),
    ]
    Auth.check_routes(routes)
    if warm:
        threading.Thread(target=service.warm_up, name="warm-renderer", daemon=True).start()
    return Starlette(routes=routes, middleware=[latency.middleware(routes), auth.middleware()])


def restricted_inquiry(conn: Any, hits: list[Any]) -> set[str]:
    """宛名番号 among `hits` under a 支援措置/抑止 that restricts 照会 (by person or household)."""
    if not hits:
        return set()
    atenas = {h.atena_no: h.household_no for h in hits}
    marks = ",".join("?" * len(atenas))
    rows = conn.execute(
        f"SELECT atena_no, household_no, record FROM restriction WHERE atena_no IN ({marks})"
        f" OR household_no IN ({marks})",
        (*atenas, *atenas.values()),
    ).fetchall()
    hidden: set[str] = set()
    for atena, household, record in rows:
        if "照会" not in json.loads(record).get("processes", []):
            continue
        hidden |= {a for a, hh in atenas.items() if a == atena or (household and hh == household)}
    return hidden


def order(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Household members in the registry's order (世帯員の並び順), 除票 persons last."""
    return sorted(members, key=lambda m: (m.get("status") != "住民", m.get("household_order") or 99, m["atena_no"]))
