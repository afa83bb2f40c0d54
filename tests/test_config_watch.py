"""Reloading node.toml and certs.toml in a running node: applied, deferred to a restart, or refused."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgenode.audit import AuditLog
from edgenode.config_watch import RUNTIME, ConfigReloader, LiveSettings, apply_log_level
from edgenode.issuance import IssuanceService
from edgenode.settings import NODE_SETTINGS
from edgenode.sync.nodeconfig import init_node, load_node_settings, write_certs_template
from edgenode.sync.state import NodeState
from edgenode.sync.syncer import Syncer

LG = "454214"


@dataclass
class Node:
    data: Path
    live: LiveSettings
    reloader: ConfigReloader
    changes: list[str]

    def edit(self, extra: str, **replace: str) -> None:
        """node.toml as `node init` wrote it, some values replaced and `extra` lines added."""
        text = self.original
        for name, value in replace.items():
            line = next(x for x in text.splitlines() if x.startswith(f"{name} = "))
            text = text.replace(line, f"{name} = {value}")
        (self.data / "node.toml").write_text(text + extra, encoding="utf-8")

    @property
    def original(self) -> str:
        return (self.data / "node.toml.orig").read_text(encoding="utf-8")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    from edgenode.signing import HubKey

    key = HubKey.load_or_create(tmp_path / "k.pem").public_b64
    data = tmp_path / "node"
    init_node(data, "http://127.0.0.1:9", "en1." + "x" * 43, "node1", lg_code=LG, hub_key=key)
    (data / "node.toml.orig").write_text((data / "node.toml").read_text(encoding="utf-8"), encoding="utf-8")
    env = {"EDGENODE_FEED_MAX_BYTES": "65536"}
    flags = {"port": 8123, "host": None}
    live = LiveSettings(load_node_settings(data, env=env, flags=flags))
    changes: list[str] = []
    reloader = ConfigReloader(
        data,
        live,
        env=env,
        flags=flags,
        state=NodeState(data / "node.db"),
        audit=AuditLog(data / "node.db", "node1"),
        on_change=lambda: changes.append("called"),
    )
    yield Node(data, live, reloader, changes)


def test_nothing_happens_while_the_files_are_unchanged(node: Node) -> None:
    assert node.reloader.check() is None
    assert NodeState(node.data / "node.db").all()["config"]["state"] == "loaded"


def test_a_runtime_setting_takes_effect_for_every_reader(node: Node) -> None:
    syncer = Syncer(node.data, node.live)
    service = IssuanceService(node.data, node.live)
    node.edit("feed_wait = 3.5\napproval_lag_seconds = 60.0\noffline_after = 20.0\n")
    result = node.reloader.check()
    assert result is not None and result["state"] == "reloaded"
    assert result["applied"] == ["approval_lag_seconds", "feed_wait", "offline_after"]
    assert syncer.settings["feed_wait"] == 3.5 and service.settings["approval_lag_seconds"] == 60.0
    assert node.changes == ["called"]
    syncer.retune()
    assert syncer.mode.offline_after == 20.0
    assert result["in_force"]["feed_wait"] == 3.5
    assert NodeState(node.data / "node.db").all()["config"]["applied"] == result["applied"]


def test_a_setting_that_needs_a_restart_keeps_its_old_value(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    node.edit("cookie_secure = false\nbackoff_max = 5.0\n", hub_url='"http://hub.example.lg.jp:8700"')
    with caplog.at_level(logging.WARNING, "edgenode.config"):
        result = node.reloader.check()
    assert result is not None
    assert result["applied"] == ["backoff_max"] and result["needs_restart"] == ["cookie_secure", "hub_url"]
    assert node.live["hub_url"] == "http://127.0.0.1:9" and node.live["cookie_secure"] is True
    assert node.live["backoff_max"] == 5.0
    assert "cookie_secure, hub_url, which need(s) a restart" in caplog.text


def test_flags_and_environment_still_win_over_the_edited_file(node: Node) -> None:
    node.edit("port = 9999\nfeed_max_bytes = 8192\n")
    result = node.reloader.check()
    assert result is not None and result["applied"] == [] and result["needs_restart"] == []
    assert node.live["port"] == 8123 and node.live["feed_max_bytes"] == 65536


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ('feed_wait = "soon"\n', "node.toml: setting feed_wait must be float, got 'soon'"),
        ("feed_wiat = 3.0\n", "node.toml: unknown setting(s) feed_wiat"),
        ("backoff_max = -1.0\n", "setting backoff_max must be at least 0"),
        ('log_level = "loud"\n', "log_level must be one of debug, info, warning, error"),
        ("feed_wait = = 2\n", "node.toml is not valid TOML"),
        ('token = 42\ntoken = "en1.abc"\n', "node.toml is not valid TOML"),
    ],
)
def test_an_invalid_file_is_refused_and_the_old_configuration_stays(
    node: Node, caplog: pytest.LogCaptureFixture, extra: str, said: str
) -> None:
    before = node.live.current
    node.edit("heartbeat_interval = 9.0\n" + extra)
    with caplog.at_level(logging.ERROR, "edgenode.config"):
        result = node.reloader.check()
    assert result is not None and result["state"] == "rejected" and said in result["error"]
    assert node.live.current is before and node.changes == []
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("config: node.toml refused, the running configuration stays in force") and said in line
    if "TOML" in said:
        assert "line" in line


def test_secrets_never_reach_the_audit_log_or_the_status(node: Node) -> None:
    node.edit("feed_wait = 4.0\n", token='"en1.' + "s" * 43 + '"')
    result = node.reloader.check()
    assert result is not None and result["needs_restart"] == ["token"]
    entries = AuditLog(node.data / "node.db").entries()
    text = repr(entries) + repr(NodeState(node.data / "node.db").all())
    assert "s" * 43 not in text and "x" * 43 not in text
    assert not set(result["in_force"]) - RUNTIME
    assert all(not s.secret for s in NODE_SETTINGS if s.name in RUNTIME)


def test_the_log_level_follows_the_setting_unless_verbose(node: Node) -> None:
    root = logging.getLogger()
    saved = root.level
    try:
        node.edit('log_level = "warning"\n')
        node.reloader.check()
        apply_log_level(node.live, verbose=False)
        assert root.level == logging.WARNING
        apply_log_level(node.live, verbose=True)
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(saved)


def test_an_edited_certs_toml_is_used_and_a_broken_one_leaves_the_last_good(node: Node) -> None:
    write_certs_template(node.data, LG, "門川町", "門川　一郎")
    service = IssuanceService(node.data, node.live)
    assert service.config.mayor_name == "門川　一郎"
    node.reloader.check()
    path = node.data / "certs.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("門川　一郎", "門川　二郎"), encoding="utf-8")
    result = node.reloader.check()
    assert result is not None and result["state"] == "reloaded" and result["file"] == "certs.toml"
    assert service.config.mayor_name == "門川　二郎"
    path.write_text(path.read_text(encoding="utf-8") + "printer_no = 0\n", encoding="utf-8")
    result = node.reloader.check()
    assert result is not None and result["state"] == "rejected" and "printer_no" in result["error"]
    assert service.config.mayor_name == "門川　二郎" and service.config.printer_no == 1


def test_a_file_being_written_is_read_only_once_it_holds_still(node: Node) -> None:
    node.reloader.settle = 0.5
    cfg = node.data / "node.toml"
    cfg.write_text("", encoding="utf-8")  # an editor truncates first ...
    assert node.reloader.check(now=10.0) is None
    node.edit("feed_wait = 2.0\n")  # ... then writes
    assert node.reloader.check(now=10.3) is None  # changed again: the wait starts over
    assert node.reloader.check(now=10.6) is None
    result = node.reloader.check(now=10.9)
    assert result is not None and result["applied"] == ["feed_wait"] and node.live["feed_wait"] == 2.0
    assert node.reloader.check(now=20.0) is None


def test_a_file_that_would_not_start_the_node_is_refused(node: Node) -> None:
    (node.data / "node.toml").write_text("feed_wait = 2.0\n", encoding="utf-8")
    result = node.reloader.check()
    assert result is not None and result["state"] == "rejected"
    assert "lacks lg_code, hub_public_key, node_id" in result["error"]
    assert node.live["lg_code"] == LG and node.live["feed_wait"] == 20.0
