"""/metrics on node and hub: Prometheus text that agrees with `node status`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import LG, HubProc, make_node, run, serving_node


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_agree_with_status_on_node_and_hub(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    run("node", "sync", "--data", str(node), "--once")
    hub.simulate(7, seed=4)
    run("node", "sync", "--data", str(node), "--once")
    with serving_node(node, tmp_path) as url:
        r = httpx.get(f"{url}/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        m = _samples(r.text)
        st = json.loads(run("node", "status", "--data", str(node), "--json").stdout)
        assert m[("edgenode_node_cursor", ())] == st["cursor"] == 7
        assert m[("edgenode_node_lag_changes", ())] == 0
        assert m[("edgenode_node_mode", (("mode", st["mode"]),))] == 1
        assert sum(v for (name, _), v in m.items() if name == "edgenode_node_mode") == 1
        assert m[("edgenode_node_certificates_issued_total", (("state", "issued"),))] == 0
        assert "門川" not in r.text  # no resident or municipality data in metrics
        h = _samples(httpx.get(f"{hub.url}/metrics").text)
        assert h[("edgenode_hub_head", (("lg_code", LG),))] == 7
        assert ("edgenode_hub_node_silence_seconds", (("lg_code", LG), ("node", "node1"))) in h
