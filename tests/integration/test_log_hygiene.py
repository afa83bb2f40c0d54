"""What the services write to the journal: one JSON object a line, and no secrets or names.

Hub and node run as real processes with ``JOURNAL_STREAM`` set (as systemd sets it when the
journal holds their stderr) and with debug logging on. A clerk logs in (once with a wrong
password), searches a resident by name, and issues a certificate; the node bootstraps and
follows the hub with its token. Then every line both wrote must parse as JSON and none may hold
the token, a password, or any resident's name or フリガナ.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from edgenode.sync.nodeconfig import write_certs_template
from tests.integration.conftest import (
    CLI,
    LG,
    counter_issue,
    counter_login,
    free_port,
    make_hub,
    make_node,
    run,
    wait_http,
)

PW = "kaunta-Himitsu-2026"
WRONG_PW = "machigai-Himitsu-0000"


def test_service_logs_are_json_lines_without_tokens_passwords_or_resident_names(tmp_path: Path) -> None:
    journal = {"JOURNAL_STREAM": "8:12345", "INVOCATION_ID": "0" * 32}
    hub = make_hub(tmp_path, residents=300)
    hub.env.update(journal)
    hub.start()
    try:
        hub.add_user("tanaka", "clerk", PW)
        token = hub.token("honcho-1")
        node = make_node(tmp_path, hub.url, token, "honcho-1")
        write_certs_template(node, LG, "門川町", "門川　一郎", replace=True)
        with open(node / "node.toml", "a", encoding="utf-8") as f:
            f.write("cookie_secure = false\nfeed_wait = 1.0\n")
        records = [json.loads(x) for x in hub.export().splitlines()]
        person = next(r for r in records if r["relationship"] == "世帯主" and r["status"] == "住民")
        run("node", "sync", "--data", str(node), "--once")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        node_log = tmp_path / "node-serve.log"
        with open(node_log, "wb") as log:
            proc = subprocess.Popen(
                [*CLI, "-v", "node", "serve", "--data", str(node), "--port", str(port)],
                stdout=log,
                stderr=log,
                env={**os.environ, **journal},
            )
        try:
            wait_http(f"{url}/healthz")
            with httpx.Client(base_url=url, follow_redirects=False) as c:
                assert counter_login(c, "tanaka", WRONG_PW).status_code != 303
                assert counter_login(c, "tanaka", PW).status_code == 303
                found = c.get("/", params={"q": person["name"]})
                assert person["atena_no"] in found.text
                r = counter_issue(c, person["atena_no"])
                assert r.status_code == 200 and r.content.startswith(b"%PDF"), r.text[:300]
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    finally:
        hub.stop()
    hub_log = tmp_path / f"hub-{hub.port}.log"

    lines: list[str] = []
    for path in (node_log, hub_log):
        text = path.read_text(encoding="utf-8")
        lines += [x for x in text.splitlines() if x.strip()]
    assert any("node serving on" in x for x in lines)  # the log was really captured
    for line in lines:
        obj = json.loads(line)  # every line is one JSON object
        assert {"time", "level", "logger", "message"} <= obj.keys()
    everything = "\n".join(lines)
    assert token not in everything and token.split(".", 1)[1] not in everything
    assert PW not in everything and WRONG_PW not in everything
    names = {r["name"] for r in records} | {r["kana"] for r in records}
    leaked = sorted(n for n in names if n and n in everything)
    assert not leaked, f"resident names in the log: {leaked[:5]}"
