"""Cut the WAN, issue at the counter while offline, restore the WAN: real processes throughout."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from bench.wanem import LinkProfile, WanEmulator
from edgenode.audit import AuditLog
from edgenode.sync.nodeconfig import write_certs_template
from tests.integration.conftest import (
    CLI,
    LG,
    counter_issue,
    counter_login,
    free_port,
    make_node,
    run,
    running_hub,
    wait_http,
)

PW = "madoguchi-2026"


def _wait_mode(url: str, want: str, timeout: float = 40) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        st = httpx.get(f"{url}/api/status").json()
        if st["mode"] == want:
            return st  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"mode stayed {st['mode']}, wanted {want}"
        time.sleep(0.3)


def test_the_counter_issues_offline_and_the_node_recovers_when_the_wan_returns(tmp_path: Path) -> None:
    with running_hub(tmp_path, residents=200) as hub:
        hub.add_user("tanaka", "clerk", PW)
        with WanEmulator("127.0.0.1", hub.port, LinkProfile(latency=0.01)) as wan:
            node = make_node(tmp_path, wan.url, hub.token("honcho-1"), "honcho-1")
            write_certs_template(node, LG, "門川町", "門川　一郎", replace=True)
            with open(node / "node.toml", "a", encoding="utf-8") as f:
                f.write("cookie_secure = false\nfeed_wait = 2.0\nrequest_timeout = 3.0\n")
            run("node", "sync", "--data", str(node), "--once")
            person = next(json.loads(x) for x in hub.export().splitlines() if '"relationship":"世帯主"' in x)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with open(tmp_path / "node.log", "wb") as log:
                proc = subprocess.Popen(
                    [*CLI, "node", "serve", "--data", str(node), "--port", str(port)], stdout=log, stderr=log
                )
            try:
                wait_http(f"{url}/healthz")
                _wait_mode(url, "online")
                wan.set_profile(LinkProfile(blackhole=True))  # the LGWAN goes dark (no refusal, no answer)
                wan.cut_all()
                began = time.monotonic()
                offline = _wait_mode(url, "offline")
                detected = time.monotonic() - began
                assert detected <= 15, f"offline detection took {detected:.1f}s"
                assert "応答しません" in offline["mode_reason"]

                with httpx.Client(base_url=url, follow_redirects=False) as c:
                    assert counter_login(c, "tanaka", PW).status_code == 303
                    r = counter_issue(c, person["atena_no"])
                    assert r.status_code == 200 and r.content.startswith(b"%PDF"), r.text[:500]
                    assert "縮退運転中" in c.get("/issuances").text

                hub.simulate(5, seed=3)
                wan.set_profile(LinkProfile())  # the WAN returns
                _wait_mode(url, "online", timeout=60)
                st = httpx.get(f"{url}/api/status").json()
                assert st["cursor"] == st["hub_head"] and st["lag_changes"] == 0
            finally:
                proc.terminate()
                proc.wait(timeout=15)
        audit = subprocess.run([*CLI, "node", "audit", "verify", "--data", str(node)], capture_output=True, text=True)
        assert audit.returncode == 0, audit.stderr
        modes = [
            json.loads(e["detail"])["to"] for e in reversed(AuditLog(node / "node.db").entries()) if e["kind"] == "mode"
        ]
        assert modes[-3:] == ["offline", "reconciling", "online"]


def test_a_certificate_handed_out_is_in_the_queue_even_if_the_node_dies_that_instant(tmp_path: Path) -> None:
    """The 交付記録 commits (fsync) before the PDF leaves: SIGKILL right after the response loses nothing."""
    import signal

    with running_hub(tmp_path, residents=200) as hub:
        hub.add_user("tanaka", "clerk", PW)
        node = make_node(tmp_path, hub.url, hub.token("honcho-1"), "honcho-1")
        write_certs_template(node, LG, "門川町", "門川　一郎", replace=True)
        with open(node / "node.toml", "a", encoding="utf-8") as f:
            f.write("cookie_secure = false\n")
        run("node", "sync", "--data", str(node), "--once")
        person = next(json.loads(x) for x in hub.export().splitlines() if '"relationship":"世帯主"' in x)
        hub.stop()  # the datacenter is gone for the rest of the day
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(tmp_path / "node.log", "wb") as log:
            proc = subprocess.Popen(
                [*CLI, "node", "serve", "--data", str(node), "--port", str(port)], stdout=log, stderr=log
            )
        pdfs = []
        try:
            wait_http(f"{url}/healthz")
            with httpx.Client(base_url=url, follow_redirects=False) as c:
                assert counter_login(c, "tanaka", PW).status_code == 303
                for _ in range(3):
                    r = counter_issue(c, person["atena_no"], id_document="運転免許証")
                    assert r.status_code == 200 and r.content.startswith(b"%PDF"), r.text[:300]
                    pdfs.append(r.content)
            proc.send_signal(signal.SIGKILL)  # the instant the last PDF is in the clerk's hands
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        printed = []
        for i, pdf in enumerate(pdfs):
            (tmp_path / f"c{i}.pdf").write_bytes(pdf)
            text = subprocess.run(
                ["pdftotext", str(tmp_path / f"c{i}.pdf"), "-"], capture_output=True, text=True, check=True
            ).stdout
            printed.append(text)
        hub.start()
        run("node", "sync", "--data", str(node), "--once")
        rows = json.loads(run("hub", "issuances", "--data", str(hub.data), "--lg-code", LG, "--json").stdout)
        assert len(rows) == 3, "an issuance handed out before the kill did not reach the hub"
        serials = [s for row in rows for s in row["record"]["serials"]]
        assert len(set(serials)) == len(serials) >= 3
        for serial in serials:
            assert sum(serial in t for t in printed) == 1, f"{serial} is not on exactly one printed certificate"
        audit = subprocess.run([*CLI, "node", "audit", "verify", "--data", str(node)], capture_output=True, text=True)
        assert audit.returncode == 0, audit.stderr
