"""The watcher thread of `node serve`: the inbox folder and the configuration files.

One thread, built on `watchfiles` (inotify): a change wakes it at once, and it also wakes
every second without one, which is what lets a file in the inbox settle (its size must stay
put for a while) and what notices an inbox on a USB mount appearing or going away. Each
wake-up runs `ConfigReloader.check` and `Inbox.scan`; an error in either is logged and the
thread goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from watchfiles import watch

from edgenode.config_watch import ConfigReloader
from edgenode.sync.inbox import Inbox

log = logging.getLogger("edgenode.watch")


def tick(inbox: Inbox | None, reloader: ConfigReloader | None) -> None:
    """One round: reload edited configuration, then handle settled inbox files."""
    if reloader is not None:
        try:
            reloader.check()
        except Exception:
            log.exception("config: reload failed")
    if inbox is not None:
        try:
            inbox.scan(time.monotonic())
        except Exception:
            log.exception("inbox: scan failed")


def watch_node(stop: threading.Event, data: Path, inbox: Inbox | None, reloader: ConfigReloader | None) -> None:
    """Watch until `stop` is set."""
    inbox_dir = inbox.folder.resolve() if inbox is not None else None
    while not stop.is_set():
        have_inbox = inbox_dir is not None and inbox_dir.is_dir()
        paths = [data] + ([inbox_dir] if have_inbox and inbox_dir is not None else [])
        tick(inbox, reloader)
        try:
            for _changes in watch(
                *paths,
                # no filter: the data folder changes all the time (node.db), and watchfiles
                # does not wake on a timeout while changes keep coming, even filtered ones
                watch_filter=None,
                recursive=False,
                stop_event=stop,
                rust_timeout=1000,
                yield_on_timeout=True,
                debounce=400,
                raise_interrupt=False,
            ):
                tick(inbox, reloader)
                if inbox_dir is not None and inbox_dir.is_dir() != have_inbox:
                    break  # the inbox was mounted or unmounted: watch again
        except OSError as exc:
            log.warning("watch: %s; watching again in 5 s", exc)
            stop.wait(5.0)
