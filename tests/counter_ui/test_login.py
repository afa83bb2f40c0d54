"""Login, lockout, sessions and logout of the counter UI, on real SQLite files and a fake clock."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from starlette.applications import Starlette

from edgenode.counter_ui.auth import (
    LOCKOUT,
    LOGIN_COOKIE,
    LOGIN_FAILURE,
    LOGIN_SUCCESS,
    LOGOUT,
    MSG_BAD_LOGIN,
    MSG_EXPIRED,
    MSG_LOCKED,
    SESSION_COOKIE,
    Auth,
    User,
)
from edgenode.counter_ui.sessions import Limit
from edgenode.sync.nodeconfig import add_local_user

from .conftest import PASSWORD, STAFF, START, Node, TestClient, form_csrf, login, session_csrf


def _set_cookies(r: httpx.Response) -> list[str]:
    return [v for k, v in r.headers.multi_items() if k.lower() == "set-cookie"]


def _session_cookie_header(r: httpx.Response) -> str:
    found = [c for c in _set_cookies(r) if c.startswith(SESSION_COOKIE + "=")]
    assert len(found) == 1, _set_cookies(r)
    return found[0]


@pytest.mark.parametrize("secure", [False, True])
def test_login_sets_a_session_cookie_with_the_right_flags(node: Node, secure: bool) -> None:
    base = "https://testserver" if secure else "http://testserver"
    with node.client(base_url=base, cookie_secure=secure) as client:
        r = login(client, "tanaka")
        assert r.status_code == 303
        assert r.headers["location"] == "/"
        header = _session_cookie_header(r)
        attrs = [a.strip() for a in header.split(";")]
        value = attrs[0].split("=", 1)[1]
        assert len(value) >= 43  # 256 bits, url-safe base64
        assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs
        assert ("Secure" in attrs) is secure
        assert not any(a.lower().startswith(("max-age", "expires")) for a in attrs)  # gone with the browser
        me = client.get("/search").json()
        assert me == {"user": "tanaka", "role": "clerk", "label": "窓口職員", "csrf": me["csrf"]}
        assert len(me["csrf"]) >= 43


def test_the_session_id_is_stored_only_as_its_hash(node: Node, client: TestClient) -> None:
    r = login(client, "tanaka")
    value = _session_cookie_header(r).split(";")[0].split("=", 1)[1]
    raw = b"".join(p.read_bytes() for p in node.data.glob("node.db*"))
    assert value.encode() not in raw
    assert PASSWORD.encode() not in raw


def test_login_page_is_japanese_and_keyboard_ready(client: TestClient) -> None:
    r = client.get("/login")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    html = r.text
    for text in ("ユーザー名", "パスワード", "ログイン", 'autocomplete="current-password"', "autofocus"):
        assert text in html
    assert '<label for="login-user">' in html and '<label for="login-password">' in html
    assert 'class="banner mode-offline"' in html and "門川町" in html
    assert "http://" not in html and "https://" not in html  # no external assets
    css = client.get("/static/counter.css")
    assert css.status_code == 200 and ".banner.mode-offline" in css.text


def test_wrong_password_and_unknown_user_get_the_same_page(client: TestClient) -> None:
    wrong = login(client, "tanaka", "not-the-password")
    unknown = login(client, "nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 200
    assert MSG_BAD_LOGIN in wrong.text and MSG_LOCKED not in wrong.text
    assert wrong.text.replace("tanaka", "NAME") == unknown.text.replace("nobody", "NAME")
    assert not [c for c in _set_cookies(wrong) if c.startswith(SESSION_COOKIE)]


def test_five_failures_lock_the_user_name_for_fifteen_minutes(node: Node, client: TestClient) -> None:
    for i in range(4):
        r = login(client, "tanaka", f"guess-{i}")
        assert MSG_BAD_LOGIN in r.text and MSG_LOCKED not in r.text
    r = login(client, "tanaka", "guess-5")
    assert MSG_BAD_LOGIN in r.text and MSG_LOCKED in r.text
    assert ("lockout", "tanaka") in [(k, u) for k, u, _ in node.events.got]
    # locked: even the right password is refused, with the same generic message
    r = login(client, "tanaka")
    assert r.status_code == 200 and MSG_BAD_LOGIN in r.text and MSG_LOCKED in r.text
    node.clock.advance(15 * 60 - 1)
    assert MSG_LOCKED in login(client, "tanaka").text
    # other user names are not affected
    assert login(client, "suzuki").status_code == 303
    node.clock.advance(2)
    assert login(client, "tanaka").status_code == 303


def test_failures_older_than_the_window_do_not_count(node: Node, client: TestClient) -> None:
    for i in range(4):
        login(client, "tanaka", f"guess-{i}")
    node.clock.advance(15 * 60 + 1)
    for i in range(4):
        assert MSG_LOCKED not in login(client, "tanaka", f"again-{i}").text
    assert login(client, "tanaka").status_code == 303


def test_a_success_resets_the_user_count(node: Node, client: TestClient) -> None:
    for i in range(4):
        login(client, "tanaka", f"guess-{i}")
    assert login(client, "tanaka").status_code == 303
    for i in range(4):
        assert MSG_LOCKED not in login(client, "tanaka", f"again-{i}").text


def test_unknown_user_names_lock_too_so_locking_reveals_nothing(client: TestClient) -> None:
    for i in range(5):
        r = login(client, "nobody", f"guess-{i}")
    assert MSG_LOCKED in r.text


def test_one_client_address_is_limited_across_user_names(node: Node) -> None:
    with node.client(max_ip_failures=6) as client:
        for i in range(6):
            r = login(client, f"user{i}", "guess")
        assert MSG_LOCKED in r.text
        assert login(client, "sato").status_code == 200  # right password, refused: the address is locked
        assert [d["scope"] for k, _, d in node.events.got if k == LOCKOUT] == ["ip"]
        node.clock.advance(15 * 60 + 1)
        assert login(client, "sato").status_code == 303


def test_session_ends_after_thirty_idle_minutes(node: Node, client: TestClient) -> None:
    login(client, "tanaka")
    node.clock.advance(29 * 60)
    assert client.get("/search").status_code == 200
    node.clock.advance(29 * 60)  # activity moved the idle deadline
    assert client.get("/search").status_code == 200
    node.clock.advance(30 * 60)
    r = client.get("/search")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fsearch&expired=1"
    assert any(c.startswith(SESSION_COOKIE + "=;") and "Max-Age=0" in c for c in _set_cookies(r))
    assert MSG_EXPIRED in client.get(r.headers["location"]).text


def test_session_ends_ten_hours_after_login_however_busy(node: Node, client: TestClient) -> None:
    login(client, "tanaka")
    for _ in range(29):
        node.clock.advance(20 * 60)
        assert client.get("/search").status_code == 200
    node.clock.advance(20 * 60)  # 10 h after login
    assert client.get("/search").status_code == 303


def test_session_id_is_rotated_at_login(node: Node, client: TestClient) -> None:
    planted = "attacker-chosen-value-0123456789abcdefghijklmnop"
    client.cookies.set(SESSION_COOKIE, planted)
    r = login(client, "tanaka")
    first = _session_cookie_header(r).split(";")[0].split("=", 1)[1]
    assert first != planted
    r = login(client, "suzuki")  # logging in again from the same browser
    second = _session_cookie_header(r).split(";")[0].split("=", 1)[1]
    assert second != first
    assert client.get("/search").json()["user"] == "suzuki"
    with node.client() as other:
        other.cookies.set(SESSION_COOKIE, first)
        assert other.get("/search").status_code == 303  # the previous session is gone
        other.cookies.set(SESSION_COOKIE, planted)
        assert other.get("/search").status_code == 303


def test_logout_deletes_the_session(node: Node, client: TestClient) -> None:
    r = login(client, "tanaka")
    old = _session_cookie_header(r).split(";")[0].split("=", 1)[1]
    r = client.post("/logout", data={"csrf": session_csrf(client)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert any(c.startswith(SESSION_COOKIE + "=;") and "Max-Age=0" in c for c in _set_cookies(r))
    assert node.auth().store.session_count() == 0
    client.cookies.set(SESSION_COOKIE, old)
    assert client.get("/search").status_code == 303
    assert node.events.kinds()[-1] == LOGOUT and node.events.got[-1][1] == "tanaka"


def test_logout_without_a_session_just_shows_the_login_page(client: TestClient) -> None:
    r = client.post("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_a_removed_or_changed_account_ends_its_sessions(node: Node, client: TestClient) -> None:
    login(client, "tanaka")
    replica = next((node.data / "replica").glob("replica-*.db"))
    conn = sqlite3.connect(replica, isolation_level=None)
    try:
        conn.execute("DELETE FROM staff WHERE user = 'tanaka'")
    finally:
        conn.close()
    assert client.get("/search").status_code == 303


def test_audit_hook_gets_every_event_and_never_a_secret(node: Node, client: TestClient) -> None:
    login(client, "nobody", "typed-in-the-wrong-box")
    for i in range(5):
        login(client, "suzuki", f"secret-guess-{i}")
    r = login(client, "tanaka")
    cookie = _session_cookie_header(r).split(";")[0].split("=", 1)[1]
    client.post("/logout", data={"csrf": session_csrf(client)})
    assert node.events.kinds() == [LOGIN_FAILURE] * 6 + [LOCKOUT, LOGIN_SUCCESS, LOGOUT]
    assert node.events.got[0] == (LOGIN_FAILURE, None, {"ip": "testclient", "reason": "unknown_user"})
    assert node.events.got[1] == (LOGIN_FAILURE, "suzuki", {"ip": "testclient", "reason": "bad_password"})
    assert node.events.got[6][0:2] == (LOCKOUT, "suzuki") and node.events.got[6][2]["scope"] == "user"
    assert node.events.got[7] == (LOGIN_SUCCESS, "tanaka", {"ip": "testclient", "role": "clerk", "source": "hub"})
    dump = repr(node.events.got)
    for secret in (PASSWORD, "secret-guess", "typed-in-the-wrong-box", "nobody", cookie):
        assert secret not in dump


def test_local_emergency_account_logs_in_before_the_first_sync(node: Node) -> None:
    empty = node.data.parent / "fresh-node"
    empty.mkdir()
    add_local_user(empty, "kinkyu", "admin", "emergency-2026")
    fresh = Node(empty, node.clock, node.events)
    with fresh.client() as client:
        assert not (empty / "replica").exists()
        assert login(client, "tanaka").status_code == 200  # hub accounts are unknown here
        assert login(client, "kinkyu", "emergency-2026").status_code == 303
        assert client.get("/admin").text == "admin"
    assert node.events.got[-1] == (LOGIN_SUCCESS, "kinkyu", {"ip": "testclient", "role": "admin", "source": "local"})


def test_hub_account_wins_over_a_local_account_of_the_same_name(node: Node, client: TestClient) -> None:
    add_local_user(node.data, "tanaka", "admin", "local-password")
    assert login(client, "tanaka", "local-password").status_code == 200
    assert login(client, "tanaka").status_code == 303
    assert client.get("/search").json()["role"] == "clerk"


def test_a_broken_page_context_does_not_stop_login(node: Node) -> None:
    def broken(request: object) -> dict[str, object]:
        raise RuntimeError("status unreadable")

    auth = Auth(node.data, node.auth().config, page_context=broken, clock=node.clock)
    app = Starlette(routes=auth.routes(), middleware=[auth.middleware()])
    with TestClient(app, follow_redirects=False) as client:
        page = client.get("/login")
        assert page.status_code == 200 and "ログイン" in page.text
        r = client.post("/login", data={"csrf": form_csrf(page.text), "user": "sato", "password": PASSWORD})
        assert r.status_code == 303


def test_every_staff_role_has_a_japanese_label(node: Node, client: TestClient) -> None:
    labels = {}
    for user, role in STAFF.items():
        with node.client() as c:
            login(c, user)
            labels[role] = c.get("/search").json()["label"]
    assert labels == {"clerk": "窓口職員", "supervisor": "監督者", "admin": "管理者"}
    assert User("a", "clerk", "窓口職員").source == "hub"


def test_the_login_cookie_is_cleared_after_login(client: TestClient) -> None:
    r = login(client, "tanaka")
    assert any(c.startswith(LOGIN_COOKIE + "=;") and "Max-Age=0" in c for c in _set_cookies(r))


def test_concurrent_guesses_cannot_pass_the_limit_while_argon2_runs(node: Node) -> None:
    store = node.auth().store
    limit = Limit(5, 900, 900)
    keys = [("user", "k", limit)]
    admitted = [store.begin_attempt(keys, START) for _ in range(8)]  # none has finished yet
    assert [a.locked for a in admitted] == [False] * 5 + [True] * 3


def test_if_the_audit_log_fails_nobody_logs_in(node: Node) -> None:
    def broken(kind: str, user: str | None, detail: dict[str, object]) -> None:
        raise OSError("audit log unavailable")

    auth = Auth(node.data, node.auth().config, on_event=broken, clock=node.clock)
    app = Starlette(routes=auth.routes(), middleware=[auth.middleware()])
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as client:
        page = client.get("/login")
        r = client.post("/login", data={"csrf": form_csrf(page.text), "user": "sato", "password": PASSWORD})
        assert r.status_code == 500
    assert auth.store.session_count() == 0


def test_a_damaged_replica_pointer_leaves_local_accounts_working(node: Node) -> None:
    (node.data / "replica" / "CURRENT").write_text("../../etc/passwd\n", encoding="ascii")
    add_local_user(node.data, "kinkyu", "supervisor", "emergency-2026")
    with node.client() as client:
        assert login(client, "tanaka").status_code == 200
        assert login(client, "kinkyu", "emergency-2026").status_code == 303
