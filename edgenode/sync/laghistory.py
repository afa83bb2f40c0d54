"""The node's lag history (``lag_sample`` in ``node.db``): what the admin charts are drawn from.

The running node records one sample every ``lag_sample_interval`` seconds: time, cursor, hub
head, lag in changes and seconds, mode, and how many transactions it applied since the sample
before. Samples are kept for `KEEP` (7 days); those older than `FULL_RESOLUTION` (24 hours) are
merged into one per `COARSE_BUCKET` (10 minutes), keeping the worst lag and any offline mode in
the bucket, so the table stays bounded (at most 86400/interval + 7·144 rows) and a short
outage inside an old bucket still shows.

A gap between samples longer than `gap_after(interval)` means the node itself was not running
(no `node serve` to record anything); charts shade it as "no data", apart from "offline".
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgenode.durable import open_db

log = logging.getLogger("edgenode.sync")

SQL = """
CREATE TABLE IF NOT EXISTS lag_sample (
  at          REAL PRIMARY KEY,
  cursor      INTEGER,
  hub_head    INTEGER,
  lag_changes INTEGER,
  lag_seconds REAL,
  mode        TEXT NOT NULL,
  applied     INTEGER NOT NULL DEFAULT 0
)
"""
KEEP = 7 * 86400.0
FULL_RESOLUTION = 86400.0
COARSE_BUCKET = 600.0
#: Worst first: a merged bucket takes the worst mode any of its samples had.
_MODE_RANK = {"offline": 3, "bootstrapping": 2, "reconciling": 1, "online": 0}


@dataclass(frozen=True)
class Sample:
    """One point of the lag history (``at`` in Unix seconds)."""

    at: float
    cursor: int | None
    hub_head: int | None
    lag_changes: int | None
    lag_seconds: float | None
    mode: str
    applied: int = 0


def gap_after(interval: float) -> float:
    """A silence between samples longer than this means the node was not running."""
    return max(3 * interval, interval + 30.0)


def covers(s: Sample, next_at: float | None, interval: float) -> float:
    """Until when sample `s` speaks for the node: the next sample, or one interval if none follows soon."""
    if next_at is not None and next_at - s.at <= gap_after(interval):
        return next_at
    return s.at + interval


def sample_from_status(st: dict[str, Any], applied: int, at: float | None = None) -> Sample:
    """A sample of the node as `node_status` sees it now."""
    return Sample(
        at=time.time() if at is None else at,
        cursor=st.get("cursor"),
        hub_head=st.get("hub_head"),
        lag_changes=st.get("lag_changes"),
        lag_seconds=st.get("lag_seconds"),
        mode=str(st.get("mode") or "online"),
        applied=max(0, int(applied)),
    )


class LagHistory:
    """Recording, reading and compacting lag samples."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _db(self) -> sqlite3.Connection:
        # NORMAL: losing the last sample or two to a power cut is harmless, fsyncs are not free
        return open_db(self.path, SQL, synchronous="NORMAL")

    def record(self, s: Sample) -> None:
        """Store one sample, then drop what is past `KEEP` and merge what is past 24 hours."""
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR REPLACE INTO lag_sample (at, cursor, hub_head, lag_changes, lag_seconds, mode, applied)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (s.at, s.cursor, s.hub_head, s.lag_changes, s.lag_seconds, s.mode, s.applied),
            )
            _compact(conn, s.at)
            conn.execute("COMMIT")
        finally:
            conn.close()

    def samples(self, since: float, until: float | None = None) -> list[Sample]:
        """Samples from `since` (Unix seconds) on, oldest first."""
        if not self.path.exists():
            return []
        conn = self._db()
        try:
            rows = conn.execute(
                "SELECT at, cursor, hub_head, lag_changes, lag_seconds, mode, applied FROM lag_sample"
                " WHERE at >= ? AND at <= ? ORDER BY at",
                (since, until if until is not None else float("inf")),
            ).fetchall()
        finally:
            conn.close()
        return [Sample(*r) for r in rows]

    def count(self) -> int:
        """How many samples are stored."""
        conn = self._db()
        try:
            return int(conn.execute("SELECT count(*) FROM lag_sample").fetchone()[0])
        finally:
            conn.close()


def _compact(conn: sqlite3.Connection, now: float) -> None:
    conn.execute("DELETE FROM lag_sample WHERE at < ?", (now - KEEP,))
    cutoff = now - FULL_RESOLUTION
    crowded = [
        r[0]
        for r in conn.execute(
            "SELECT CAST(at / ? AS INTEGER) AS b FROM lag_sample WHERE at < ? GROUP BY b HAVING count(*) > 1",
            (COARSE_BUCKET, cutoff),
        )
    ]
    for b in crowded:
        lo, hi = b * COARSE_BUCKET, (b + 1) * COARSE_BUCKET
        rows = [
            Sample(*r)
            for r in conn.execute(
                "SELECT at, cursor, hub_head, lag_changes, lag_seconds, mode, applied FROM lag_sample"
                " WHERE at >= ? AND at < ? AND at < ? ORDER BY at",
                (lo, hi, cutoff),
            )
        ]
        if len(rows) < 2:
            continue
        merged = merge(rows)
        conn.execute("DELETE FROM lag_sample WHERE at >= ? AND at < ? AND at < ?", (lo, hi, cutoff))
        conn.execute(
            "INSERT INTO lag_sample (at, cursor, hub_head, lag_changes, lag_seconds, mode, applied)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                merged.at,
                merged.cursor,
                merged.hub_head,
                merged.lag_changes,
                merged.lag_seconds,
                merged.mode,
                merged.applied,
            ),
        )


def _max(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def merge(rows: list[Sample]) -> Sample:
    """One sample standing for several: the worst lag and mode, the last position, all applied."""
    return Sample(
        at=rows[0].at,
        cursor=rows[-1].cursor,
        hub_head=_max([r.hub_head for r in rows]),
        lag_changes=_max([r.lag_changes for r in rows]),
        lag_seconds=_max([r.lag_seconds for r in rows]),
        mode=max((r.mode for r in rows), key=lambda m: _MODE_RANK.get(m, 0)),
        applied=sum(r.applied for r in rows),
    )


def apply_rate(samples: list[Sample], window: float, now: float) -> float | None:
    """Transactions applied per second over the last `window` seconds (None without samples)."""
    recent = [s for s in samples if s.at >= now - window]
    if len(recent) < 2:
        return None
    span = recent[-1].at - recent[0].at
    if span <= 0:
        return None
    # the first sample's count covers the time before the window
    return sum(s.applied for s in recent[1:]) / span


# ---------------------------------------------------------------- bucketing for charts and text


@dataclass(frozen=True)
class Slot:
    """What happened in one slice of time: worst lag, worst mode, or no data at all."""

    start: float
    end: float
    lag_seconds: float | None
    mode: str | None  # None: no sample covers this slot (the node was not running)


def slots(samples: list[Sample], start: float, end: float, n: int, interval: float) -> list[Slot]:
    """`n` equal slices of [start, end), each with the worst lag and mode of the samples in it.

    A sample stands for the time up to the next one (`covers`), so a slot between two close
    samples is covered even if no sample falls inside it.
    """
    width = (end - start) / n
    out: list[list[Any]] = [[None, None] for _ in range(n)]
    for i, s in enumerate(samples):
        upto = covers(s, samples[i + 1].at if i + 1 < len(samples) else None, interval)
        first = max(0, int((s.at - start) // width))
        last = min(n - 1, int((upto - start - 1e-9) // width))
        for k in range(first, last + 1):
            slot = out[k]
            if s.lag_seconds is not None:
                slot[0] = s.lag_seconds if slot[0] is None else max(slot[0], s.lag_seconds)
            if slot[1] is None or _MODE_RANK.get(s.mode, 0) > _MODE_RANK.get(slot[1], 0):
                slot[1] = s.mode
    return [Slot(start + k * width, start + (k + 1) * width, v[0], v[1]) for k, v in enumerate(out)]


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(parts: list[Slot]) -> str:
    """A one-line text chart: a bar per slot (height ~ lag), ``x`` offline, ``·`` no data."""
    top = max((p.lag_seconds or 0.0 for p in parts), default=0.0)
    chars = []
    for p in parts:
        if p.mode is None:
            chars.append("·")
        elif p.mode == "offline":
            chars.append("x")
        elif not p.lag_seconds or top <= 0:
            chars.append(_BARS[0])
        else:
            chars.append(_BARS[min(len(_BARS) - 1, 1 + int((len(_BARS) - 2) * p.lag_seconds / top))])
    return "".join(chars)
