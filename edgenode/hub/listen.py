"""Waking long-polls from PostgreSQL: LISTEN on one connection per hub process.

A commit that moves a tenant's head fires ``NOTIFY edgenode_head, '<lg_code>:<head>'`` (a
trigger, see `edgenode.hub.pg`), delivered by PostgreSQL to every listening process once the
transaction commits. So a change committed through any hub process (or `hub simulate`, or
`hub apply`) wakes the long-polls waiting in all of them, without polling the database.

If the listening connection drops, it reconnects with back-off; meanwhile waiting requests fall
back to re-reading the head every `recheck` seconds, so a lost notification delays a node by at
most that, never forever.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import psycopg

from edgenode.hub.pg import CHANNEL

log = logging.getLogger("edgenode.hub")


class Waker(Protocol):
    """Something a feed long-poll waits on until a tenant's head moves."""

    #: Longest a waiting request goes without re-reading the head itself, seconds.
    recheck: float

    async def wait_beyond(self, lg_code: str, seq: int, timeout: float) -> None:
        """Return once the tenant's head exceeds `seq` (or may have), or after `timeout` seconds."""


class NotifyWatcher:
    """Tenant heads as PostgreSQL announces them; waiters wake on the notification."""

    recheck = 10.0

    def __init__(self, url: str) -> None:
        self.url = url
        self._heads: dict[str, int] = {}
        self._conds: dict[str, asyncio.Condition] = {}
        self._task: asyncio.Task[None] | None = None
        self.listening = False

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening, backoff = True, 0.5
                    async for note in conn.notifies():
                        lg_code, _, head = note.payload.partition(":")
                        self._heads[lg_code] = int(head)
                        cond = self._conds.get(lg_code)
                        if cond is not None:
                            async with cond:
                                cond.notify_all()
            except (psycopg.Error, OSError, ValueError) as exc:
                log.warning("listening for commits failed (%s); retrying in %.1f s", type(exc).__name__, backoff)
            self.listening = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.recheck)

    def start(self) -> None:
        """Start listening (idempotent; needs a running event loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def wait_beyond(self, lg_code: str, seq: int, timeout: float) -> None:
        self.start()
        cond = self._conds.setdefault(lg_code, asyncio.Condition())
        try:
            async with cond:
                await asyncio.wait_for(cond.wait_for(lambda: self._heads.get(lg_code, -1) > seq), timeout)
        except TimeoutError:
            pass
