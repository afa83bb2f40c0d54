"""The node admin page over a real node folder: facts, charts, buttons, roles and CSRF."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgenode.audit import AuditLog
from edgenode.counter_ui.app import create_app
from edgenode.errors import HubUnreachable
from edgenode.sync.laghistory import LagHistory, Sample
from edgenode.sync.nodeconfig import load_node_settings
from edgenode.sync.state import NodeState
from edgenode.sync.syncer import Syncer
from tests.counter_ui.conftest import TestClient, form_csrf
from tests.counter_ui.test_counter_pages import Counter, _build

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[Counter]:
    c = _build(tmp_path)
    with c.client:
        yield c


def _svgs(html: str) -> list[ET.Element]:
    out = []
    rest = html
    while "<svg" in rest:
        start = rest.index("<svg")
        end = rest.index("</svg>", start) + len("</svg>")
        out.append(ET.fromstring(rest[start:end]))
        rest = rest[end:]
    return out


def test_the_admin_page_shows_the_nodes_facts_and_both_charts(counter: Counter) -> None:
    data = counter.data
    now = time.time()
    history = LagHistory(data / "node.db")
    for k in range(120):  # two hours of samples a minute apart, the middle half-hour offline
        at = now - 7200 + 60 * k
        mode = "offline" if 30 <= k < 60 else "online"
        history.record(Sample(at, 60 * k, 60 * k, 0, 0.0, mode, 60))
    settings = load_node_settings(data, env={}, flags={"cookie_secure": False})
    Syncer(data, settings).record_error(HubUnreachable("hub not reachable (ConnectError)"))
    counter.login("sato")
    r = counter.client.get("/admin")
    assert r.status_code == 200
    page = r.text
    for words in ("運用状態", "適用速度", "送信待ち", "空き容量", "バックアップ", "連鎖は正常", "照合", "今すぐ同期"):
        assert words in page, words
    assert "HubUnreachable: hub not reachable (ConnectError)" in page
    assert "check the WAN link and the hub&#39;s address" in page  # the hint, escaped
    assert "1.00 件/秒" in page  # 60 transactions in each 60 s between samples
    charts = _svgs(page)
    assert [c.find(f"{SVG}title").text for c in charts] == [  # type: ignore[union-attr]
        "過去24時間の遅れ (lag, last 24 h, JST)",
        "過去7日間の遅れ (lag, last 7 days, JST)",
    ]
    assert all(c.find(f".//{SVG}rect[@class='offline']") is not None for c in charts)
    assert "<script" not in page


def test_the_verify_button_is_for_admins_and_keeps_csrf(counter: Counter) -> None:
    counter.login("suzuki")
    page = counter.client.get("/admin").text
    assert "/admin/verify" not in page  # a supervisor does not get the button
    r = counter.client.post("/admin/verify", data={"csrf": form_csrf(page)})
    assert r.status_code == 403
    counter.client.post("/logout", data={"csrf": form_csrf(page)})
    counter.login("sato")
    page = counter.client.get("/admin").text
    assert counter.client.post("/admin/verify", data={}).status_code == 403  # no token, no verify
    assert not NodeState(counter.data / "node.db").all().get("verify_running")


def test_verify_runs_in_the_background_and_its_failure_is_shown(counter: Counter) -> None:
    counter.login("sato")
    csrf = form_csrf(counter.client.get("/admin").text)
    r = counter.client.post("/admin/verify", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/admin?done=verify_started"
    # the node's hub address is a closed port: the verify fails, and the page says so
    deadline = time.monotonic() + 60
    while NodeState(counter.data / "node.db").all().get("verify_running"):
        assert time.monotonic() < deadline, "verify never finished"
        time.sleep(0.1)
    page = counter.client.get("/admin").text
    assert "照合の失敗" in page and "HubUnreachable" in page
    kinds = [e["kind"] for e in AuditLog(counter.data / "node.db").entries()]
    assert "verify_started" in kinds and "verify_failed" in kinds


def test_sync_now_wakes_the_loop_it_was_given(tmp_path: Path) -> None:
    c = _build(tmp_path)
    woken: list[bool] = []
    settings = load_node_settings(c.data, env={}, flags={"cookie_secure": False})
    client = TestClient(create_app(c.data, settings, wake=lambda: woken.append(True)), follow_redirects=False)
    with client:
        c.client = client
        c.login("suzuki")
        csrf = form_csrf(client.get("/admin").text)
        assert client.post("/admin/sync", data={}).status_code == 403
        assert woken == []
        r = client.post("/admin/sync", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/admin?done=sync_requested"
        assert woken == [True]
        assert "同期ループを起こしました" in client.get(r.headers["location"]).text


def test_sync_now_without_a_loop_says_so(counter: Counter) -> None:
    counter.login("suzuki")
    csrf = form_csrf(counter.client.get("/admin").text)
    r = counter.client.post("/admin/sync", data={"csrf": csrf})
    assert r.headers["location"] == "/admin?done=no_sync_loop"
    assert "同期ループが動いていません" in counter.client.get(r.headers["location"]).text


def test_a_broken_audit_chain_is_called_broken(counter: Counter) -> None:
    import sqlite3

    counter.login("sato")  # the login itself is audited
    conn = sqlite3.connect(counter.data / "node.db")
    conn.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1")
    conn.commit()
    conn.close()
    page = counter.client.get("/admin").text
    assert "改ざんを検出 BROKEN" in page and "連鎖は正常" not in page


def test_the_staleness_alarm_is_impossible_to_miss(counter: Counter) -> None:
    st = NodeState(counter.data / "node.db")
    cursor = Syncer(counter.data, load_node_settings(counter.data, env={})).status()["cursor"]
    # the cursor last moved 20 minutes ago, when the hub's head was where the cursor is; the head moved since
    st.update(cursor_seen=cursor, cursor_moved_at=time.time() - 1200, head_at_cursor_move=cursor, hub_head=cursor + 5)
    counter.login("suzuki")
    page = counter.client.get("/admin").text
    assert 'role="alert"' in page and "同期停滞の警報" in page and "発報中 ALARM" in page
    assert "20分" in page
    metrics = counter.client.get("/metrics").text
    assert "edgenode_node_stale_alarm 1.0" in metrics
