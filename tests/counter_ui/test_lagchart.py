"""The lag chart is XML: a known offline period and a known peak appear where they should."""

from __future__ import annotations

import datetime as _dt
import xml.etree.ElementTree as ET

from edgenode.counter_ui.lagchart import JST, charts
from edgenode.sync.laghistory import Sample

SVG = "{http://www.w3.org/2000/svg}"
# 2026-11-27 12:00 JST
NOW = _dt.datetime(2026, 11, 27, 12, 0, tzinfo=JST).timestamp()
OFF_FROM = _dt.datetime(2026, 11, 27, 1, 0, tzinfo=JST).timestamp()
OFF_TO = _dt.datetime(2026, 11, 27, 3, 0, tzinfo=JST).timestamp()
PEAK_AT = _dt.datetime(2026, 11, 27, 7, 30, tzinfo=JST).timestamp()
STOPPED_FROM = _dt.datetime(2026, 11, 25, 9, 0, tzinfo=JST).timestamp()
STOPPED_TO = _dt.datetime(2026, 11, 25, 15, 0, tzinfo=JST).timestamp()


def _history() -> list[Sample]:
    out = []
    t = NOW - 7 * 86400
    while t <= NOW:
        if STOPPED_FROM <= t < STOPPED_TO:
            t += 600
            continue
        mode = "offline" if OFF_FROM <= t < OFF_TO else "online"
        lag = 1200.0 if t == PEAK_AT else (300.0 if mode == "offline" else 5.0)
        out.append(Sample(t, 0, 0, 0, lag, mode, 1))
        t += 60 if t >= NOW - 86400 else 600
    return out


def _x(svg: ET.Element, t: float) -> float:
    start, end = float(svg.get("data-start", "")), float(svg.get("data-end", ""))
    left, right = float(svg.get("data-left", "")), float(svg.get("data-right", ""))
    return left + (right - left) * (t - start) / (end - start)


def test_the_day_chart_shades_the_offline_hours_and_marks_the_peak_where_they_happened() -> None:
    svg = ET.fromstring(charts(_history(), NOW, 60)["day"])
    [off] = svg.findall(f".//{SVG}rect[@class='offline']")
    assert abs(float(off.get("x", "")) - _x(svg, OFF_FROM)) < 1.0
    assert abs(float(off.get("width", "")) - (_x(svg, OFF_TO) - _x(svg, OFF_FROM))) < 1.0
    [peak] = svg.findall(f".//{SVG}circle[@class='peak']")
    assert abs(float(peak.get("cx", "")) - _x(svg, PEAK_AT)) < 1.0
    # the peak is the highest point of the lag line (smallest y) and sits at the top of the scale
    ys = [
        float(p.split(",")[1])
        for line in svg.findall(f".//{SVG}polyline[@class='lag']")
        for p in line.get("points", "").split()
    ]
    assert float(peak.get("cy", "")) == min(ys)
    assert svg.get("data-ymax") == "1800.0"
    desc = svg.find(f"{SVG}desc")
    assert desc is not None and desc.text is not None
    assert "最大の遅れ 20分（11/27(金) 07:30）" in desc.text
    assert "オフライン 1 回、計 2時間：11/27(金) 01:00–03:00" in desc.text
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "lag24h-title lag24h-desc"
    ticks = [t.text for t in svg.findall(f".//{SVG}text[@class='tick']")]
    assert ticks[0] == "12:00" and "00:00" in ticks and "09:00" in ticks  # JST hours


def test_the_week_chart_shows_when_the_node_was_not_running() -> None:
    svg = ET.fromstring(charts(_history(), NOW, 60)["week"])
    gaps = svg.findall(f".//{SVG}rect[@class='nodata']")
    assert len(gaps) == 1
    assert abs(float(gaps[0].get("x", "")) - _x(svg, STOPPED_FROM)) < 2.0
    assert abs(float(gaps[0].get("x", "")) + float(gaps[0].get("width", "")) - _x(svg, STOPPED_TO)) < 2.0
    assert len(svg.findall(f".//{SVG}polyline[@class='lag']")) == 2  # the line breaks over the gap
    ticks = [t.text for t in svg.findall(f".//{SVG}text[@class='tick']")]
    assert ticks[-1] == "11/27(金)" and len(ticks) == 7
    assert svg.findall(f".//{SVG}rect[@class='offline']")


def test_no_samples_draws_an_empty_chart_that_says_so() -> None:
    c = charts([], NOW, 60)
    svg = ET.fromstring(c["day"])
    desc = svg.find(f"{SVG}desc")
    assert desc is not None and "記録はありません" in (desc.text or "")
    assert not svg.findall(f".//{SVG}polyline")
    assert "script" not in c["day"] and "style=" not in c["day"] and 'href="http' not in c["day"]


def test_a_new_node_is_not_drawn_as_stopped_before_its_first_sample() -> None:
    samples = [Sample(NOW - 600 + 60 * k, k, k, 0, 0.0, "online", 1) for k in range(10)]
    svg = ET.fromstring(charts(samples, NOW, 60)["day"])
    assert not svg.findall(f".//{SVG}rect[@class='nodata']")
    [before] = svg.findall(f".//{SVG}rect[@class='before']")
    assert abs(float(before.get("x", "")) + float(before.get("width", "")) - _x(svg, NOW - 600)) < 1.0
    assert "記録は 11/27(金) 11:50 から" in (svg.findtext(f"{SVG}desc") or "")
