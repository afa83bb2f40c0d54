"""The datacenter staff pages: login, who sees which municipality, decisions, notices, CSV."""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from edgenode.hub.hub import Hub
from edgenode.hub.staff import add_operator
from edgenode.hub.uploads import intakes, issuances, receive
from edgenode.settings import HUB_SETTINGS, load
from tests.counter_ui.conftest import form_csrf
from tests.hub.test_store import _commit_people
from tests.outbox_items import queue_item
from tests.records import person

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

KADOGAWA, CHIYODA = "454214", "131016"
PW = "datacenter-2026"


@pytest.fixture
def hub(tmp_path: Path, hub_db: str) -> Iterator[tuple[Hub, TestClient]]:
    h = Hub(tmp_path / "hub", load(HUB_SETTINGS, None, {}, {"db": hub_db}))
    h.init_tenant(KADOGAWA, "門川町")
    h.init_tenant(CHIYODA, "千代田区")
    h.add_user(KADOGAWA, "suzuki", "supervisor", PW)
    h.add_user(KADOGAWA, "tanaka", "clerk", PW)
    h.add_user(CHIYODA, "kato", "admin", PW)
    add_operator(h.data, "dc-ops", "admin", PW)
    h.store.record_heartbeat(KADOGAWA, "honcho-1", {"mode": "online", "cursor": 3, "lag_changes": 0})
    h.store.record_heartbeat(CHIYODA, "kudan-1", {"mode": "offline", "cursor": 9, "lag_changes": 4})
    with TestClient(h.app(), base_url="http://hub.test", follow_redirects=False) as client:
        yield h, client


def login(client: TestClient, user: str, password: str = PW) -> Any:
    page = client.get("/staff/login")
    return client.post(
        "/staff/login", data={"csrf": form_csrf(page.text), "user": user, "password": password, "next": "/staff"}
    )


def _queue(tmp_path: Path, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return queue_item(tmp_path / "node.db", kind, payload)


def test_the_pages_need_a_staff_login_while_the_node_api_does_not_change(hub: tuple[Hub, TestClient]) -> None:
    _, client = hub
    for path in ("/staff", f"/staff/{KADOGAWA}", "/fleet", "/fleet.json", f"/staff/{KADOGAWA}/issuances.csv"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/login"), path
    assert client.get("/v1/hub").status_code == 200  # the node API is not behind the staff login
    assert client.get(f"/v1/tenants/{KADOGAWA}/feed").status_code == 401  # and keeps its own bearer auth
    assert login(client, "tanaka@" + KADOGAWA).status_code == 200  # a clerk cannot log in here
    assert client.get("/staff").status_code == 303


def test_a_towns_supervisor_sees_only_that_town(hub: tuple[Hub, TestClient]) -> None:
    _, client = hub
    r = login(client, f"suzuki@{KADOGAWA}")
    assert r.status_code == 303 and r.headers["location"] == "/staff"
    home = client.get("/staff")
    assert home.status_code == 200 and "門川町" in home.text and "千代田区" not in home.text
    assert client.get(f"/staff/{CHIYODA}").status_code == 404
    assert client.get(f"/staff/{CHIYODA}/issuances.csv").status_code == 404
    fleet = client.get("/fleet.json").json()
    assert [n["node_id"] for n in fleet["nodes"]] == ["honcho-1"] and list(fleet["tenants"]) == [KADOGAWA]
    assert "kudan-1" not in client.get("/fleet").text
    client.cookies.clear()
    assert login(client, f"suzuki@{CHIYODA}").status_code == 200  # the same name in another town is nobody


def test_an_operator_sees_every_town_and_the_whole_fleet(hub: tuple[Hub, TestClient]) -> None:
    _, client = hub
    assert login(client, "dc-ops").status_code == 303
    home = client.get("/staff").text
    assert "門川町" in home and "千代田区" in home
    assert {n["node_id"] for n in client.get("/fleet.json").json()["nodes"]} == {"honcho-1", "kudan-1"}


def test_a_conflict_is_decided_on_the_page_with_a_note_and_csrf(hub: tuple[Hub, TestClient], tmp_path: Path) -> None:
    h, client = hub
    tenant = h.store.tenant(KADOGAWA)
    _commit_people(tenant, 1, 2)
    stale = {"atena_no": person(5)["atena_no"], "rireki_no": 1}  # nobody has this record at the datacenter
    item = _queue(tmp_path, "intake", {"id": "in-1", "type": "転出届", "persons": [stale], "newcomers": []})
    assert receive(tenant, "honcho-1", [item])[0]["status"] == "conflict"
    login(client, f"suzuki@{KADOGAWA}")
    page = client.get(f"/staff/{KADOGAWA}")
    assert page.status_code == 200 and stale["atena_no"] in page.text and "記録なし" in page.text
    url = f"/staff/{KADOGAWA}/intakes/in-1"
    assert client.post(url, data={"decision": "reject", "note": "本人に確認"}).status_code == 403  # no CSRF token
    assert client.post(url, data={"csrf": form_csrf(page.text), "decision": "reject", "note": ""}).status_code == 422
    r = client.post(
        url, data={"csrf": form_csrf(page.text), "decision": "reject", "note": "本人に確認、転出は取り下げ"}
    )
    assert r.status_code == 303
    (row,) = intakes(tenant)
    assert (row["status"], row["resolved_by"], row["note"]) == (
        "rejected",
        f"suzuki@{KADOGAWA}",
        "本人に確認、転出は取り下げ",
    )
    again = client.post(url, data={"csrf": form_csrf(page.text), "decision": "accept", "note": "やはり受理"})
    assert again.status_code == 409


def test_notices_are_listed_until_recorded_as_sent_and_the_csv_is_safe_to_open(
    hub: tuple[Hub, TestClient], tmp_path: Path
) -> None:
    h, client = hub
    tenant = h.store.tenant(KADOGAWA)
    base = {"issued_at": "2026-11-27T01:00:00.000000Z", "day": "2026-11-27", "kind": "住民票の写し", "subjects": []}
    proxy = _queue(
        tmp_path, "issuance", {**base, "id": "iss-1", "requester": "代理人", "purpose": "=HYPERLINK(1)", "fee": 300}
    )
    own = _queue(tmp_path, "issuance", {**base, "id": "iss-2", "requester": "本人", "fee": 300})
    assert [v["status"] for v in receive(tenant, "honcho-1", [proxy, own])] == ["accepted", "accepted"]
    login(client, f"suzuki@{KADOGAWA}")
    page = client.get(f"/staff/{KADOGAWA}")
    assert f"/staff/{KADOGAWA}/notices/iss-1" in page.text and "/notices/iss-2" not in page.text
    assert "600" in page.text  # the day's fee total for cash reconciliation
    r = client.post(f"/staff/{KADOGAWA}/notices/iss-1", data={"csrf": form_csrf(page.text), "note": "郵送"})
    assert r.status_code == 303
    rows = {r["id"]: r for r in issuances(tenant)}
    assert rows["iss-1"]["notified_by"] == f"suzuki@{KADOGAWA}" and rows["iss-2"]["notified_at"] is None
    assert "/notices/iss-1" not in client.get(f"/staff/{KADOGAWA}").text
    csv_resp = client.get(f"/staff/{KADOGAWA}/issuances.csv")
    assert csv_resp.headers["content-type"].startswith("text/csv") and csv_resp.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(csv_resp.content.decode("utf-8-sig"))))
    assert [r["id"] for r in table] == ["iss-1", "iss-2"]
    assert table[0]["purpose"] == "'=HYPERLINK(1)"  # a formula typed at the counter stays text
