"""Physical media and configuration edits reach a running `node serve` (real hub and node processes)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from edgenode.demo import wait_http
from edgenode.signing import HubKey
from tests.integration.conftest import (
    CLI,
    LG,
    HubProc,
    free_port,
    make_hub,
    make_node,
    node_export,
    run,
    serving_node,
    sql_value,
)

PW = "kinkyu-2026-pw"
OTHER = "452017"  # another municipality on the same hub


def _until(what: str, probe: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll `probe` until it returns something truthy; fail with `what` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}; last seen: {got!r}"
        time.sleep(0.2)


def _status(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/api/status", timeout=10).json()  # type: ignore[no-any-return]


def _inbox_is(url: str, state: str, name: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        st = _status(url)
        ib = st.get("inbox") or {}
        return st if ib.get("state") == state and ib.get("file") == name else None

    return probe


def _snapshot(hub: HubProc, out: Path, lg: str = LG) -> Path:
    run("hub", "snapshot", "--data", str(hub.data), "--lg-code", lg, "--out", str(out))
    return out


def _search(url: str, q: str) -> str:
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as c:
        page = c.get("/login").text
        m = re.search(r'name="csrf" value="([^"]*)"', page)
        assert m
        r = c.post("/login", data={"csrf": m.group(1), "user": "kinkyu", "password": PW})
        assert r.status_code == 303, r.text[:300]
        r = c.get("/", params={"q": q})
        assert r.status_code == 200
        return r.text


def test_a_courier_snapshot_bootstraps_an_unconnected_node_which_then_catches_up(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, residents=400)  # made, not started: the WAN is not there yet
    run("hub", "init", "--data", str(hub.data), "--lg-code", OTHER, "--name", "延岡市", "--residents", "50")
    hub.simulate(10, seed=3)
    key = HubKey.load_or_create(hub.data / "keys" / "hub_ed25519.pem").public_b64
    node = tmp_path / "node1"
    run(
        "node", "init", "--data", str(node), "--hub", hub.url, "--token", hub.token("node1"),
        "--node", "node1", "--lg-code", LG, "--hub-key", key,
    )  # fmt: skip
    with open(node / "node.toml", "a", encoding="utf-8") as f:
        f.write("cookie_secure = false\nfeed_wait = 2.0\nrequest_timeout = 3.0\nbackoff_max = 1.0\n")
        f.write("inbox_settle_seconds = 1.0\n")
    subprocess.run(
        [*CLI, "user", "add", "--data", str(node), "--name", "kinkyu", "--role", "clerk"],
        input=PW + "\n", text=True, check=True, capture_output=True,
    )  # fmt: skip
    inbox = node / "inbox"
    assert inbox.is_dir(), "node init makes the inbox"
    media = tmp_path / "usb"
    media.mkdir()
    good = _snapshot(hub, media / "kadogawa-0010.ensnap")
    foreign = _snapshot(hub, media / "nobeoka.ensnap", OTHER)
    corrupt = media / "scratched.ensnap"
    data = bytearray(good.read_bytes())
    data[-50] ^= 0x01
    corrupt.write_bytes(bytes(data))
    person = next(json.loads(x) for x in hub.export().splitlines() if '"status":"住民"' in x)

    with serving_node(node, tmp_path) as url:
        assert _status(url)["cursor"] is None

        # a damaged file and another town's file are refused with a reason, and kept
        for src, why in ((corrupt, "SHA-256"), (foreign, OTHER)):
            (inbox / src.name).write_bytes(src.read_bytes())
            st = _until(f"{src.name} was not rejected", _inbox_is(url, "rejected", src.name))
            assert why in st["inbox"]["reason"]
            assert (inbox / "rejected" / src.name).read_bytes() == src.read_bytes()
            reason = (inbox / "rejected" / f"{src.name}.reason.txt").read_text(encoding="utf-8")
            assert why in reason
            assert not (inbox / src.name).exists()
            assert st["cursor"] is None, "a refused file must not touch the replica"

        # half a file (a copy still running, or broken off) is waited for, not judged
        whole = good.read_bytes()
        half = inbox / good.name
        half.write_bytes(whole[: len(whole) // 2])
        st = _until("the half-copied file was not reported as waiting", _inbox_is(url, "waiting", good.name))
        assert "not complete" in st["inbox"]["reason"]
        assert half.exists() and st["cursor"] is None
        # a copy in progress under a temporary name is not even looked at
        (inbox / "next.ensnap.part").write_bytes(whole[:100])
        with open(half, "ab") as f:
            f.write(whole[len(whole) // 2 :])
        st = _until("the completed file was not installed", _inbox_is(url, "applied", good.name), timeout=90)
        assert st["cursor"] == 10 and st["inbox"]["seq"] == 10
        assert (inbox / "done" / good.name).read_bytes() == whole
        assert (inbox / "next.ensnap.part").exists()

        # the counter searches the installed replica while the hub is still unreachable
        page = _search(url, person["kana"])
        assert person["atena_no"] in page
        assert sql_value(node / "node.db", "SELECT count(*) FROM audit_log WHERE kind = 'media_import'") == 1

        # the same file once more is not applied again: it is older than (equal to) the replica
        again = inbox / "kadogawa-0010-again.ensnap"
        again.write_bytes(whole)
        st = _until("the repeated file was not reported", _inbox_is(url, "older", again.name))
        assert "already at 10" in st["inbox"]["reason"]
        assert (inbox / "done" / again.name).exists() and st["cursor"] == 10

        # the WAN arrives: the node follows the hub from the snapshot's sequence
        hub.simulate(6, seed=4)
        hub.start()
        try:
            st = _until(
                "the node did not catch up with the hub",
                lambda: (s := _status(url))["cursor"] == 16 and s["hub_head"] == 16 and s,
                timeout=90,
            )
            assert st["snapshot_seq"] == 10, "it followed the feed, it did not re-bootstrap"
            assert node_export(node) == hub.export()
        finally:
            hub.stop()
    assert run("node", "audit", "verify", "--data", str(node)).returncode == 0


def test_an_edited_node_toml_is_applied_or_refused_while_the_node_keeps_running(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, residents=200)
    hub.start()
    try:
        node = make_node(tmp_path, hub.url, hub.token("node1"))
        cfg = node / "node.toml"
        original = cfg.read_text(encoding="utf-8")
        with serving_node(node, tmp_path) as url:
            _until("node serve did not bootstrap", lambda: _status(url)["cursor"] is not None)
            assert _status(url)["config"]["in_force"]["heartbeat_interval"] == 30.0

            edit = 'heartbeat_interval = 1.0\nfeed_wait = 1.0\nlog_level = "debug"\ncookie_secure = false\n'
            cfg.write_text(original + edit, encoding="utf-8")
            st = _until(
                "the valid edit was not applied",
                lambda: (s := _status(url))["config"].get("state") == "reloaded" and s,
            )
            cfg_st = st["config"]
            assert cfg_st["applied"] == ["feed_wait", "heartbeat_interval", "log_level"]
            assert cfg_st["needs_restart"] == ["cookie_secure"]
            assert cfg_st["in_force"]["heartbeat_interval"] == 1.0 and cfg_st["in_force"]["log_level"] == "debug"

            # and it acts: the hub now hears from the node every second or two, not every 30 s
            seen: set[str] = set()
            staff = hub.staff_client()

            def heartbeats() -> bool:
                fleet = staff.get("/fleet.json").json()
                seen.update(n["last_seen_at"] for n in fleet["nodes"] if n["node_id"] == "node1")
                return len(seen) >= 4

            _until("the shorter heartbeat interval did not take effect", heartbeats, timeout=40)
            staff.close()

            cfg.write_text(original + 'heartbeat_interval = 1.0\nfeed_wait = "soon"\n', encoding="utf-8")
            st = _until(
                "the invalid edit was not refused",
                lambda: (s := _status(url))["config"].get("state") == "rejected" and s,
            )
            assert "feed_wait must be float" in st["config"]["error"]
            assert st["config"]["in_force"]["feed_wait"] == 1.0, "the old configuration stays"

            cfg.write_text(original + "heartbeat_interval = = 3\n", encoding="utf-8")
            st = _until(
                "the broken TOML was not refused",
                lambda: (s := _status(url))["config"].get("error", "").startswith("node.toml is not valid TOML") and s,
            )
            assert "line" in st["config"]["error"]
            assert httpx.get(f"{url}/healthz").status_code == 200
            before = _status(url)["cursor"]
            hub.simulate(3, seed=9)
            _until("the node stopped following after a refused edit", lambda: _status(url)["cursor"] == before + 3)
        log = "".join(p.read_text(encoding="utf-8") for p in tmp_path.glob("node-*.log"))
        assert re.search(r"config: node\.toml refused, the running configuration stays in force: .*feed_wait", log)
        assert "cookie_secure, which need(s) a restart" in log
        audited = sql_value(node / "node.db", "SELECT group_concat(detail) FROM audit_log WHERE kind = 'config_reload'")
        assert isinstance(audited, str) and '"heartbeat_interval"' in audited and "en1." not in audited
    finally:
        hub.stop()


def test_a_node_killed_while_installing_from_the_inbox_ends_installed_once(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, residents=6000)
    hub.simulate(5, seed=2)
    key = HubKey.load_or_create(hub.data / "keys" / "hub_ed25519.pem").public_b64
    node = tmp_path / "node1"
    run(
        "node", "init", "--data", str(node), "--hub", hub.url, "--token", hub.token("node1"),
        "--node", "node1", "--lg-code", LG, "--hub-key", key,
    )  # fmt: skip
    with open(node / "node.toml", "a", encoding="utf-8") as f:
        f.write("inbox_settle_seconds = 0.2\n")
    snap = _snapshot(hub, tmp_path / "town.ensnap")
    port = free_port()
    killed_log = tmp_path / f"node-{port}.log"
    with open(killed_log, "wb") as log:
        proc = subprocess.Popen(
            [*CLI, "node", "serve", "--data", str(node), "--port", str(port)], stdout=log, stderr=log
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        (node / "inbox" / snap.name).write_bytes(snap.read_bytes())
        deadline = time.monotonic() + 60
        while "town.ensnap verified" not in killed_log.read_text(encoding="utf-8"):
            assert time.monotonic() < deadline, "the inbox never started installing"
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)  # in the middle of building the new replica file
        proc.wait()
    assert "replica installed" not in killed_log.read_text(encoding="utf-8"), "the kill came too late to test"
    assert not (node / "replica" / "CURRENT").exists(), "a killed install must not leave a replica"
    assert (node / "inbox" / snap.name).exists(), "the courier's file stays until it is dealt with"
    with serving_node(node, tmp_path) as url:
        st = _until(
            "the file was not installed after the restart",
            lambda: (s := _status(url))["cursor"] == 5 and (s["inbox"] or {}).get("state") == "applied" and s,
        )
        assert st["mode"] != "bootstrapping" and (node / "inbox" / "done" / snap.name).exists()
        assert not (node / "inbox" / snap.name).exists()
        assert not list((node / "inbox" / "rejected").iterdir())
    assert node_export(node) == hub.export()
    assert len(list((node / "replica").glob("replica-*.db"))) == 1, "the killed build's file is cleaned up"
