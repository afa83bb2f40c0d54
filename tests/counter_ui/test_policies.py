"""Route policies, CSRF, same-origin checks and redirects of the counter UI's middleware."""

from __future__ import annotations

import pytest

from edgenode.counter_ui.auth import (
    MSG_CROSS_ORIGIN,
    MSG_CSRF,
    MSG_FORBIDDEN,
    MSG_LOGIN_REQUIRED,
    PUBLIC,
    ROLE_LABELS,
    Auth,
    Policy,
    User,
    requires,
    route_policies,
    safe_next,
)
from edgenode.errors import ConfigError

from .conftest import STAFF, Node, demo_routes, form_csrf, login, session_csrf

ROLE_USER = {role: user for user, role in STAFF.items()}
ANY = frozenset({"clerk", "supervisor", "admin"})

#: the demo app's full policy table, as the middleware must enforce it
EXPECTED = {
    ("/login", "GET"): PUBLIC,
    ("/login", "POST"): PUBLIC,
    ("/logout", "POST"): PUBLIC,
    ("/open", "GET"): PUBLIC,
    ("/search", "GET"): Policy(ANY),
    ("/issue", "POST"): Policy(ANY),
    ("/approve", "POST"): Policy(frozenset({"supervisor", "admin"})),
    ("/admin", "GET"): Policy(frozenset({"admin"})),
    ("/undeclared", "GET"): None,
    ("/static/{path:path}", "GET"): PUBLIC,
}


def _table(node: Node) -> dict[tuple[str, str], Policy | None]:
    app, _ = node.app()
    out = {}
    for rp in route_policies(app.routes):
        methods = rp.methods - {"HEAD"} if rp.methods else {"GET"}
        for m in methods:
            out[(rp.path, m)] = rp.policy
    return out


def test_every_route_of_the_demo_app_has_the_expected_policy(node: Node) -> None:
    assert _table(node) == EXPECTED


def test_check_routes_names_a_route_without_policy(node: Node) -> None:
    with pytest.raises(ConfigError, match="/undeclared"):
        Auth.check_routes(demo_routes())
    Auth.check_routes([r for r in demo_routes() if getattr(r, "path", "") != "/undeclared"])


def test_requires_refuses_unknown_or_no_roles() -> None:
    with pytest.raises(ValueError):
        requires("clark")
    with pytest.raises(ValueError):
        requires()


@pytest.mark.parametrize("role", [None, "clerk", "supervisor", "admin"])
@pytest.mark.parametrize(("path", "method"), [k for k in EXPECTED if not k[0].startswith(("/login", "/logout"))])
def test_each_route_is_served_or_refused_by_its_policy(node: Node, role: str | None, path: str, method: str) -> None:
    policy = EXPECTED[(path, method)]
    url = path.replace("{path:path}", "counter.css")
    with node.client() as client:
        if role is not None:
            assert login(client, ROLE_USER[role]).status_code == 303
            token = session_csrf(client)
        else:
            token = form_csrf(client.get("/login").text)  # the best an anonymous visitor can send
        if method == "GET":
            r = client.get(url)
        else:
            r = client.post(url, data={"csrf": token, "atena_no": "1"})
    user = None if role is None else User(ROLE_USER[role], role, ROLE_LABELS[role])
    allowed = policy is not None and policy.allows(user)
    if allowed:
        assert r.status_code == 200, (path, role, r.text)
    elif policy is None:
        assert r.status_code == 403 and MSG_FORBIDDEN in r.text
    elif role is None and method == "GET":
        assert r.status_code == 303 and r.headers["location"] == f"/login?next=%2F{path.strip('/')}"
    elif role is None:
        assert r.status_code == 403 and MSG_LOGIN_REQUIRED in r.text
    else:
        assert r.status_code == 403 and MSG_FORBIDDEN in r.text


def test_wrong_role_page_is_japanese_and_keeps_the_logout_button(node: Node) -> None:
    with node.client() as client:
        login(client, "tanaka")
        r = client.get("/admin")
    assert r.status_code == 403
    assert "この操作の権限がありません。" in r.text
    assert 'action="/logout"' in r.text and "tanaka（窓口職員）" in r.text


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_post_without_the_right_csrf_token_is_refused(node: Node, token: str | None) -> None:
    with node.client() as client:
        login(client, "tanaka")
        data = {"atena_no": "1"} if token is None else {"atena_no": "1", "csrf": token}
        r = client.post("/issue", data=data)
        assert r.status_code == 403 and MSG_CSRF in r.text
        assert client.post("/issue", data={"atena_no": "1", "csrf": session_csrf(client)}).text == "issued 1"


def test_csrf_token_in_a_multipart_form_is_accepted(node: Node) -> None:
    with node.client() as client:
        login(client, "tanaka")
        r = client.post("/issue", data={"csrf": session_csrf(client), "atena_no": "7"}, files={"f": b"x"})
        assert r.text == "issued 7"


def test_login_post_needs_its_cookie_and_form_token(node: Node) -> None:
    with node.client() as client:
        r = client.post("/login", data={"user": "tanaka", "password": "x"})
        assert r.status_code == 403 and MSG_CSRF in r.text
        token = form_csrf(client.get("/login").text)
        client.cookies.clear()  # the token alone is not enough without its cookie
        r = client.post("/login", data={"csrf": token, "user": "tanaka", "password": "x"})
        assert r.status_code == 403
    assert node.events.got == []  # refused before any password was looked at


def test_login_form_expires(node: Node) -> None:
    with node.client() as client:
        token = form_csrf(client.get("/login").text)
        node.clock.advance(2 * 60 * 60 + 1)
        r = client.post("/login", data={"csrf": token, "user": "tanaka", "password": "x"})
        assert r.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "https://testserver"},  # another scheme is another origin
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ],
)
def test_cross_origin_posts_are_refused_even_with_a_valid_token(node: Node, headers: dict[str, str]) -> None:
    with node.client() as client:
        login(client, "tanaka")
        token = session_csrf(client)
        r = client.post("/issue", data={"csrf": token, "atena_no": "1"}, headers=headers)
        assert r.status_code == 403 and MSG_CROSS_ORIGIN in r.text
        ok = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
        assert client.post("/issue", data={"csrf": token, "atena_no": "1"}, headers=ok).status_code == 200


def test_an_allowed_origin_may_post(node: Node) -> None:
    with node.client(allowed_origins=("https://madoguchi.example.lg.jp",)) as client:
        login(client, "tanaka")
        headers = {"origin": "https://madoguchi.example.lg.jp:443"}
        assert client.post("/issue", data={"csrf": session_csrf(client)}, headers=headers).status_code == 200


def test_a_too_large_post_is_refused(node: Node) -> None:
    with node.client(max_body_bytes=1000) as client:
        login(client, "tanaka")
        r = client.post("/issue", data={"csrf": session_csrf(client), "atena_no": "1" * 2000})
        assert r.status_code == 413


def test_unauthenticated_get_goes_to_login_and_back(node: Node) -> None:
    with node.client() as client:
        r = client.get("/search", params={"q": "門川 太郎"})
        assert r.status_code == 303
        location = r.headers["location"]
        assert location == "/login?next=%2Fsearch%3Fq%3D%25E9%2596%2580%25E5%25B7%259D%2B%25E5%25A4%25AA%25E9%2583%258E"
        page = client.get(location)
        assert 'name="next" value="/search?q=%E9%96%80%E5%B7%9D+%E5%A4%AA%E9%83%8E"' in page.text
        r = client.post(
            "/login",
            data={
                "csrf": form_csrf(page.text),
                "user": "tanaka",
                "password": "kadogawa-2026",
                "next": "/search?q=%E9%96%80%E5%B7%9D+%E5%A4%AA%E9%83%8E",
            },
        )
        assert r.headers["location"] == "/search?q=%E9%96%80%E5%B7%9D+%E5%A4%AA%E9%83%8E"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "//evil.example/path",
        "/\\evil.example",
        "/\t/evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/logout",
    ],
)
def test_next_cannot_leave_the_site(node: Node, target: str) -> None:
    assert safe_next(target) == "/"
    with node.client() as client:
        r = login(client, "tanaka", next_=target)
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert client.get("/login", params={"next": target}).headers["location"] == "/"


def test_security_headers_on_every_response(node: Node) -> None:
    with node.client() as client:
        assert client.get("/open").headers["x-frame-options"] == "DENY"
        login(client, "tanaka")
        r = client.get("/search")
        assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"


def test_unknown_paths_and_methods_are_left_to_the_router(node: Node) -> None:
    with node.client() as client:
        assert client.get("/no-such-page").status_code == 404
        login(client, "tanaka")
        assert client.get("/issue").status_code == 405
