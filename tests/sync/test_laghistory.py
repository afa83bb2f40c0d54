"""Lag history: durable samples, 7 days kept, the old part merged, bounded; throughput; sparkline."""

from __future__ import annotations

from pathlib import Path

from edgenode.sync.laghistory import (
    COARSE_BUCKET,
    FULL_RESOLUTION,
    KEEP,
    LagHistory,
    Sample,
    apply_rate,
    slots,
    sparkline,
)

NOW = 1_800_000_000.0


def _fill(h: LagHistory, start: float, end: float, step: float, mode: str = "online", lag: float = 0.0) -> None:
    t = start
    while t < end:
        h.record(Sample(t, int(t), int(t), 0, lag, mode, 2))
        t += step


def test_samples_older_than_seven_days_are_dropped_and_the_old_part_is_merged(tmp_path: Path) -> None:
    h = LagHistory(tmp_path / "node.db")
    _fill(h, NOW - KEEP - 3600, NOW - FULL_RESOLUTION - 600, 450)  # beyond a day, some beyond a week
    _fill(h, NOW - FULL_RESOLUTION, NOW, 600)
    h.record(Sample(NOW, 1, 1, 0, 0.0, "online", 0))
    old = h.samples(0, NOW - FULL_RESOLUTION - 1)
    assert old and min(s.at for s in old) >= NOW - KEEP
    buckets = [int(s.at // COARSE_BUCKET) for s in old]
    assert len(buckets) == len(set(buckets)), "one sample per 10-minute bucket beyond a day"
    recent = h.samples(NOW - FULL_RESOLUTION)
    assert len(recent) == FULL_RESOLUTION / 600 + 1, "the last day keeps every sample"
    # bounded: one a bucket for six days, one an interval for the last day
    assert h.count() <= (KEEP - FULL_RESOLUTION) / COARSE_BUCKET + 2 + FULL_RESOLUTION / 600 + 1


def test_merging_keeps_the_worst_lag_an_offline_moment_and_every_applied_change(tmp_path: Path) -> None:
    h = LagHistory(tmp_path / "node.db")
    base = (NOW - 2 * 86400) // COARSE_BUCKET * COARSE_BUCKET
    h.record(Sample(base + 10, 5, 9, 4, 30.0, "online", 3))
    h.record(Sample(base + 70, 6, 9, 3, 400.0, "online", 1))
    h.record(Sample(base + 130, 6, 9, 3, 20.0, "offline", 0))
    h.record(Sample(base + 190, 9, 9, 0, 0.0, "online", 3))
    h.record(Sample(NOW, 9, 9, 0, 0.0, "online", 0))  # compaction runs with each new sample
    [merged] = h.samples(base, base + COARSE_BUCKET)
    assert merged.lag_seconds == 400.0 and merged.lag_changes == 4
    assert merged.mode == "offline"
    assert merged.applied == 7 and merged.cursor == 9


def test_apply_rate_is_changes_per_second_over_the_window() -> None:
    samples = [Sample(NOW - 600 + 60 * k, 0, 0, 0, 0.0, "online", 30) for k in range(11)]
    assert apply_rate(samples, 900, NOW) == 30 / 60
    assert apply_rate(samples[:1], 900, NOW) is None
    assert apply_rate(samples, 30, NOW) is None  # only one sample in the last 30 s


def test_the_sparkline_shows_offline_as_x_no_data_as_dot_and_the_peak_as_the_tallest_bar() -> None:
    samples = []
    for k in range(24 * 60):
        at = NOW - 86400 + 60 * k
        if 6 * 60 <= k < 8 * 60:
            continue  # the node was not running for two hours
        mode = "offline" if 12 * 60 <= k < 13 * 60 else "online"
        lag = 900.0 if 18 * 60 <= k < 18 * 60 + 10 else 0.0
        samples.append(Sample(at, k, k, 0, lag, mode, 1))
    line = sparkline(slots(samples, NOW - 86400, NOW, 24, 60))
    assert len(line) == 24
    assert line[6:8] == "··"
    assert line[12] == "x"
    assert line[18] == "█" and set(line) - {"·", "x", "█"} == {"▁"}
