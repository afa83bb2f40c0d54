"""Cost of the node's operations view: one lag sample, and the admin page's facts, on a full week.

    python -m bench.admin [--quick]

A node.db holding a full 7-day lag history at the default interval (60 s: one sample a minute
for the last day, one per 10 minutes before). Timed in the same run:

- ``LagHistory.record`` (one sample with its compaction) against the baseline
  ``NodeState.update`` of the same number of keys: the write the sync loop already does
  after every batch;
- drawing both SVG charts from the week's samples, and the terminal status text, against the
  baseline ``node_status`` (what every counter page already computes for its banner).

Prints p50/p95 in milliseconds and the ratios. Interleaved, so load from other processes hits
both sides alike.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

from bench._common import workdir
from edgenode.counter_ui.lagchart import charts
from edgenode.settings import NODE_SETTINGS, load
from edgenode.sync.laghistory import COARSE_BUCKET, FULL_RESOLUTION, KEEP, LagHistory, Sample
from edgenode.sync.state import NodeState
from edgenode.sync.syncer import node_status


def fill(history: LagHistory, now: float) -> None:
    """A week of samples as the running node leaves them (merged beyond a day)."""
    t = now - KEEP + 1
    while t < now:
        age = now - t
        lag = 900 * math.exp(-(((age - 5 * 3600) / 1800) ** 2))
        mode = "offline" if 10 * 3600 < age < 12 * 3600 else "online"
        history.record(Sample(t, int(t), int(t), int(lag / 10), lag, mode, 3))
        t += 60 if age <= FULL_RESOLUTION else COARSE_BUCKET


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def pct(times: list[float], q: float) -> float:
    s = sorted(times)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    args = ap.parse_args()
    rounds = 20 if args.quick else 200
    with workdir("bench-admin-") as root:
        db = root / "node.db"
        history, state = LagHistory(db), NodeState(db)
        now = time.time()
        fill(history, now)
        rows = history.count()
        samples = history.samples(now - KEEP)
        rec: list[float] = []
        base_w: list[float] = []
        draw: list[float] = []
        clock = now
        for _ in range(rounds):
            clock += 60
            rec += timed(lambda c=clock: history.record(Sample(c, 1, 1, 0, 0.0, "online", 3)), 1)
            base_w += timed(lambda: state.update(a=1, b=2, c=3, d=4, e=5, f=6, g=7), 1)
            draw += timed(lambda: charts(samples, now, 60.0), 1)
        settings = load(NODE_SETTINGS, None, {}, {"lg_code": "454214", "hub_public_key": "x", "node_id": "n"})
        base_r = timed(lambda: node_status(root, settings), rounds)
        bound = int((KEEP - FULL_RESOLUTION) / COARSE_BUCKET + FULL_RESOLUTION / 60) + 2
        print(f"lag history rows after a week: {rows} (kept at most {bound})")
        print(f"{'what':44} {'p50 ms':>8} {'p95 ms':>8}")
        for name, t in (
            ("LagHistory.record (with compaction)", rec),
            ("baseline NodeState.update (7 keys)", base_w),
            ("both SVG charts from a week of samples", draw),
            ("baseline node_status", base_r),
        ):
            print(f"{name:44} {pct(t, 0.5):8.2f} {pct(t, 0.95):8.2f}")
        print(f"record / NodeState.update (p50): {statistics.median(rec) / statistics.median(base_w):.2f}x")
        print(f"charts / node_status (p50): {statistics.median(draw) / statistics.median(base_r):.2f}x")
        print(f"SVG size of both charts: {sum(len(v) for v in charts(samples, now, 60.0).values()) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
