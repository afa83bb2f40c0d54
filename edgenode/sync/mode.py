"""The node's operating mode and the WAN monitor that drives it.

::

    online ──(hub silent for `offline_after` s: several failed probes, not one)──▶ offline
    offline ──(hub answers `recover_probes` times in a row)──▶ reconciling
    reconciling ──(replica caught up with the hub)──▶ online
    any ──(supervisor: 強制縮退)──▶ offline (forced; only a release leaves it)

``bootstrapping`` is reported while no replica exists. Every transition is written to the
audit log with its reason and the user who caused it (None for the monitor), and stored in
``node.db`` so that `node status` and the counter banner show it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from edgenode.audit import AuditLog
from edgenode.durable import utcnow
from edgenode.sync.state import NodeState

log = logging.getLogger("edgenode.mode")

MODES = ("online", "offline", "reconciling", "bootstrapping")


@dataclass
class ModeMachine:
    """Decides the mode from evidence (probe results, sync progress, supervisor orders)."""

    state: NodeState
    audit: AuditLog
    offline_after: float = 8.0
    recover_probes: int = 2
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ok = self.clock()
        self._good_in_a_row = 0
        st = self.state.all()
        self._mode: str = st.get("mode") or "online"
        self._forced: bool = bool(st.get("forced_offline"))

    @property
    def mode(self) -> str:
        """The current mode."""
        return self._mode

    @property
    def forced(self) -> bool:
        """True while a supervisor holds the node offline."""
        return self._forced

    def _switch(self, new: str, reason: str, actor: str | None) -> None:
        if new == self._mode:
            return
        old = self._mode
        self._mode = new
        self.audit.append("mode", actor, {"from": old, "to": new, "reason": reason})
        self.state.update(mode=new, mode_since=utcnow(), mode_reason=reason, forced_offline=self._forced)
        log.warning("mode %s -> %s (%s)", old, new, reason)

    def hub_answered(self) -> None:
        """A probe or sync request got an answer from the hub."""
        with self._lock:
            self._last_ok = self.clock()
            self._good_in_a_row += 1
            if self._mode == "offline" and not self._forced and self._good_in_a_row >= self.recover_probes:
                self._switch("reconciling", "データセンターとの通信が回復しました", None)

    def hub_failed(self, why: str) -> None:
        """A probe or sync request got no answer (or an error from the hub)."""
        with self._lock:
            self._good_in_a_row = 0
            silent = self.clock() - self._last_ok
            if self._mode in ("online", "reconciling") and silent >= self.offline_after:
                self._switch("offline", f"データセンターが{silent:.0f}秒応答しません（{why}）", None)

    def caught_up(self) -> None:
        """The replica reached the hub's head (and, later, the write queue is empty)."""
        with self._lock:
            if self._mode == "reconciling" and not self._forced:
                self._switch("online", "データの同期が完了しました", None)

    def force_offline(self, user: str, reason: str) -> None:
        """A supervisor switches the counter to offline operation (強制縮退)."""
        with self._lock:
            self._forced = True
            self.state.update(forced_offline=True)
            if self._mode == "offline":
                self.audit.append("mode", user, {"from": "offline", "to": "offline", "reason": f"強制縮退: {reason}"})
            self._switch("offline", f"監督者による強制縮退: {reason}", user)

    def release(self, user: str) -> None:
        """A supervisor ends a forced offline period; the node reconciles, then goes online."""
        with self._lock:
            if not self._forced:
                return
            self._forced = False
            self.state.update(forced_offline=False)
            self._switch("reconciling", "監督者が強制縮退を解除しました", user)


class WanMonitor:
    """Probes the hub every `interval` seconds and feeds the results to a `ModeMachine`.

    The sync loop's long-poll can hang for its whole wait on a black-holed link; a short,
    separate probe detects a dead WAN within a few seconds.
    """

    def __init__(self, machine: ModeMachine, hub_url: str, interval: float = 2.0, timeout: float = 2.0) -> None:
        self.machine = machine
        self.url = hub_url.rstrip("/") + "/healthz"
        self.interval = interval
        self.timeout = timeout

    def probe(self, client: httpx.Client) -> None:
        """One probe."""
        try:
            r = client.get(self.url, timeout=self.timeout)
        except httpx.HTTPError as exc:
            self.machine.hub_failed(type(exc).__name__)
            return
        if r.status_code == 200:
            self.machine.hub_answered()
        else:
            self.machine.hub_failed(f"HTTP {r.status_code}")

    def run(self, stop: threading.Event) -> None:
        """Probe until `stop` is set."""
        with httpx.Client() as client:
            while not stop.is_set():
                self.probe(client)
                stop.wait(self.interval)
