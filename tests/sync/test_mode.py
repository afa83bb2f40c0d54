"""The mode machine: hysteresis, forced offline, audit of every transition."""

from __future__ import annotations

from pathlib import Path

from edgenode.audit import AuditLog
from edgenode.sync.mode import ModeMachine
from edgenode.sync.state import NodeState


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _machine(tmp_path: Path) -> tuple[ModeMachine, Clock, AuditLog]:
    clock = Clock()
    audit = AuditLog(tmp_path / "node.db")
    return ModeMachine(NodeState(tmp_path / "node.db"), audit, offline_after=8.0, clock=clock), clock, audit


def test_one_lost_probe_does_not_flip_to_offline(tmp_path: Path) -> None:
    m, clock, _ = _machine(tmp_path)
    clock.t += 2
    m.hub_failed("ReadTimeout")
    assert m.mode == "online"
    clock.t += 2
    m.hub_answered()
    clock.t += 7
    m.hub_failed("ReadTimeout")
    assert m.mode == "online"


def test_silence_beyond_the_threshold_goes_offline_then_reconciles_then_online(tmp_path: Path) -> None:
    m, clock, audit = _machine(tmp_path)
    for _ in range(5):
        clock.t += 2
        m.hub_failed("ConnectError")
    assert m.mode == "offline"
    m.hub_answered()
    assert m.mode == "offline"  # one answer is not enough
    m.hub_answered()
    assert m.mode == "reconciling"
    m.caught_up()
    assert m.mode == "online"
    kinds = [(e["kind"], e["actor"]) for e in audit.entries()]
    assert kinds == [("mode", None)] * 3
    assert audit.verify()[1] is None
    assert NodeState(tmp_path / "node.db").all()["mode"] == "online"


def test_forced_offline_holds_until_a_supervisor_releases(tmp_path: Path) -> None:
    m, clock, audit = _machine(tmp_path)
    m.force_offline("kanri", "基幹系障害")
    assert m.mode == "offline" and m.forced
    for _ in range(5):
        m.hub_answered()
        m.caught_up()
    assert m.mode == "offline"
    m.release("kanri")
    assert m.mode == "reconciling"
    m.caught_up()
    assert m.mode == "online"
    actors = [e["actor"] for e in audit.entries()]
    assert actors.count("kanri") == 2
    # a restarted node remembers that it was forced offline
    m.force_offline("kanri", "再度")
    again = ModeMachine(NodeState(tmp_path / "node.db"), audit, clock=clock)
    assert again.mode == "offline" and again.forced
