"""What the node admin page shows, gathered in one place (and the verify it can start).

`admin_facts` reads durable state only (status, lag history, audit log, disk), so it is safe
to call from a worker thread while the sync loop runs. `VerifyRunner` runs `Syncer.verify` in
a thread of its own: the page answers at once and shows the result when it is there.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from edgenode.audit import AuditLog
from edgenode.counter_ui import lagchart
from edgenode.durable import utcnow
from edgenode.errors import EdgenodeError
from edgenode.settings import Settings
from edgenode.sync.laghistory import LagHistory, apply_rate
from edgenode.sync.mode import ModeMachine
from edgenode.sync.state import NodeState
from edgenode.sync.statustext import disk, flat

log = logging.getLogger("edgenode.counter_ui")

#: apply throughput is averaged over this window
RATE_WINDOW = 900.0


def admin_facts(
    data: Path, settings: Settings, st: dict[str, Any], audit: AuditLog, verifying: bool = False
) -> dict[str, Any]:
    """Everything on the admin page apart from the live status itself (`verifying`: a verify runs)."""
    now = time.time()
    interval = float(settings["lag_sample_interval"])
    samples = LagHistory(data / "node.db").samples(now - 7 * 86400)
    n, problem = audit.verify()
    state = NodeState(data / "node.db").all()
    return {
        "charts": lagchart.charts(samples, now, interval),
        "apply_rate": apply_rate(samples, RATE_WINDOW, now),
        "rate_window_min": int(RATE_WINDOW // 60),
        "sample_count": len(samples),
        "disk": disk(data),
        "backup_rows": flat(st.get("backup") or {}),
        "audit_count": n,
        "audit_problem": problem,
        "entries": audit.entries(30),
        "verify_running": verifying,
        "verify_error": state.get("verify_error"),
    }


class VerifyRunner:
    """One `Syncer.verify` at a time, in a background thread; the result lands in ``node.db``."""

    def __init__(self, data: Path, settings: Settings, audit: AuditLog, mode: ModeMachine | None = None) -> None:
        self.data = data
        self.settings = settings
        self.audit = audit
        self.mode = mode  # the app's mode machine: a verify that reaches the hub reports it there
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def running(self) -> bool:
        """Whether a verify started here is still running (a flag left by a killed process is not)."""
        return self.thread is not None and self.thread.is_alive()

    def start(self, actor: str) -> bool:
        """Start a verify unless one is running; False if one already is."""
        if not self._lock.acquire(blocking=False):
            return False
        state = NodeState(self.data / "node.db")
        state.update(verify_running=True, verify_error=None)
        self.audit.append("verify_started", actor, {})
        self.thread = threading.Thread(target=self._run, args=(actor, state), name="admin-verify", daemon=True)
        self.thread.start()
        return True

    def _run(self, actor: str, state: NodeState) -> None:
        from edgenode.sync.syncer import Syncer

        syncer: Syncer | None = None
        try:
            syncer = Syncer(self.data, self.settings, mode=self.mode)
            r = syncer.verify()
            detail = {
                "identical": r.identical,
                "seq": r.seq,
                "differing": len(r.differing),
                "repaired_rows": r.repaired_rows,
                "rebootstrapped": r.rebootstrapped,
                "at": utcnow(),
                "by": actor,
            }
            state.update(last_verify_detail=detail, verify_running=False)
            self.audit.append("verify_done", actor, {k: v for k, v in detail.items() if k != "by"})
        except EdgenodeError as exc:
            log.warning("verify from the admin page failed: %s", exc)
            state.update(verify_running=False, verify_error=f"{type(exc).__name__}: {exc}")
            self.audit.append("verify_failed", actor, {"error": type(exc).__name__})
        except Exception as exc:  # a verify must never leave the flag stuck on
            log.exception("verify from the admin page crashed")
            state.update(verify_running=False, verify_error=f"{type(exc).__name__}: {exc}")
        finally:
            if syncer is not None:
                syncer.close()
            self._lock.release()
