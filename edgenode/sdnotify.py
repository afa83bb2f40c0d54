"""The sd_notify protocol, standard library only: tell systemd we are ready, alive, stopping.

systemd passes a socket address in ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace) and, with ``WatchdogSec=``, the watchdog period in ``WATCHDOG_USEC`` (and the pid
it is meant for in ``WATCHDOG_PID``). Each message is one datagram of ``KEY=VALUE`` lines.
Without ``NOTIFY_SOCKET`` (a terminal, a test) every call is a no-op. A failed send is logged
and ignored: losing a notification must never take down the counter UI.

The CLI builds a `Notifier` from the environment and hands it to the server and the sync loop;
library code never reads the environment itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger("edgenode.sdnotify")


class Notifier:
    """Sends sd_notify messages to one socket; does nothing when there is none."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        #: The watchdog timeout in seconds, or None when systemd does not watch us.
        self.watchdog_timeout = watchdog_usec / 1e6 if watchdog_usec else None
        self._last_ping = -1e18
        self._lock = threading.Lock()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pid: int | None = None) -> Notifier:
        """The notifier systemd set up for process `pid` (default: this one) in `environ`."""
        pid = os.getpid() if pid is None else pid
        address = environ.get("NOTIFY_SOCKET") or None
        if address is not None and not (address.startswith("/") or address.startswith("@")):
            log.warning("NOTIFY_SOCKET is neither a path nor an abstract name; not notifying systemd")
            address = None
        usec: int | None = None
        raw = environ.get("WATCHDOG_USEC")
        if raw:
            try:
                usec = int(raw)
            except ValueError:
                log.warning("WATCHDOG_USEC is not a number: %r; no watchdog", raw)
            owner = environ.get("WATCHDOG_PID")
            if usec is not None and owner and owner != str(pid):
                usec = None  # meant for another process (we inherited it): not ours to answer
            if usec is not None and usec <= 0:
                usec = None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        """Whether systemd is listening."""
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send one message made of `fields` (``KEY=VALUE``); True if it was sent."""
        if self.address is None:
            return False
        for f in fields:
            if "=" not in f or "\n" in f:
                raise ValueError(f"not a KEY=VALUE line: {f!r}")
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode("utf-8"), target)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        """READY=1 (and a status line): the service does what it is for."""
        return self.notify("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        """STATUS=…: the line `systemctl status` shows."""
        return self.notify(f"STATUS={_one_line(text)}")

    def stopping(self, status: str = "") -> bool:
        """STOPPING=1: shutdown has begun."""
        return self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    @property
    def ping_interval(self) -> float | None:
        """Longest gap allowed between watchdog pings (half the timeout), or None."""
        return None if self.watchdog_timeout is None else self.watchdog_timeout / 2

    def watchdog(self) -> bool:
        """WATCHDOG=1, at most about four times per timeout; call it from the loop that must stay alive.

        Cheap enough to call on every iteration of a busy loop: it sends only when a quarter
        of the timeout (at most a second) has passed since the last ping.
        """
        if self.watchdog_timeout is None or self.address is None:
            return False
        now = time.monotonic()
        with self._lock:
            if now - self._last_ping < min(1.0, self.watchdog_timeout / 4):
                return False
            self._last_ping = now
        return self.notify("WATCHDOG=1")


def _one_line(text: str) -> str:
    return " ".join(text.split())
