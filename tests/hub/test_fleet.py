"""The fleet view: nodes classed against the tenant's head, troubled first, any heartbeat body survives."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pytest

from edgenode.durable import parse_time
from edgenode.hub.fleet import fleet, render_html
from edgenode.hub.store import HubStore
from edgenode.settings import HUB_SETTINGS, load
from tests.hub.test_store import _commit_people

LG, OTHER = "454214", "454061"
SETTINGS = load(HUB_SETTINGS, None, {}, {"fleet_silent_after": 300.0, "fleet_behind_changes": 50})


def _status(cursor: int, **over: object) -> dict[str, object]:
    return {
        "mode": "online",
        "cursor": cursor,
        "lag_seconds": 0.0,
        "queue_depth": 0,
        "queue": {"by_state": {"pending": 0}, "oldest_pending_at": None},
        "last_verify_ok": True,
        "version": "0.1.0",
        **over,
    }


@pytest.fixture()
def store(tmp_path: Path) -> HubStore:
    s = HubStore(tmp_path / "hub")
    s.create()
    _commit_people(s.add_tenant(LG, "門川町"), 1, 100)
    s.add_tenant(OTHER, "延岡市")
    return s


def test_nodes_are_classed_and_the_troubled_come_first(store: HubStore) -> None:
    store.record_heartbeat(LG, "fine", _status(100))
    store.record_heartbeat(LG, "behind", _status(40))
    store.record_heartbeat(LG, "diverged", _status(100, last_verify_ok=False))
    store.record_heartbeat(LG, "stuck", _status(95, stale={"alarm": True, "cursor_still_seconds": 1000}))
    store.record_heartbeat(OTHER, "quiet", _status(0))
    seen = max(parse_time(n["last_seen_at"]) for n in store.nodes())
    # 370 s later "quiet" and "stuck" had not reported again (the store stamps heartbeats with its
    # own clock, so the test moves those two stamps back rather than waiting)
    conn = store.backend.hub_conn()
    conn.execute(
        "UPDATE node SET last_seen_at = ? WHERE node_id IN ('quiet', 'stuck')",
        ((seen - _dt.timedelta(seconds=370)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),),
    )
    conn.close()
    doc = fleet(store, SETTINGS, now=seen)
    order = [(n["node_id"], n["class"]) for n in doc["nodes"]]
    assert order[0] == ("diverged", "diverged")
    assert {order[1], order[2]} == {("quiet", "silent"), ("stuck", "silent")}
    assert order[3:] == [("behind", "behind"), ("fine", "ok")]
    behind = next(n for n in doc["nodes"] if n["node_id"] == "behind")
    assert behind["hub_head"] == 100 and behind["lag_changes"] == 60
    assert doc["counts"] == {"diverged": 1, "silent": 2, "behind": 1, "ok": 1}
    stuck = next(n for n in doc["nodes"] if n["node_id"] == "stuck")
    assert stuck["reasons"] == ["silent", "behind"] and stuck["stale_alarm"]


def test_the_view_can_be_limited_to_one_tenant(store: HubStore) -> None:
    store.record_heartbeat(LG, "a", _status(100))
    store.record_heartbeat(OTHER, "b", _status(0))
    doc = fleet(store, SETTINGS, lg_code=OTHER)
    assert [n["node_id"] for n in doc["nodes"]] == ["b"]
    assert doc["tenants"] == {OTHER: "延岡市"} and doc["heads"] == {OTHER: 0}
    assert "門川町" not in render_html(doc)


def test_a_heartbeat_with_wrong_types_shows_unknowns_not_an_error(store: HubStore) -> None:
    store.record_heartbeat(LG, "odd", {"cursor": "12", "lag_seconds": "NaN", "queue": [], "stale": 3, "version": 7})
    [n] = fleet(store, SETTINGS)["nodes"]
    assert n["cursor"] is None and n["lag_changes"] is None and n["lag_seconds"] is None
    assert n["version"] is None and n["class"] == "ok"
    html = render_html(fleet(store, SETTINGS))
    assert "odd" in html and "<script" not in html


def test_the_page_escapes_what_nodes_send(store: HubStore) -> None:
    store.record_heartbeat(LG, "n1", _status(100, version="<b>1</b>", mode="<i>"))
    html = render_html(fleet(store, SETTINGS))
    assert "&lt;b&gt;1&lt;/b&gt;" in html and "<b>1</b>" not in html
