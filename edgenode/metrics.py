"""Prometheus metrics for node and hub, read from their state at scrape time.

Collectors read the same sources as `node status` and the fleet view, so a scrape can never
disagree with what an administrator sees, and no metric state lives in process memory that a
restart would reset (counters come from durable tables). No metric carries resident data.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edgenode.durable import parse_time

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MODES = ("online", "offline", "reconciling", "bootstrapping")
BACKUP_STATES = ("not_configured", "not_running", "starting", "running", "stalled", "dead", "error", "stopped")


def _ts(iso: str | None) -> float | None:
    return parse_time(iso).timestamp() if iso else None


class NodeCollector(Collector):
    """Metrics of one node: mode, cursor, lag, queue, issuances, verify and error state."""

    def __init__(self, status: Callable[[], dict[str, Any]], issued: Callable[[], tuple[int, int]]) -> None:
        self.status = status
        self.issued = issued

    def collect(self) -> Iterator[Any]:
        st = self.status()
        mode = GaugeMetricFamily("edgenode_node_mode", "1 for the node's current mode", labels=["mode"])
        for m in MODES:
            mode.add_metric([m], 1.0 if st["mode"] == m else 0.0)
        yield mode
        yield GaugeMetricFamily(
            "edgenode_node_forced_offline",
            "1 while a supervisor holds the node offline",
            value=1.0 if st.get("forced_offline") else 0.0,
        )
        for name, key, help_text in (
            ("edgenode_node_cursor", "cursor", "last applied change-log sequence"),
            ("edgenode_node_hub_head", "hub_head", "newest sequence the hub reported"),
            ("edgenode_node_lag_changes", "lag_changes", "transactions the node still lacks"),
            ("edgenode_node_lag_seconds", "lag_seconds", "age of the oldest change not yet applied"),
            ("edgenode_node_queue_depth", "queue_depth", "local writes waiting for upload"),
        ):
            if st.get(key) is not None:
                yield GaugeMetricFamily(name, help_text, value=float(st[key]))
        for name, key, help_text in (
            ("edgenode_node_last_sync_timestamp_seconds", "last_sync_at", "time of the last successful sync"),
            ("edgenode_node_last_verify_timestamp_seconds", "last_verify_at", "time of the last digest check"),
        ):
            ts = _ts(st.get(key))
            if ts is not None:
                yield GaugeMetricFamily(name, help_text, value=ts)
        if st.get("last_verify_ok") is not None:
            yield GaugeMetricFamily(
                "edgenode_node_verify_ok",
                "1 if the last digest check found the copy identical",
                value=1.0 if st["last_verify_ok"] else 0.0,
            )
        yield GaugeMetricFamily(
            "edgenode_node_error", "1 while the last sync attempt failed", value=1.0 if st.get("last_error") else 0.0
        )
        backup = st.get("backup") or {}
        state = GaugeMetricFamily("edgenode_node_backup_state", "1 for the continuous backup's state", labels=["state"])
        for b in BACKUP_STATES:
            state.add_metric([b], 1.0 if backup.get("state") == b else 0.0)
        yield state
        if backup.get("lag_seconds") is not None:
            yield GaugeMetricFamily(
                "edgenode_node_backup_lag_seconds",
                "age of the oldest change not yet in the backup",
                value=float(backup["lag_seconds"]),
            )
        if backup.get("restarts") is not None:
            yield CounterMetricFamily(
                "edgenode_node_backup_restarts",
                "times the backup replicator (litestream) was restarted after it died",
                value=float(backup["restarts"]),
            )
        count, voided = self.issued()
        c = CounterMetricFamily("edgenode_node_certificates_issued", "certificates issued (交付記録)", labels=["state"])
        c.add_metric(["issued"], float(count))
        c.add_metric(["voided"], float(voided))
        yield c


class HubCollector(Collector):
    """Metrics of the hub: each tenant's head, each node's last report."""

    def __init__(self, heads: Callable[[], dict[str, int]], nodes: Callable[[], list[dict[str, Any]]]) -> None:
        self.heads = heads
        self.nodes = nodes

    def collect(self) -> Iterator[Any]:
        head = GaugeMetricFamily("edgenode_hub_head", "newest change-log sequence", labels=["lg_code"])
        for lg_code, seq in sorted(self.heads().items()):
            head.add_metric([lg_code], float(seq))
        yield head
        now = _dt.datetime.now(_dt.UTC).timestamp()
        silent = GaugeMetricFamily(
            "edgenode_hub_node_silence_seconds", "seconds since the node's last heartbeat", labels=["lg_code", "node"]
        )
        lag = GaugeMetricFamily(
            "edgenode_hub_node_lag_changes", "the node's lag as it last reported", labels=["lg_code", "node"]
        )
        for n in self.nodes():
            labels = [n["lg_code"], n["node_id"]]
            seen = _ts(n.get("last_seen_at"))
            if seen is not None:
                silent.add_metric(labels, now - seen)
            if n["status"].get("lag_changes") is not None:
                lag.add_metric(labels, float(n["status"]["lag_changes"]))
        yield silent
        yield lag


def render(collector: Collector) -> bytes:
    """The Prometheus text exposition of one collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
