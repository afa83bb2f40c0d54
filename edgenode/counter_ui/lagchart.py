"""Server-rendered SVG charts of the node's lag history (admin page), in pure Python.

No script, no external fonts or images, presentation attributes only (no ``style``), so the
page's Content-Security-Policy needs nothing new. Each chart is one ``<svg role="img">`` with
a ``<title>`` and a ``<desc>`` that says in words what the picture shows (peak lag and when,
offline periods, times the node was not running), for screen readers and for tests.

What a reader should see at a glance: a red band where the node was offline, a grey hatched
band where it was not running at all (no samples), the lag line, and the peak marked. Times
on the axis are JST.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from edgenode.sync.laghistory import COARSE_BUCKET, FULL_RESOLUTION, Sample, covers, gap_after

JST = _dt.timezone(_dt.timedelta(hours=9), "JST")
WEEKDAYS = "月火水木金土日"
WIDTH, HEIGHT = 960, 230
LEFT, RIGHT, TOP, BOTTOM = 72.0, 940.0, 34.0, 190.0
LAG_COLOUR, OFFLINE_COLOUR, NODATA_COLOUR = "#0a4a8a", "#c00000", "#777777"
#: (axis maximum, grid steps) so that every label is a round duration
_NICE = (
    (60, 4),
    (300, 5),
    (600, 5),
    (900, 3),
    (1800, 3),
    (3600, 4),
    (7200, 4),
    (10800, 3),
    (21600, 3),
    (43200, 4),
    (86400, 4),
    (172800, 4),
    (345600, 4),
    (604800, 7),
)


@dataclass(frozen=True)
class Span:
    """A stretch of time: ``offline``, ``nodata`` (node not running), ``up``, or ``before`` the first sample."""

    start: float
    end: float
    kind: str


def duration(seconds: float) -> str:
    """「45秒」「12分」「3時間5分」「2日4時間」."""
    s = round(seconds)
    if s < 60:
        return f"{s}秒"
    if s < 3600:
        return f"{s // 60}分"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}時間" + (f"{m}分" if m else "")
    d, h = divmod(s // 3600, 24)
    return f"{d}日" + (f"{h}時間" if h else "")


def jst(t: float, with_date: bool = False) -> str:
    """A Unix time as JST 「15:00」 or 「11/27(金) 15:00」."""
    d = _dt.datetime.fromtimestamp(t, JST)
    day = f"{d.month}/{d.day}({WEEKDAYS[d.weekday()]}) " if with_date else ""
    return f"{day}{d.hour:02d}:{d.minute:02d}"


def _interval(at: float, end: float, interval: float) -> float:
    # samples older than a day were merged into one per COARSE_BUCKET: sparser, but not a gap
    return max(interval, COARSE_BUCKET) if at < end - FULL_RESOLUTION else interval


def spans(samples: list[Sample], start: float, end: float, interval: float) -> list[Span]:
    """[start, end) cut into offline / nodata / up stretches; each sample covers until the next.

    `end` is taken as now: samples more than a day before it are expected at the coarse spacing.
    """
    out: list[Span] = []

    def add(a: float, b: float, kind: str) -> None:
        a, b = max(a, start), min(b, end)
        if b <= a:
            return
        if out and out[-1].kind == kind and abs(out[-1].end - a) < 1e-6:
            out[-1] = Span(out[-1].start, b, kind)
        else:
            out.append(Span(a, b, kind))

    cursor = start
    for i, s in enumerate(samples):
        if s.at > cursor:
            # before the first sample nothing is known (a new node, or history not yet kept)
            add(cursor, s.at, "nodata" if i else "before")
        nxt = samples[i + 1].at if i + 1 < len(samples) else None
        upto = covers(s, nxt, _interval(s.at, end, interval))
        add(s.at, upto, "offline" if s.mode == "offline" else "up")
        cursor = max(cursor, upto)
    if cursor < end:
        add(cursor, end, "nodata" if samples else "before")
    return out


def _scale(peak: float) -> tuple[float, int]:
    top, steps = next(((n, k) for n, k in _NICE if n >= peak), (peak, 4))
    return float(top), steps


def _ticks(start: float, end: float, step_hours: int) -> list[float]:
    first = _dt.datetime.fromtimestamp(start, JST).replace(minute=0, second=0, microsecond=0)
    if step_hours >= 24:
        first = first.replace(hour=0)
    t = first
    out = []
    while t.timestamp() <= end:
        if t.timestamp() >= start and (step_hours >= 24 or t.hour % step_hours == 0):
            out.append(t.timestamp())
        t += _dt.timedelta(hours=step_hours if step_hours >= 24 else 1)
    return out


def chart(samples: Iterable[Sample], start: float, end: float, interval: float, *, ident: str, title: str) -> str:
    """One panel of lag over [start, end] as an SVG string (``ident`` makes element ids unique)."""
    pts = [s for s in samples if start <= s.at <= end]
    parts = spans(pts, start, end, interval)
    lags = [s for s in pts if s.lag_seconds is not None]
    peak = max(lags, key=lambda s: s.lag_seconds or 0.0, default=None)
    top, steps = _scale(max(60.0, peak.lag_seconds or 0.0) if peak else 60.0)
    span = end - start

    def x(t: float) -> float:
        return round(LEFT + (RIGHT - LEFT) * (t - start) / span, 2)

    def y(v: float) -> float:
        return round(BOTTOM - (BOTTOM - TOP) * min(v, top) / top, 2)

    long = span > 2 * 86400
    offline = [p for p in parts if p.kind == "offline"]
    nodata = [p for p in parts if p.kind == "nodata"]
    desc = _describe(pts, peak, offline, nodata, long)
    tid, did = f"{ident}-title", f"{ident}-desc"
    o: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img"'
        f' class="lagchart" aria-labelledby="{tid} {did}" data-start="{start}" data-end="{end}"'
        f' data-left="{LEFT}" data-right="{RIGHT}" data-top="{TOP}" data-bottom="{BOTTOM}" data-ymax="{top}">',
        f'<title id="{tid}">{escape(title)}</title>',
        f'<desc id="{did}">{escape(desc)}</desc>',
        f'<defs><pattern id="{ident}-hatch" width="8" height="8" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><rect width="8" height="8" fill="#eeeeee"/>'
        f'<line x1="0" y1="0" x2="0" y2="8" stroke="{NODATA_COLOUR}" stroke-width="3"/></pattern></defs>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="20" font-size="16" font-weight="bold" fill="#111111">{escape(title)}</text>',
    ]
    # bands first, the line on top
    for p in parts:
        if p.kind == "before":
            o.append(
                f'<rect class="before" x="{x(p.start)}" y="{TOP}" width="{round(x(p.end) - x(p.start), 2)}"'
                f' height="{BOTTOM - TOP}" fill="#f4f4f4"/>'
            )
            if x(p.end) - x(p.start) > 160:
                o.append(
                    f'<text x="{round((x(p.start) + x(p.end)) / 2, 2)}" y="{(TOP + BOTTOM) / 2}" font-size="14"'
                    ' text-anchor="middle" fill="#555555">記録開始前 (no samples yet)</text>'
                )
    for p in nodata:
        o.append(
            f'<rect class="nodata" x="{x(p.start)}" y="{TOP}" width="{round(x(p.end) - x(p.start), 2)}"'
            f' height="{BOTTOM - TOP}" fill="url(#{ident}-hatch)" data-start="{p.start}" data-end="{p.end}">'
            f"<title>ノード停止（記録なし） {escape(jst(p.start, long))}–{escape(jst(p.end, long))}</title></rect>"
        )
    for p in offline:
        o.append(
            f'<rect class="offline" x="{x(p.start)}" y="{TOP}" width="{round(x(p.end) - x(p.start), 2)}"'
            f' height="{BOTTOM - TOP}" fill="{OFFLINE_COLOUR}" fill-opacity="0.28" data-start="{p.start}"'
            f' data-end="{p.end}"><title>オフライン（縮退） {escape(jst(p.start, long))}–{escape(jst(p.end, long))}'
            "</title></rect>"
        )
    # grid and y axis
    for k in range(steps + 1):
        v = top * k / steps
        o.append(f'<line x1="{LEFT}" y1="{y(v)}" x2="{RIGHT}" y2="{y(v)}" stroke="#cccccc" stroke-width="1"/>')
        o.append(
            f'<text x="{LEFT - 6}" y="{y(v) + 5}" font-size="13" text-anchor="end" fill="#333333">'
            f"{escape(duration(v))}</text>"
        )
    for t in _ticks(start, end, 24 if long else 3):
        o.append(f'<line x1="{x(t)}" y1="{TOP}" x2="{x(t)}" y2="{BOTTOM + 5}" stroke="#dddddd" stroke-width="1"/>')
        d = _dt.datetime.fromtimestamp(t, JST)
        label = f"{d.month}/{d.day}({WEEKDAYS[d.weekday()]})" if long else f"{d.hour:02d}:00"
        o.append(
            f'<text class="tick" x="{x(t)}" y="{BOTTOM + 20}" font-size="13" text-anchor="middle" fill="#333333"'
            f' data-t="{t}">{escape(label)}</text>'
        )
    o.append(f'<line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" stroke="#333333" stroke-width="1.5"/>')
    o.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{BOTTOM}" stroke="#333333" stroke-width="1.5"/>')
    # the lag line, broken where the node was not running
    run: list[Sample] = []
    for s in [*lags, None]:
        if s is None or (run and s.at - run[-1].at > gap_after(_interval(run[-1].at, end, interval))):
            if run:
                coords = " ".join(f"{x(r.at)},{y(r.lag_seconds or 0.0)}" for r in run)
                if len(run) == 1:
                    coords += f" {x(run[0].at) + 1},{y(run[0].lag_seconds or 0.0)}"
                o.append(
                    f'<polyline class="lag" points="{coords}" fill="none" stroke="{LAG_COLOUR}" stroke-width="2.5"'
                    ' stroke-linejoin="round"/>'
                )
            run = []
        if s is not None:
            run.append(s)
    if peak is not None and (peak.lag_seconds or 0) > 0:
        px, py = x(peak.at), y(peak.lag_seconds or 0.0)
        label = f"最大 {duration(peak.lag_seconds or 0.0)}（{jst(peak.at, long)}）"
        anchor = "end" if px > (LEFT + RIGHT) / 2 else "start"
        dx = -8 if anchor == "end" else 8
        o.append(
            f'<circle class="peak" cx="{px}" cy="{py}" r="5" fill="{LAG_COLOUR}" data-t="{peak.at}"'
            f' data-lag="{peak.lag_seconds}"/>'
        )
        o.append(
            f'<text x="{px + dx}" y="{max(TOP + 14, py - 8)}" font-size="14" font-weight="bold"'
            f' text-anchor="{anchor}" fill="{LAG_COLOUR}">{escape(label)}</text>'
        )
    # legend
    lx = RIGHT - 430
    o.append(
        f'<line x1="{lx}" y1="15" x2="{lx + 24}" y2="15" stroke="{LAG_COLOUR}" stroke-width="3"/>'
        f'<text x="{lx + 30}" y="20" font-size="13" fill="#111111">遅れ lag</text>'
        f'<rect x="{lx + 110}" y="6" width="22" height="16" fill="{OFFLINE_COLOUR}" fill-opacity="0.28"/>'
        f'<text x="{lx + 138}" y="20" font-size="13" fill="#111111">オフライン offline</text>'
        f'<rect x="{lx + 275}" y="6" width="22" height="16" fill="url(#{ident}-hatch)"/>'
        f'<text x="{lx + 303}" y="20" font-size="13" fill="#111111">停止 not running</text>'
    )
    o.append("</svg>")
    return "\n".join(o)


def _describe(pts: list[Sample], peak: Sample | None, offline: list[Span], nodata: list[Span], long: bool) -> str:
    if not pts:
        return "この期間の記録はありません（no samples in this period）。"
    words = [f"記録は {jst(pts[0].at, True)} から。"]
    if peak is not None and peak.lag_seconds:
        words.append(f"最大の遅れ {duration(peak.lag_seconds)}（{jst(peak.at, True)}）。")
    else:
        words.append("遅れなし。")
    if offline:
        words.append(
            f"オフライン {len(offline)} 回、計 {duration(sum(p.end - p.start for p in offline))}："
            + "、".join(f"{jst(p.start, True)}–{jst(p.end, long)}" for p in offline[:5])
            + "。"
        )
    else:
        words.append("オフラインなし。")
    if nodata:
        words.append(f"記録なし（ノード停止）{len(nodata)} 回、計 {duration(sum(p.end - p.start for p in nodata))}。")
    last = pts[-1]
    if last.lag_seconds is not None:
        words.append(f"最新の遅れ {duration(last.lag_seconds)}（{jst(last.at, True)}）。")
    return "".join(words)


def charts(samples: list[Sample], now: float, interval: float) -> dict[str, str]:
    """The admin page's two panels: the last 24 hours and the last 7 days."""
    return {
        "day": chart(
            samples, now - 86400, now, interval, ident="lag24h", title="過去24時間の遅れ (lag, last 24 h, JST)"
        ),
        "week": chart(
            samples, now - 7 * 86400, now, interval, ident="lag7d", title="過去7日間の遅れ (lag, last 7 days, JST)"
        ),
    }


__all__ = ["Span", "chart", "charts", "duration", "jst", "spans"]
