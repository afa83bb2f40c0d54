from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edgenode.audit import AuditLog


def test_an_intact_chain_verifies(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "node.db")
    for i in range(5):
        log.append("mode", "sato", {"to": "offline", "n": i})
    assert log.verify() == (5, None)


@pytest.mark.parametrize(
    "tamper, reason",
    [
        ('UPDATE audit_log SET detail = \'{"n":9,"to":"online"}\' WHERE seq = 3', "altered"),
        ("DELETE FROM audit_log WHERE seq = 2", "missing"),
        ("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4", "altered"),
    ],
)
def test_removal_or_alteration_of_an_entry_is_detected(tmp_path: Path, tamper: str, reason: str) -> None:
    log = AuditLog(tmp_path / "node.db")
    for i in range(5):
        log.append("mode", "sato", {"to": "offline", "n": i})
    conn = sqlite3.connect(tmp_path / "node.db")
    conn.execute(tamper)
    conn.commit()
    conn.close()
    _, problem = log.verify()
    assert problem is not None and reason in problem.reason


def test_secrets_are_refused_in_details(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        AuditLog(tmp_path / "node.db").append("login", "sato", {"password": "x"})
