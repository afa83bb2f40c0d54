"""The running sync loop against a real hub process: lag samples, heartbeats, and "sync now"."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pytest

from edgenode.sync.laghistory import LagHistory
from edgenode.sync.nodeconfig import load_node_settings
from edgenode.sync.syncer import Syncer
from tests.integration.conftest import HubProc, make_node


def _wait(cond: object, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_the_loop_samples_lag_and_a_wake_cuts_a_long_backoff_short(
    hub: HubProc, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "edgenode.sync")
    data = make_node(tmp_path, hub.url, hub.token("node1"))
    flags = {
        "lag_sample_interval": 1.0,
        "feed_wait": 1.0,
        "heartbeat_interval": 1.0,
        "request_timeout": 2.0,
        # after an error the loop would sleep for minutes: only a wake brings it back sooner
        "backoff_initial": 600.0,
        "backoff_max": 600.0,
    }
    syncer = Syncer(data, load_node_settings(data, env={}, flags=flags))
    stop = threading.Event()
    loop = threading.Thread(target=syncer.run, args=(stop,), daemon=True)
    loop.start()
    try:
        _wait(lambda: syncer.status()["cursor"] is not None, "never bootstrapped")
        _wait(lambda: LagHistory(data / "node.db").count() >= 2, "no lag samples recorded")
        samples = LagHistory(data / "node.db").samples(0)
        assert samples[-1].mode in ("online", "reconciling") and samples[-1].cursor == syncer.status()["cursor"]
        hub.stop()
        _wait(lambda: syncer.status()["last_error"] is not None, "the loop never noticed the hub was gone")
        errors = syncer.status()["recent_errors"]
        assert errors and errors[0]["hint"], errors
        hub.start()
        hub.simulate(4, seed=9)
        retries = [r for r in caplog.records if "retry in" in r.getMessage()]
        assert retries, "the loop never backed off"
        delay = float(re.findall(r"retry in ([0-9.]+)s", retries[-1].getMessage())[0])
        syncer.wake.set()  # what the admin page's 今すぐ同期 does
        _wait(lambda: syncer.status()["cursor"] == 4, "the wake did not cut the backoff short", limit=delay + 60)
        # caught up before the backoff it was sleeping would have ended (full jitter: 0–600 s)
        assert time.time() < retries[-1].created + delay or delay < 1.0
        _wait(lambda: hub.fleet()["nodes"][0]["cursor"] == 4, "no heartbeat after the wake")
    finally:
        stop.set()
        loop.join(timeout=30)
        syncer.close()
