"""The counter UI over a real node folder (replica bootstrapped from a real hub snapshot)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgenode.audit import AuditLog
from edgenode.counter_ui.app import create_app
from edgenode.hub.hub import Hub
from edgenode.sync.client import DirectoryFeedClient
from edgenode.sync.nodeconfig import init_node, load_node_settings, write_certs_template
from edgenode.sync.state import NodeState
from edgenode.sync.syncer import Syncer
from tests.counter_ui.conftest import TestClient, form_csrf

LG = "454214"
PW = "madoguchi-2026"


@dataclass
class Counter:
    hub: Hub
    data: Path
    client: TestClient
    atena: str  # a resident who lives with others

    def login(self, user: str) -> None:
        page = self.client.get("/login")
        r = self.client.post("/login", data={"csrf": form_csrf(page.text), "user": user, "password": PW})
        assert r.status_code == 303, r.text

    def csrf(self) -> str:
        return form_csrf(self.client.get(f"/request/{self.atena}").text)

    def request_form(self, **over: str | list[str]) -> dict[str, str | list[str]]:
        form: dict[str, str | list[str]] = {
            "csrf": self.csrf(),
            "kind": "住民票の写し",
            "scope": "世帯全員",
            "layout": "世帯連記式",
            "requester": "本人",
            "omit": ["世帯主・続柄", "本籍・筆頭者", "個人番号", "住民票コード"],
            "copies": "1",
            "id_document": "マイナンバーカード",
            "purpose": "",
        }
        form.update(over)
        return form


def _build(tmp_path: Path, restrict_household: bool = False) -> Counter:
    hub = Hub(tmp_path / "hub")
    hub.init_tenant(LG, "門川町", residents=80, seed=5)
    for user, role in (("tanaka", "clerk"), ("suzuki", "supervisor"), ("sato", "admin")):
        hub.add_user(LG, user, role, PW)
    lines = [json.loads(x) for x in hub.export(LG)]
    sizes: dict[str, int] = {}
    for rec in lines:
        sizes[rec["household_no"]] = sizes.get(rec["household_no"], 0) + 1
    person = next(r for r in lines if sizes[r["household_no"]] >= 2 and r["relationship"] == "世帯主")
    if restrict_household:
        hub.restrict(LG, "支援措置", household_no=person["household_no"])
    snap = tmp_path / "s.ensnap"
    hub.snapshot_file(LG, snap)
    data = tmp_path / "node"
    init_node(data, "http://127.0.0.1:9", "en1." + "x" * 43, "honcho-1", lg_code=LG, hub_key=hub.store.key().public_b64)
    write_certs_template(data, LG, "門川町", "門川　一郎")
    settings = load_node_settings(data, env={}, flags={"cookie_secure": False})
    Syncer(data, settings).bootstrap(DirectoryFeedClient(snap))
    client = TestClient(create_app(data, settings), follow_redirects=False)
    return Counter(hub, data, client, person["atena_no"])


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[Counter]:
    c = _build(tmp_path)
    with c.client:
        yield c


GETS = ["/", "/person/{atena}", "/request/{atena}", "/issuances", "/intake/new", "/admin", "/admin/queue"]
POSTS = ["/request/{atena}/preview", "/request/{atena}/issue", "/issuances/x/void", "/intake/new", "/admin/mode"]


def test_every_page_needs_a_login_and_every_post_a_session(counter: Counter) -> None:
    for path in GETS:
        r = counter.client.get(path.format(atena=counter.atena))
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    for path in POSTS:
        assert counter.client.post(path.format(atena=counter.atena), data={}).status_code == 403, path
    assert counter.client.get("/api/status").status_code == 200
    assert counter.client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "user, allowed",
    [
        ("tanaka", {"/", "/person/{atena}", "/request/{atena}", "/issuances", "/intake/new"}),
        ("suzuki", set(GETS)),
        ("sato", set(GETS)),
    ],
)
def test_roles_are_enforced_on_every_page(counter: Counter, user: str, allowed: set[str]) -> None:
    counter.login(user)
    for path in GETS:
        r = counter.client.get(path.format(atena=counter.atena))
        assert r.status_code == (200 if path in allowed else 403), (user, path, r.status_code)
    if user == "tanaka":
        csrf = counter.csrf()
        r = counter.client.post("/admin/mode", data={"csrf": csrf, "action": "force_offline", "reason": "x"})
        assert r.status_code == 403


def test_a_post_without_the_sessions_csrf_token_is_refused(counter: Counter) -> None:
    counter.login("tanaka")
    form = counter.request_form()
    form["csrf"] = "forged"
    assert counter.client.post(f"/request/{counter.atena}/issue", data=form).status_code == 403


def test_a_clerk_issues_a_household_copy_and_it_is_recorded(counter: Counter) -> None:
    counter.login("tanaka")
    page = counter.client.get(f"/person/{counter.atena}")
    assert "証明書を請求する" in page.text
    preview = counter.client.post(f"/request/{counter.atena}/preview", data=counter.request_form())
    assert preview.status_code == 200 and "手数料" in preview.text and "300 円" in preview.text
    r = counter.client.post(f"/request/{counter.atena}/issue", data=counter.request_form())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
    day = counter.client.get("/issuances").text
    assert re.search(r"件数 <strong>1</strong> 件", day) and "300 円" in day
    serial = re.search(r'<div class="serial">([^<]+)</div>', day)
    assert serial and "門川町" in serial.group(1) and "honcho-1" in serial.group(1)
    issuance_id = r.headers["x-edgenode-issuance"]
    v = counter.client.post(f"/issuances/{issuance_id}/void", data={"csrf": counter.csrf(), "reason": "印刷かすれ"})
    assert v.status_code == 303
    assert re.search(r"件数 <strong>0</strong> 件", counter.client.get("/issuances").text)
    kinds = [e["kind"] for e in AuditLog(counter.data / "node.db").entries()]
    assert "issue" in kinds and "void" in kinds and "login_success" in kinds


def test_third_party_requests_on_stale_data_need_a_supervisor(counter: Counter) -> None:
    NodeState(counter.data / "node.db").update(mode="offline", last_contact_at="2026-01-01T00:00:00.000000Z")
    counter.login("tanaka")
    form = counter.request_form(
        requester="第三者", purpose="債権回収のため", scope="世帯の一部", layout="個人票", person=[counter.atena]
    )
    r = counter.client.post(f"/request/{counter.atena}/issue", data=form)
    assert r.status_code == 422 and "監督者の承認が必要" in r.text
    form = {**form, "csrf": counter.csrf(), "approver": "tanaka", "approver_password": PW}
    assert counter.client.post(f"/request/{counter.atena}/issue", data=form).status_code == 422  # not oneself
    form = {**form, "csrf": counter.csrf(), "approver": "suzuki", "approver_password": PW}
    r = counter.client.post(f"/request/{counter.atena}/issue", data=form)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    issue = next(e for e in AuditLog(counter.data / "node.db").entries() if e["kind"] == "issue")
    assert json.loads(issue["detail"])["approved_by"] == "suzuki"


def test_a_supervisor_forces_offline_and_releases(counter: Counter) -> None:
    counter.login("suzuki")
    csrf = form_csrf(counter.client.get("/admin").text)
    r = counter.client.post("/admin/mode", data={"csrf": csrf, "action": "force_offline", "reason": "基幹系障害"})
    assert r.status_code == 303
    st = counter.client.get("/api/status").json()
    assert st["mode"] == "offline" and st["forced_offline"]
    page = counter.client.get("/").text
    assert "縮退運転中" in page and "強制縮退" in page
    csrf = form_csrf(counter.client.get("/admin").text)
    counter.client.post("/admin/mode", data={"csrf": csrf, "action": "release"})
    assert counter.client.get("/api/status").json()["forced_offline"] is False
    actors = [e["actor"] for e in AuditLog(counter.data / "node.db").entries() if e["kind"] == "mode"]
    assert actors.count("suzuki") == 2


def test_a_household_under_support_measures_cannot_get_a_certificate(tmp_path: Path) -> None:
    c = _build(tmp_path, restrict_household=True)
    with c.client:
        c.login("tanaka")
        page = c.client.get(f"/person/{c.atena}").text
        assert "交付制限" in page and "支援措置" in page and "証明書を請求する" not in page
        # 照会 is restricted as well: neither the address nor the household is shown
        rec = json.loads(next(x for x in c.hub.export(LG) if c.atena in x))
        assert rec["address"] not in page and "照会の制限" in page
        hits = c.client.get("/", params={"q": c.atena}).text
        assert "（照会制限）" in hits and rec["address"] not in hits
        assert c.client.get(f"/intake/{c.atena}").status_code == 403  # the intake form lists the household
        r = c.client.post(f"/request/{c.atena}/issue", data=c.request_form())
        assert r.status_code == 422 and "支援措置" in r.text
        assert not any(e["kind"] == "issue" for e in AuditLog(c.data / "node.db").entries())


def test_guessing_a_supervisors_password_in_the_approval_box_locks_it(counter: Counter) -> None:
    NodeState(counter.data / "node.db").update(mode="offline", last_contact_at="2026-01-01T00:00:00.000000Z")
    counter.login("tanaka")
    base = counter.request_form(
        requester="第三者", purpose="債権回収のため", scope="世帯の一部", layout="個人票", person=[counter.atena]
    )
    for guess in range(5):
        form = {**base, "csrf": counter.csrf(), "approver": "suzuki", "approver_password": f"guess-{guess}"}
        assert counter.client.post(f"/request/{counter.atena}/issue", data=form).status_code == 422
    form = {**base, "csrf": counter.csrf(), "approver": "suzuki", "approver_password": PW}
    r = counter.client.post(f"/request/{counter.atena}/issue", data=form)
    assert r.status_code == 422, "the right password must not work once the account is locked"
    kinds = [e["kind"] for e in AuditLog(counter.data / "node.db").entries()]
    assert "lockout" in kinds and "issue" not in kinds


def test_a_removal_notice_is_taken_in_and_queued_without_touching_the_replica(counter: Counter) -> None:
    counter.login("tanaka")
    before = counter.client.get(f"/person/{counter.atena}").text
    page = counter.client.get(f"/intake/{counter.atena}")
    assert page.status_code == 200 and "受付のみ" in page.text
    form = {
        "csrf": form_csrf(page.text),
        "type": "転出届",
        "person": [counter.atena],
        "date": "令和8年12月1日",
        "new_address": "福岡県福岡市中央区天神1丁目1番1号",
        "notifier": "本人",
    }
    r = counter.client.post(f"/intake/{counter.atena}", data=form)
    assert r.status_code == 200 and "受け付けました" in r.text
    assert counter.client.get(f"/person/{counter.atena}").text == before  # the replica did not change
    st = counter.client.get("/api/status").json()
    assert st["queue"]["by_state"]["pending"] >= 1
    bad = {**form, "csrf": form_csrf(r.text), "new_address": ""}
    assert counter.client.post(f"/intake/{counter.atena}", data=bad).status_code == 422


def test_a_move_in_notice_is_queued_exactly_as_typed_with_its_birth_date_read(counter: Counter) -> None:
    import json

    from edgenode.durable import open_db

    counter.login("tanaka")
    page = counter.client.get(f"/intake/new?join={counter.atena}")
    assert page.status_code == 200 and "既存の世帯に加わります" in page.text
    form = {
        "csrf": form_csrf(page.text),
        "join": counter.atena,
        "name": ["髙橋\u3000葛󠄀子", ""],  # 外字-prone 氏名 with an IVS: kept byte-exact
        "kana": ["タカハシ\u3000カツコ", ""],
        "birth_date": ["平成2年4月1日", ""],
        "sex": ["女", ""],
        "relationship": ["妻", ""],
        "date": "令和8年11月27日",
        "prior_address": "福岡県福岡市中央区天神1丁目1番1号",
        "new_address": "宮崎県東臼杵郡門川町大字加草1番地",
        "notifier": "本人",
    }
    r = counter.client.post("/intake/new", data=form)
    assert r.status_code == 200 and "受け付けました" in r.text
    conn = open_db(counter.data / "node.db")
    row = conn.execute("SELECT item FROM outbox WHERE kind = 'intake'").fetchone()
    conn.close()
    item = json.loads(row[0])
    (newcomer,) = item["payload"]["newcomers"]
    assert newcomer["name"] == "髙橋\u3000葛󠄀子" and newcomer["birth_date_iso"] == "1990-04-01"
    assert item["payload"]["type"] == "転入届" and item["schema"] == 2 and "as_of" in item["base"]
    day = counter.client.get("/issuances").text
    assert "本日の届出受付" in day and "転入届" in day and "送信待ち" in day
    assert counter.atena in {p["atena_no"] for p in item["payload"]["persons"]}  # the household joined, as seen
    bad = {**form, "csrf": form_csrf(r.text), "birth_date": ["平成2年", ""]}
    r = counter.client.post("/intake/new", data=bad)
    assert r.status_code == 422 and "年月日まで" in r.text
    assert "髙橋" in r.text  # what the clerk typed is kept in the form


def test_the_quarantine_page_shows_what_the_hub_refused_and_why(counter: Counter) -> None:
    from edgenode.outbox import Outbox

    counter.login("tanaka")
    r = counter.client.post(f"/request/{counter.atena}/issue", data=counter.request_form())
    assert r.status_code == 200
    box = Outbox(counter.data / "node.db")
    issued = next(i for i in box.pending() if i["kind"] == "issuance")
    box.record([{"key": issued["key"], "status": "rejected", "reason": "item schema 9 is newer than this hub"}])
    assert counter.client.get("/admin/queue").status_code == 403  # a clerk does not manage the queue
    counter.client.cookies.clear()
    counter.login("suzuki")
    page = counter.client.get("/admin/queue").text
    assert "item schema 9 is newer than this hub" in page and "却下（保留）" in page
    assert all(s in page for s in issued["payload"]["serials"])
