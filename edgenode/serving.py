"""Running an ASGI app under uvicorn and telling systemd about it.

READY=1 goes out once uvicorn's sockets listen, not before: a unit ordered after the node
starts only when the counter UI answers. STOPPING=1 goes out when shutdown begins. After a
graceful shutdown on SIGTERM/SIGINT the server returns (uvicorn alone re-raises the signal
and the process dies of it), so the caller's clean-up runs and the service exits 0.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from edgenode.sdnotify import Notifier


class NotifyingServer(uvicorn.Server):
    """A uvicorn server that reports readiness, stopping and (optionally) event-loop liveness."""

    def __init__(self, config: uvicorn.Config, notifier: Notifier, status: str, loop_watchdog: bool) -> None:
        super().__init__(config)
        self.notifier = notifier
        self.ready_status = status
        self.loop_watchdog = loop_watchdog

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self.notifier.ready(self.ready_status)

    async def on_tick(self, counter: int) -> bool:
        if self.loop_watchdog:
            # the event loop itself is what must stay alive here (the hub has no other loop)
            self.notifier.watchdog()
        return await super().on_tick(counter)

    async def shutdown(self, sockets: Any = None) -> None:
        self.notifier.stopping("shutting down")
        await super().shutdown(sockets)


def serve(
    app: Any, host: str, port: int, notifier: Notifier, status: str, *, loop_watchdog: bool = False, **options: Any
) -> None:
    """Serve `app` until SIGTERM/SIGINT; `options` go to `uvicorn.Config`."""
    config = uvicorn.Config(app, host=host, port=port, **options)
    NotifyingServer(config, notifier, status, loop_watchdog).run()
