"""Real hub and node processes: heartbeats carry the operator fields, the fleet sorts the silent first."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import make_hub, make_node, run, serving_node


def _names(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_a_running_nodes_heartbeat_reaches_the_fleet_and_a_silent_node_sorts_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = make_hub(tmp_path, residents=300)
    hub.env["EDGENODE_FLEET_SILENT_AFTER"] = "4"
    hub.start()
    try:
        quiet = make_node(tmp_path, hub.url, hub.token("quiet"), "quiet")
        run("node", "sync", "--data", str(quiet), "--once")  # one heartbeat, then nothing
        live = make_node(tmp_path, hub.url, hub.token("live"), "live")
        run("node", "sync", "--data", str(live), "--once")
        for name, value in (("HEARTBEAT_INTERVAL", "1"), ("FEED_WAIT", "1"), ("LAG_SAMPLE_INTERVAL", "1")):
            monkeypatch.setenv(f"EDGENODE_{name}", value)
        staff = hub.staff_client()
        with serving_node(live, tmp_path) as url:
            hub.simulate(5, seed=3)
            deadline = time.monotonic() + 60
            while True:
                doc = staff.get("/fleet.json").json()
                by_id = {n["node_id"]: n for n in doc["nodes"]}
                live_row = by_id.get("live", {})
                if (
                    by_id["quiet"]["class"] == "silent"
                    and live_row.get("class") == "ok"
                    and live_row.get("cursor") == doc["heads"]["454214"]
                ):
                    break
                assert time.monotonic() < deadline, f"fleet never settled: {doc['nodes']}"
                time.sleep(0.5)
            assert [n["node_id"] for n in doc["nodes"]] == ["quiet", "live"]
            assert live_row["silence_seconds"] < 4 and live_row["lag_changes"] == 0
            assert live_row["version"] and live_row["mode"] == "online"
            assert live_row["queue_depth"] is not None and live_row["status"]["stale"]["alarm"] is False
            assert "queue_oldest_age_seconds" in live_row["status"] and "last_verify_ok" in live_row["status"]
            assert by_id["quiet"]["lag_changes"] == 5  # judged against the hub's head, not its old report
            page = staff.get("/fleet").text
            assert page.index("quiet") < page.index("live") and "無応答 silent" in page
            # the running node kept a lag history, and its metrics carry the new families
            time.sleep(2)
            text = run("node", "status", "--data", str(live)).stdout
            spark = next(line for line in text.splitlines() if line.startswith("lag 24 h"))
            assert spark.split("|")[1][-1] != "·", text  # the current half-hour has samples
            assert "chain intact" in text and "watchdog       ok" in text
            st = json.loads(run("node", "status", "--data", str(live), "--json").stdout)
            for key in ("mode", "cursor", "hub_head", "lag_changes", "lag_seconds", "queue_depth", "last_sync_at"):
                assert key in st
            assert "last_error" in st and isinstance(st["backup"], dict)
            node_metrics = _names(httpx.get(f"{url}/metrics").text)
            assert {
                "edgenode_node_outbox_oldest_age_seconds",
                "edgenode_node_outbox_items",
                "edgenode_node_stale_alarm",
                "edgenode_node_apply_rate",
                "edgenode_node_http_request_duration_seconds_count",
            } <= node_metrics
            hub_metrics = _names(httpx.get(f"{hub.url}/metrics").text)
            assert {
                "edgenode_hub_node_outbox_depth",
                "edgenode_hub_http_request_duration_seconds_bucket",
            } <= hub_metrics
        staff.close()
    finally:
        hub.stop()
