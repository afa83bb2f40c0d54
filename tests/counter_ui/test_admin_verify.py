"""The admin page's verify against a real hub process: runs in the background, the result is shown."""

from __future__ import annotations

from pathlib import Path

from edgenode.audit import AuditLog
from edgenode.counter_ui.adminview import VerifyRunner, admin_facts
from edgenode.sync.nodeconfig import load_node_settings
from edgenode.sync.state import NodeState
from edgenode.sync.syncer import node_status
from tests.integration.conftest import HubProc, make_node, run
from tests.integration.conftest import hub as hub  # the real hub process fixture


def test_a_verify_started_from_the_admin_page_records_an_identical_copy(hub: HubProc, tmp_path: Path) -> None:
    data = make_node(tmp_path, hub.url, hub.token("node1"))
    run("node", "sync", "--data", str(data), "--once")
    hub.simulate(6, seed=2)
    settings = load_node_settings(data, env={})
    audit = AuditLog(data / "node.db", settings["node_id"])
    runner = VerifyRunner(data, settings, audit)
    assert runner.start("sato")
    assert not runner.start("sato")  # one at a time
    assert runner.thread is not None
    runner.thread.join(timeout=120)
    assert not runner.running()
    st = node_status(data, settings)
    detail = st["last_verify_detail"]
    assert detail["identical"] and detail["seq"] == 6 and detail["by"] == "sato"
    assert st["last_verify_ok"] is True and st["cursor"] == 6  # it caught up before comparing
    assert not NodeState(data / "node.db").all()["verify_running"]
    facts = admin_facts(data, settings, st, audit, runner.running())
    assert facts["verify_running"] is False and facts["verify_error"] is None
    kinds = [e["kind"] for e in audit.entries()]
    assert kinds[:2] == ["verify_done", "verify_started"]
    assert runner.start("sato")  # and it can run again
    runner.thread.join(timeout=120)
