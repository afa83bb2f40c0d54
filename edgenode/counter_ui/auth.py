"""Counter login: accounts, server-side sessions, CSRF, lockout and per-route role policies.

Accounts are looked up in the replica's ``staff`` table (synced from the hub) first, then in
``node.db``'s ``local_user`` (emergency accounts made on the node), so clerks log in with the
hub unreachable and even before the first sync. Passwords are checked with argon2; an unknown
user name is checked against a dummy hash so the time taken does not tell which names exist.

Every route declares who may use it, with `requires` (roles) or `public`, on its endpoint.
`AuthMiddleware` resolves the route a request will reach and refuses it unless its policy
allows the user; a route *without* a policy is refused (fail closed), and `Auth.check_routes`
finds such routes when the app is built.

CSRF: a session's forms carry the session's random token (stored server-side). Before login
there is no session, so the login form uses a *signed* double submit: a short-lived random
cookie (``edgenode_login``) plus a form field holding HMAC-SHA256(node key, cookie value).
Unlike a plain double submit, a cookie planted by a neighbouring host is useless without the
node key, and no row is written for anonymous visitors. Unsafe requests (anything but GET, HEAD,
OPTIONS) must also not come from another origin (``Origin`` / ``Sec-Fetch-Site``, if sent).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from jinja2 import Environment, PackageLoader, Template, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Host, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgenode.errors import ConfigError, RecordError, StoreError
from edgenode.resident import STAFF_ROLES, validate_staff
from edgenode.sync.replica import Replica

from .sessions import Attempt, AuthStore, Limit, SessionRow, digest

log = logging.getLogger(__name__)

ROLE_LABELS = {"clerk": "窓口職員", "supervisor": "監督者", "admin": "管理者"}
SESSION_COOKIE = "edgenode_session"
LOGIN_COOKIE = "edgenode_login"

#: Event kinds passed to the ``on_event`` hook.
LOGIN_SUCCESS = "login_success"
LOGIN_FAILURE = "login_failure"
LOCKOUT = "lockout"
LOGOUT = "logout"

MSG_BAD_LOGIN = "ユーザー名またはパスワードが違います。"
MSG_LOCKED = "一定回数失敗したため、しばらくログインできません。"
MSG_FORBIDDEN = "この操作の権限がありません。"
MSG_LOGIN_REQUIRED = "ログインが必要です。ログインしてから、もう一度操作してください。"
MSG_CSRF = "画面の有効期限が切れたか、正しくない送信です。画面を開き直してから、もう一度操作してください。"
MSG_CROSS_ORIGIN = "ほかのサイトの画面からの送信は受け付けられません。"
MSG_TOO_LARGE = "送信されたデータが大きすぎます。"
MSG_EXPIRED = "セッションの有効期限が切れました。もう一度ログインしてください。"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Mirrors `resident.validate_staff`: other names cannot belong to an account, so they are not looked up.
_USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_POLICY_ATTR = "__edgenode_policy__"
_SECURITY_HEADERS = (
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    # No script anywhere; styles from our stylesheet (and the certificate preview's inline
    # <style>, which lives in a sandboxed srcdoc frame); nothing is fetched from elsewhere.
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self';"
        " frame-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
)

EventHook = Callable[[str, str | None, dict[str, Any]], None]
PageContext = Callable[[Request], Mapping[str, Any]]
T = TypeVar("T")

REFUSAL_TEMPLATE = """{% extends "base.html" %}
{% block title %}{{ title }}{% endblock %}
{% block main %}
<section class="refusal">
<h1>{{ title }}</h1>
<p class="error" role="alert">{{ message }}</p>
<p><a href="{{ back_href }}">{{ back_label }}</a></p>
</section>
{% endblock %}
"""


# ---------------------------------------------------------------- users and policies


@dataclass(frozen=True)
class User:
    """The logged-in clerk, as templates and endpoints see it (``request.state.user``)."""

    name: str
    role: str
    role_label: str
    source: str = "hub"  # "hub" (synced staff account) or "local" (emergency account on this node)


@dataclass(frozen=True)
class Policy:
    """Who may use a route: anyone (`public`) or a logged-in user holding one of `roles`."""

    roles: frozenset[str]
    public: bool = False

    def allows(self, user: User | None) -> bool:
        """True if `user` (None: not logged in) may use the route."""
        return self.public or (user is not None and user.role in self.roles)


PUBLIC = Policy(frozenset(), public=True)


def requires(*roles: str) -> Callable[[T], T]:
    """Declare that an endpoint (function, method or ASGI app) needs a login with one of `roles`."""
    unknown = [r for r in roles if r not in STAFF_ROLES]
    if not roles or unknown:
        raise ValueError(f"requires() takes roles among {STAFF_ROLES}, got {roles!r}")
    policy = Policy(frozenset(roles))

    def mark(endpoint: T) -> T:
        setattr(endpoint, _POLICY_ATTR, policy)
        return endpoint

    return mark


def public(endpoint: T) -> T:
    """Declare that an endpoint needs no login (the login page, health checks, static files)."""
    setattr(endpoint, _POLICY_ATTR, PUBLIC)
    return endpoint


def policy_of(endpoint: object) -> Policy | None:
    """The policy declared on an endpoint, or None if it has none (such a route is refused)."""
    while True:
        policy = getattr(endpoint, _POLICY_ATTR, None)
        if isinstance(policy, Policy):
            return policy
        if not isinstance(endpoint, functools.partial):
            return None
        endpoint = endpoint.func


@dataclass(frozen=True)
class RoutePolicy:
    """One route and its declared policy, as listed by `route_policies`."""

    path: str
    methods: frozenset[str] | None
    policy: Policy | None


def route_policies(routes: Sequence[BaseRoute], prefix: str = "") -> list[RoutePolicy]:
    """Every route (mounts expanded) with its policy, so a test can assert them all."""
    out: list[RoutePolicy] = []
    for route in routes:
        if isinstance(route, Route):
            methods = frozenset(route.methods) if route.methods else None
            out.append(RoutePolicy(prefix + route.path, methods, policy_of(route.endpoint)))
        elif isinstance(route, (Mount, Host)):
            path = prefix + (route.path if isinstance(route, Mount) else "")
            policy = policy_of(route.app)
            if policy is None and route.routes:
                out += route_policies(route.routes, path)
            else:
                out.append(RoutePolicy(path + "/{path:path}", None, policy))
        else:
            out.append(RoutePolicy(prefix + str(getattr(route, "path", "?")), None, None))
    return out


def resolve_policy(routes: Sequence[BaseRoute], scope: Scope) -> tuple[bool, Policy | None]:
    """(matched, policy) of the route the router will dispatch `scope` to, matching as it does.

    Unmatched requests (404, 405, slash redirects) reach no endpoint, so they pass unchecked.
    """
    for route in routes:
        match, child = route.matches(scope)
        if match is not Match.FULL:
            continue
        if isinstance(route, (Mount, Host)):
            policy = policy_of(route.app)
            if policy is None and route.routes:
                return resolve_policy(route.routes, {**scope, **child})
            return True, policy
        return True, policy_of(child.get("endpoint"))
    return False, None


def safe_next(value: object, avoid: Sequence[str] = ("/login", "/logout"), home: str = "/") -> str:
    """`value` if it is a path on this site (not //host, not a scheme, no tricks), else `home`."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or len(value) > 2000:
        return home
    # browsers read "\" as "/" and drop tabs and newlines, turning "/\evil" or "/\t/evil" into //evil
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in avoid:
        return home
    return value


def _norm_origin(origin: str) -> str:
    """scheme://host[:port] in lower case without a default port; "" if it is not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    if port is None or (parts.scheme, port) in (("http", 80), ("https", 443)):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class AuthConfig:
    """Login settings; the defaults are the town's policy (times in seconds)."""

    cookie_secure: bool  # mark cookies Secure: True whenever clerks reach the node over HTTPS
    max_failures: int = 5  # failures of one user name ...
    failure_window: float = 15 * 60  # ... within this window ...
    lockout: float = 15 * 60  # ... lock that user name this long
    max_ip_failures: int = 20  # the same for one client address
    ip_failure_window: float = 15 * 60
    ip_lockout: float = 15 * 60
    idle_timeout: float = 30 * 60  # a session ends after this long without a request ...
    absolute_timeout: float = 10 * 60 * 60  # ... and this long after login, whatever happens
    login_form_ttl: float = 2 * 60 * 60  # a login form (its CSRF cookie) stays usable this long
    allowed_origins: tuple[str, ...] = ()  # extra origins allowed to POST (e.g. behind a TLS proxy)
    max_body_bytes: int = 1 << 20  # largest unsafe request body read to check its CSRF field
    login_path: str = "/login"
    logout_path: str = "/logout"
    home: str = "/"  # where a login without a `next` lands, and the refusal page's way back

    def __post_init__(self) -> None:
        for name in ("max_failures", "max_ip_failures", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        for name in ("failure_window", "lockout", "ip_failure_window", "ip_lockout", "idle_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.absolute_timeout < self.idle_timeout or self.login_form_ttl <= 0:
            raise ConfigError("absolute_timeout must be at least idle_timeout; login_form_ttl positive")


@dataclass(frozen=True)
class Account:
    """A login account as found by an account source (``source`` also scopes what it may see)."""

    name: str
    role: str
    password_hash: str
    source: str

    @property
    def stamp(self) -> str:
        """Changes when the role or password changes, which ends the account's sessions."""
        return digest(f"{self.source}\0{self.role}\0{self.password_hash}")

    def user(self) -> User:
        return User(self.name, self.role, ROLE_LABELS[self.role], self.source)


@dataclass(frozen=True)
class _Outcome:
    user: User | None = None
    token: str = ""
    locked: bool = False


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- the entry object


class Auth:
    """Login, logout, sessions and route policies for the counter UI of one node folder."""

    def __init__(
        self,
        data: Path,
        config: AuthConfig,
        *,
        on_event: EventHook | None = None,
        templates: Environment | None = None,
        page_context: PageContext | None = None,
        clock: Callable[[], float] = time.time,
        store: AuthStore | None = None,
        accounts: Callable[[str], Account | None] | None = None,
    ) -> None:
        """`store` and `accounts` default to the node's (node.db; replica staff, then local
        accounts); the hub's staff pages give their own."""
        self.config = config
        self.store = store or AuthStore(data / "node.db")
        self.replica = Replica(data / "replica")
        self.accounts = accounts
        self.on_event = on_event
        self.page_context = page_context
        self.clock = clock
        self.env = templates or Environment(
            loader=PackageLoader("edgenode.counter_ui", "templates"), autoescape=select_autoescape()
        )
        self._refusal: Template = self.env.from_string(REFUSAL_TEMPLATE)
        self._hasher = PasswordHasher()
        self._key = self.store.key()
        self._user_limit = Limit(config.max_failures, config.failure_window, config.lockout)
        self._ip_limit = Limit(config.max_ip_failures, config.ip_failure_window, config.ip_lockout)

    # ------------------------------------------------------------ wiring

    def routes(self) -> list[BaseRoute]:
        """GET and POST of the login page, POST of logout."""
        c = self.config
        return [
            Route(c.login_path, self.login_page, methods=["GET"], name="login"),
            Route(c.login_path, self.login_submit, methods=["POST"], name="login_submit"),
            Route(c.logout_path, self.logout, methods=["POST"], name="logout"),
        ]

    def middleware(self) -> Middleware:
        """The middleware to give ``Starlette(middleware=[...])``."""
        return Middleware(AuthMiddleware, auth=self)

    @staticmethod
    def check_routes(routes: Sequence[BaseRoute]) -> None:
        """Raise `ConfigError` naming every route that declares no policy (call when building the app)."""
        missing = sorted({rp.path for rp in route_policies(routes) if rp.policy is None})
        if missing:
            raise ConfigError(f"routes without an access policy (use @requires or @public): {', '.join(missing)}")

    @staticmethod
    def current_user(request: Request) -> User | None:
        """The logged-in user of a request, or None."""
        user = getattr(request.state, "user", None)
        return user if isinstance(user, User) else None

    @staticmethod
    def render_context(request: Request) -> dict[str, Any]:
        """``user`` and ``csrf`` for templates (base.html's logout form needs both)."""
        return {"user": Auth.current_user(request), "csrf": getattr(request.state, "csrf", "")}

    # ------------------------------------------------------------ accounts

    def find_account(self, name: str) -> Account | None:
        """The hub-synced account of that name, else the local emergency one, else None."""
        if len(name) > 100:
            return None
        if self.accounts is not None:
            return self.accounts(name)
        if not _USER_RE.match(name):
            return None
        return self._hub_account(name) or self._local_account(name)

    def _hub_account(self, name: str) -> Account | None:
        # Two tries: a re-bootstrap may switch and delete the replica file between our read of
        # replica/CURRENT and the open. Past that, a replica we cannot read holds no accounts and
        # the local emergency accounts still work.
        row = None
        for _ in range(2):
            try:
                if self.replica.current_file() is None:  # before the first sync
                    return None
                with self.replica.session() as conn:
                    row = conn.execute("SELECT record FROM staff WHERE user = ?", (name,)).fetchone()
                break
            except (StoreError, sqlite3.Error):
                row = None
        if row is None:
            return None
        try:
            rec = validate_staff(orjson.loads(row[0]))
        except (orjson.JSONDecodeError, RecordError):
            log.warning("staff record of %s in the replica is not valid; ignored", name)
            return None
        if rec["user"] != name:
            return None
        return Account(name, str(rec["role"]), str(rec["password_hash"]), "hub")

    def _local_account(self, name: str) -> Account | None:
        found = self.store.local_account(name)
        if found is None or found[0] not in STAFF_ROLES:
            return None
        return Account(name, found[0], found[1], "local")

    @functools.cached_property
    def _dummy_hash(self) -> str:
        # same parameters as `add_local_user`, so an unknown name costs as long as a known one
        return self._hasher.hash(secrets.token_urlsafe(16))

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    # ------------------------------------------------------------ sessions and login

    def load_session(self, token: str | None, now: float) -> tuple[SessionRow | None, User | None]:
        """The live session and user for a cookie value; (None, None) if it is gone or invalid."""
        if not token or len(token) > 100:
            return None, None
        c = self.config
        row = self.store.load_session(token, now, c.idle_timeout, c.absolute_timeout)
        if row is None:
            return None, None
        account = self.find_account(row.user)
        if account is None or account.source != row.source or account.stamp != row.stamp:
            # removed, demoted or given a new password since login: the session ends here
            self.store.delete_session(row.id_hash)
            return None, None
        return row, account.user()

    def _emit(self, kind: str, user: str | None, detail: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, user, detail)

    def attempt_login(self, name: str, password: str, ip: str, old_token: str | None, now: float) -> _Outcome:
        """Check one login (blocking: argon2 and SQLite); on success a new session replaces the old."""
        user_key = ("user", digest(name), self._user_limit)
        ip_key = ("ip", ip, self._ip_limit)
        attempt: Attempt = self.store.begin_attempt([user_key, ip_key], now)
        if attempt.locked:
            known = self.find_account(name) is not None
            self._emit(LOGIN_FAILURE, name if known else None, {"ip": ip, "reason": "locked"})
            return _Outcome(locked=True)
        account = self.find_account(name)
        ok = self._verify(account.password_hash if account else self._dummy_hash, password) and account is not None
        if ok and account is not None:
            self.store.succeeded(attempt, clear=[("user", user_key[1])])
            # audited before the session exists: if the audit log cannot record it, nobody logs in
            self._emit(LOGIN_SUCCESS, name, {"ip": ip, "role": account.role, "source": account.source})
            if old_token:
                self.store.delete_session(digest(old_token))
            c = self.config
            self.store.purge_sessions(now, c.idle_timeout, c.absolute_timeout)
            token, _csrf = self.store.create_session(name, account.source, account.stamp, now)
            return _Outcome(user=account.user(), token=token)
        # an unknown name is not echoed to the audit log: it is often a password typed in the wrong box
        who = name if account is not None else None
        self._emit(LOGIN_FAILURE, who, {"ip": ip, "reason": "bad_password" if account else "unknown_user"})
        locks = self.store.failed([user_key, ip_key], now)
        for scope, until in locks:
            self._emit(LOCKOUT, who if scope == "user" else None, {"ip": ip, "scope": scope, "until": _iso(until)})
        return _Outcome(locked=bool(locks))

    def verify_credentials(self, name: str, password: str, roles: Sequence[str]) -> bool:
        """Check someone else's credentials (a supervisor approving at a clerk's desk).

        Counts against the same per-user lockout as logging in, so an approval box cannot be
        used to guess a supervisor's password faster than the login page allows.
        """
        now = self.clock()
        user_key = ("user", digest(name), self._user_limit)
        attempt = self.store.begin_attempt([user_key], now)
        if attempt.locked:
            return False
        account = self.find_account(name)
        ok = account is not None and account.role in roles
        ok = self._verify(account.password_hash if account else self._dummy_hash, password) and ok
        if ok:
            self.store.succeeded(attempt, clear=[("user", user_key[1])])
            return True
        for scope, until in self.store.failed([user_key], now):
            self._emit(LOCKOUT, name if account else None, {"scope": scope, "until": _iso(until), "via": "approval"})
        return False

    def login_token(self, cookie: str) -> str:
        """The login form's CSRF field for a login cookie value."""
        return hmac.new(self._key, b"login-csrf\0" + cookie.encode(), hashlib.sha256).hexdigest()

    def login_cookie_age(self, cookie: str | None, now: float) -> float | None:
        """Seconds since a login cookie was issued, or None if it is malformed or too old."""
        if not cookie or len(cookie) > 100:
            return None
        issued, _, nonce = cookie.partition(".")
        if not issued.isdigit() or len(nonce) < 32:
            return None
        age = now - int(issued)
        return age if -60 <= age <= self.config.login_form_ttl else None

    def cookie_header(self, name: str, value: str, max_age: int | None = None) -> str:
        """A Set-Cookie value: HttpOnly, SameSite=Strict, Path=/, Secure as configured."""
        parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if self.config.cookie_secure:
            parts.append("Secure")
        return "; ".join(parts)

    # ------------------------------------------------------------ pages

    async def page(self, request: Request, template: Template | str, status: int = 200, **ctx: Any) -> HTMLResponse:
        """Render a page on base.html with the node's page context (banner, municipality)."""
        base: dict[str, Any] = {}
        if self.page_context is not None:
            try:
                base = dict(await run_in_threadpool(self.page_context, request))
            except Exception:
                # the login page must work when the node's status cannot be read: an offline
                # fallback that cannot log anyone in is no fallback
                log.exception("page context failed; rendering without it")
        tmpl = self.env.get_template(template) if isinstance(template, str) else template
        html = tmpl.render({**base, **self.render_context(request), **ctx})
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})

    async def refusal(self, request: Request, status: int, message: str) -> HTMLResponse:
        """The Japanese refusal page (403, 413)."""
        logged_in = self.current_user(request) is not None
        back = (self.config.home, "トップへ戻る") if logged_in else (self.config.login_path, "ログイン画面へ")
        return await self.page(
            request,
            self._refusal,
            status,
            title="操作できません",
            message=message,
            back_href=back[0],
            back_label=back[1],
        )

    @public
    async def login_page(self, request: Request) -> Response:
        """GET /login: the form (a logged-in user goes on to `next`)."""
        nxt = safe_next(request.query_params.get("next"), self._avoid, self.config.home)
        if self.current_user(request) is not None:
            return RedirectResponse(nxt, status_code=303)
        now = self.clock()
        cookie = request.cookies.get(LOGIN_COOKIE)
        age = self.login_cookie_age(cookie, now)
        # a form older than half its life gets a new cookie, so a clerk never types into a dying form
        fresh = cookie is None or age is None or age > self.config.login_form_ttl / 2
        if fresh or cookie is None:
            cookie = f"{int(now)}.{secrets.token_urlsafe(32)}"
        notice = MSG_EXPIRED if request.query_params.get("expired") == "1" else ""
        resp = await self.page(
            request,
            "login.html",
            csrf=self.login_token(cookie),
            next=nxt,
            user_name="",
            errors=[],
            notice=notice,
            login_path=self.config.login_path,
        )
        if fresh:
            resp.headers.append("set-cookie", self.cookie_header(LOGIN_COOKIE, cookie, int(self.config.login_form_ttl)))
        return resp

    @public
    async def login_submit(self, request: Request) -> Response:
        """POST /login (its CSRF field was checked by the middleware)."""
        async with request.form() as form:
            name, password, nxt = _field(form, "user"), _field(form, "password"), _field(form, "next")
        ip = request.client.host if request.client else "unknown"
        old = request.cookies.get(SESSION_COOKIE)
        outcome = await run_in_threadpool(self.attempt_login, name.strip(), password, ip, old, self.clock())
        nxt = safe_next(nxt, self._avoid, self.config.home)
        if outcome.user is not None:
            resp: Response = RedirectResponse(nxt, status_code=303)
            resp.headers.append("set-cookie", self.cookie_header(SESSION_COOKIE, outcome.token))
            resp.headers.append("set-cookie", self.cookie_header(LOGIN_COOKIE, "", 0))
            return resp
        errors = [MSG_BAD_LOGIN, MSG_LOCKED] if outcome.locked else [MSG_BAD_LOGIN]
        return await self.page(
            request,
            "login.html",
            next=nxt,
            user_name=name[:100],
            errors=errors,
            notice="",
            login_path=self.config.login_path,
        )

    @public
    async def logout(self, request: Request) -> Response:
        """POST /logout: delete the session, then back to the login page."""
        session = getattr(request.state, "auth_session", None)
        if isinstance(session, SessionRow):
            await run_in_threadpool(self.store.delete_session, session.id_hash)
            ip = request.client.host if request.client else "unknown"
            await run_in_threadpool(self._emit, LOGOUT, session.user, {"ip": ip})
        resp = RedirectResponse(self.config.login_path, status_code=303)
        resp.headers.append("set-cookie", self.cookie_header(SESSION_COOKIE, "", 0))
        return resp

    @property
    def _avoid(self) -> tuple[str, str]:
        return (self.config.login_path, self.config.logout_path)


# ---------------------------------------------------------------- the middleware


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None if it exceeds `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that yields `body` once, then defers to the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class AuthMiddleware:
    """Sets ``request.state.user``/``csrf``; enforces route policies, CSRF and same-origin POSTs."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        auth, config = self.auth, self.auth.config
        request = Request(scope)
        now = auth.clock()
        token = request.cookies.get(SESSION_COOKIE)
        session, user = await run_in_threadpool(auth.load_session, token, now)
        stale = bool(token) and session is None
        login_cookie = request.cookies.get(LOGIN_COOKIE)
        login_csrf = ""
        if login_cookie and auth.login_cookie_age(login_cookie, now) is not None:
            login_csrf = auth.login_token(login_cookie)
        request.state.user = user
        request.state.auth_session = session
        request.state.csrf = session.csrf if session else login_csrf

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in _SECURITY_HEADERS:
                    if k not in headers:
                        headers[k] = v
                if user is not None and "cache-control" not in headers:
                    headers["cache-control"] = "no-store"  # resident data must not stay in a shared PC's cache
                if stale and not any(v.startswith(SESSION_COOKIE + "=") for v in headers.getlist("set-cookie")):
                    headers.append("set-cookie", auth.cookie_header(SESSION_COOKIE, "", 0))
            await send(message)

        async def refuse(status: int, message: str) -> None:
            await (await auth.refusal(request, status, message))(scope, receive, send_wrapper)

        method = scope["method"]
        unsafe = method not in SAFE_METHODS
        if unsafe and not self._same_origin(request):
            await refuse(403, MSG_CROSS_ORIGIN)
            return
        routes = getattr(scope.get("app"), "routes", None)
        if routes is None:
            await refuse(403, MSG_FORBIDDEN)  # not mounted in a Starlette app: cannot know the route
            return
        matched, policy = resolve_policy(routes, scope)
        if not matched:
            await self.app(scope, receive, send_wrapper)  # 404, 405 or a slash redirect: no endpoint runs
            return
        if policy is None:
            log.warning("refused %s %s: the route declares no access policy", method, scope["path"])
            await refuse(403, MSG_FORBIDDEN)
            return
        if unsafe and session is None and _route_path(scope) == config.logout_path:
            # nothing to end, nothing changes: no token needed, just go to the login page
            await RedirectResponse(config.login_path, status_code=303)(scope, receive, send_wrapper)
            return
        if not policy.allows(user):
            if user is not None:
                await refuse(403, MSG_FORBIDDEN)
            elif method in ("GET", "HEAD"):
                await self._to_login(request, stale)(scope, receive, send_wrapper)
            else:
                await refuse(403, MSG_LOGIN_REQUIRED)
            return
        if unsafe:
            length = request.headers.get("content-length", "")
            too_long = length.isdigit() and int(length) > config.max_body_bytes
            body = None if too_long else await _read_body(receive, config.max_body_bytes)
            if body is None:
                await refuse(413, MSG_TOO_LARGE)
                return
            sent = await self._form_token(scope, body, receive)
            accepted = [session.csrf] if session else []
            if login_csrf and (session is None or _route_path(scope) == config.login_path):
                accepted.append(login_csrf)
            if not sent or not any(hmac.compare_digest(sent.encode(), a.encode()) for a in accepted):
                await refuse(403, MSG_CSRF)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send_wrapper)

    def _same_origin(self, request: Request) -> bool:
        site = request.headers.get("sec-fetch-site")
        if site is not None and site.lower() not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None:
            return True
        own = _norm_origin(f"{request.url.scheme}://{request.headers.get('host', '')}")
        allowed = {own, *(_norm_origin(o) for o in self.auth.config.allowed_origins)} - {""}
        return _norm_origin(origin) in allowed

    def _to_login(self, request: Request, expired: bool) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query: dict[str, str] = {}
        if target != self.auth.config.home:
            query["next"] = target
        if expired:
            query["expired"] = "1"
        login = self.auth.config.login_path
        return RedirectResponse(f"{login}?{urlencode(query)}" if query else login, status_code=303)

    @staticmethod
    async def _form_token(scope: Scope, body: bytes, receive: Receive) -> str:
        form_request = Request(scope, _replay(body, receive))
        try:
            async with form_request.form() as form:
                return _field(form, "csrf")
        except (HTTPException, ValueError):
            return ""


def _route_path(scope: Scope) -> str:
    """The request path below the app's root path."""
    path = str(scope["path"])
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path
