"""Prometheus metrics for node and hub, read from their state at scrape time.

Collectors read the same sources as `node status` and the fleet view, so a scrape can never
disagree with what an administrator sees, and no metric state lives in process memory that a
restart would reset (counters come from durable tables). No metric carries resident data.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgenode.durable import parse_time

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MODES = ("online", "offline", "reconciling", "bootstrapping")
BACKUP_STATES = ("not_configured", "not_running", "starting", "running", "stalled", "dead", "error", "stopped")


def _ts(iso: str | None) -> float | None:
    return parse_time(iso).timestamp() if iso else None


class NodeCollector(Collector):
    """Metrics of one node: mode, cursor, lag, queue, issuances, verify and error state."""

    def __init__(
        self, status: Callable[[], dict[str, Any]], issued: Callable[[], tuple[int, int]], state_db: Path | None = None
    ) -> None:
        self.status = status
        self.issued = issued
        self.state_db = state_db

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
        yield from self._operations(st)

    def _operations(self, st: dict[str, Any]) -> Iterator[Any]:
        queue = st.get("queue") or {}
        items = GaugeMetricFamily(
            "edgenode_node_outbox_items",
            "queued writes by upload outcome (pending, accepted, conflict, rejected)",
            labels=["state"],
        )
        for state, n in sorted((queue.get("by_state") or {}).items()):
            items.add_metric([state], float(n))
        yield items
        yield GaugeMetricFamily(
            "edgenode_node_outbox_oldest_age_seconds",
            "age of the oldest write not yet uploaded (0 when the queue is empty)",
            value=float(st.get("queue_oldest_age_seconds") or 0.0),
        )
        stale = st.get("stale") or {}
        yield GaugeMetricFamily(
            "edgenode_node_stale_alarm",
            "1 while the cursor has not moved for stale_alarm_after seconds although the hub head has",
            value=1.0 if stale.get("alarm") else 0.0,
        )
        if stale.get("cursor_still_seconds") is not None:
            yield GaugeMetricFamily(
                "edgenode_node_cursor_still_seconds",
                "seconds since the cursor last moved",
                value=stale["cursor_still_seconds"],
            )
        detail = st.get("last_verify_detail") or {}
        if detail:
            yield GaugeMetricFamily(
                "edgenode_node_verify_differing_buckets",
                "buckets that differed from the hub in the last verify started from the admin page",
                value=float(detail.get("differing") or 0),
            )
        if self.state_db is not None:
            from edgenode.sync.laghistory import LagHistory, apply_rate

            now = time.time()
            rate = apply_rate(LagHistory(self.state_db).samples(now - 900), 900, now)
            if rate is not None:
                yield GaugeMetricFamily(
                    "edgenode_node_apply_rate", "transactions applied per second over the last 15 minutes", value=rate
                )


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
        lag_s = GaugeMetricFamily(
            "edgenode_hub_node_lag_seconds", "the node's lag in seconds as it last reported", labels=["lg_code", "node"]
        )
        depth = GaugeMetricFamily(
            "edgenode_hub_node_outbox_depth", "writes the node had not uploaded yet", labels=["lg_code", "node"]
        )
        oldest = GaugeMetricFamily(
            "edgenode_hub_node_outbox_oldest_age_seconds",
            "age of the node's oldest unsent write when it last reported",
            labels=["lg_code", "node"],
        )
        stale = GaugeMetricFamily(
            "edgenode_hub_node_stale_alarm",
            "1 if the node reported its staleness watchdog on",
            labels=["lg_code", "node"],
        )
        verify = GaugeMetricFamily(
            "edgenode_hub_node_verify_ok", "1 if the node's last verify was identical", labels=["lg_code", "node"]
        )
        online = GaugeMetricFamily(
            "edgenode_hub_node_online", "1 if the node last reported mode online", labels=["lg_code", "node"]
        )
        for n in self.nodes():
            labels = [n["lg_code"], n["node_id"]]
            st = n["status"]
            seen = _ts(n.get("last_seen_at"))
            if seen is not None:
                silent.add_metric(labels, now - seen)
            if st.get("lag_changes") is not None:
                lag.add_metric(labels, float(st["lag_changes"]))
            if st.get("lag_seconds") is not None:
                lag_s.add_metric(labels, float(st["lag_seconds"]))
            if st.get("queue_depth") is not None:
                depth.add_metric(labels, float(st["queue_depth"]))
            oldest.add_metric(labels, float(st.get("queue_oldest_age_seconds") or 0.0))
            stale.add_metric(labels, 1.0 if (st.get("stale") or {}).get("alarm") else 0.0)
            if st.get("last_verify_ok") is not None:
                verify.add_metric(labels, 1.0 if st["last_verify_ok"] else 0.0)
            online.add_metric(labels, 1.0 if st.get("mode") == "online" else 0.0)
        yield from (silent, lag, lag_s, depth, oldest, stale, verify, online)


class RequestLatency(Collector):
    """A request-latency histogram per route template (never the raw path: it may hold a 宛名番号)."""

    def __init__(self, prefix: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.histogram = Histogram(
            f"{prefix}_http_request_duration_seconds",
            "time to answer an HTTP request, by route template and method",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
        )

    def middleware(self, routes: Sequence[BaseRoute]) -> Middleware:
        """The middleware to give ``Starlette(middleware=[...])``, outermost."""
        return Middleware(LatencyMiddleware, recorder=self, routes=routes)

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


class LatencyMiddleware:
    """Pure ASGI: times each HTTP request until its response ends, labels it by route template."""

    def __init__(self, app: ASGIApp, recorder: RequestLatency, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.recorder = recorder
        self.routes = routes

    def _route(self, scope: Scope) -> str:
        for r in self.routes:
            if isinstance(r, (Route, Mount)):
                match, _ = r.matches(scope)
                if match == Match.FULL:
                    return r.path
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        done = False

        async def timed_send(message: Message) -> None:
            nonlocal done
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False) and not done:
                done = True
                self.recorder.histogram.labels(self._route(scope), scope["method"]).observe(time.perf_counter() - start)

        await self.app(scope, receive, timed_send)


def render(*collectors: Collector) -> bytes:
    """The Prometheus text exposition of some collectors."""
    registry = CollectorRegistry(auto_describe=False)
    for c in collectors:
        registry.register(c)
    return generate_latest(registry)
