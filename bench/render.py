"""Certificate rendering speed: the warm `Renderer` against plain WeasyPrint, same run, same HTML.

    python -m bench.render [--runs 50] [--options]

A 4-person household (one A4 sheet) from the synthetic town. The baseline is what a first
attempt writes: ``HTML(string=html).write_pdf()`` with the font referenced by a file URL,
fresh for every certificate. The two are interleaved so that load from other processes hits
both alike; wall-clock p50/p95, their ratio, and CPU time (steadier on a busy machine) are
printed. ``--options`` also times the renderer after ``gc.freeze()``, with the WeasyPrint
options uncompressed_pdf / hinting / full_fonts, and with fontTools instead of HarfBuzz
subsetting, each with the PDF size it gives.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import gc
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgenode.certs.config import CertConfig
from edgenode.certs.issue import prepare
from edgenode.certs.model import CertRequest, Document
from edgenode.certs.render import Renderer
from edgenode.hub.synth import generate_population

TODAY = _dt.date(2026, 11, 27)


def household_of_four() -> list[dict[str, Any]]:
    """The first 4-person household of a small synthetic 門川町."""
    people = generate_population("454214", "門川町", 400, 7, TODAY)
    by_household: dict[str, list[dict[str, Any]]] = {}
    for rec in people:
        by_household.setdefault(rec["household_no"], []).append(rec)
    return next(h for h in by_household.values() if len(h) == 4)


def pct(times: list[float], q: float) -> float:
    """The q-quantile of `times`, in milliseconds (nearest rank)."""
    s = sorted(times)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] * 1000


@dataclass
class Sample:
    """Wall-clock and CPU seconds of repeated calls, and the size of the last result."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    size: int = 0

    def run(self, fn: Callable[[], bytes]) -> None:
        """Call `fn` once and record it."""
        w, c = time.perf_counter(), time.process_time()
        self.size = len(fn())
        self.cpu.append(time.process_time() - c)
        self.wall.append(time.perf_counter() - w)

    def row(self, name: str) -> str:
        """One line of the table."""
        return (
            f"{name:34} {pct(self.wall, 0.5):7.1f} {pct(self.wall, 0.95):7.1f} {pct(self.cpu, 0.5):8.1f} "
            f"{self.size:10d}"
        )


HEADER = f"{'':34} {'p50 ms':>7} {'p95 ms':>7} {'CPU p50':>8} {'PDF bytes':>10}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50, help="renders of each kind")
    ap.add_argument("--options", action="store_true", help="also time gc.freeze and WeasyPrint option variants")
    args = ap.parse_args()

    import weasyprint.pdf.fonts  # type: ignore[import-untyped]
    from weasyprint import HTML

    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        config = CertConfig(
            prefecture="宮崎県",
            municipality="門川町",
            mayor_name="門川　太郎",
            terminal_name="bench-1",
            serial_db=str(Path(tmp) / "serial.db"),
        )
        request = CertRequest("住民票の写し", "世帯全員", "世帯連記式", "本人", id_document="運転免許証")
        doc: Document = prepare(household_of_four(), request, config, _dt.datetime.combine(TODAY, _dt.time(10)))
        t0 = time.perf_counter()
        renderer = Renderer(config)
        renderer.warm_up()
        warm = time.perf_counter() - t0
        # Same content for the baseline: the stylesheet inline and the font as a file URL.
        html = renderer.html(doc).replace("asset:font-0", config.font_paths()[0].resolve().as_uri())

        def baseline() -> bytes:
            pdf: bytes = HTML(string=html).write_pdf()
            return pdf

        base, ours = Sample(), Sample()
        for _ in range(args.runs):
            base.run(baseline)
            ours.run(lambda: renderer.pdf(doc))

        subsetter = "HarfBuzz" if weasyprint.pdf.fonts.harfbuzz_subset else "fontTools (no libharfbuzz-subset0)"
        print(f"4-person 世帯連記式 (1 sheet), {args.runs} renders each, interleaved; font subsetting by {subsetter}")
        print(f"Renderer() + warm_up(): {warm * 1000:.0f} ms, once per process")
        print(HEADER)
        print(base.row("baseline HTML(string).write_pdf()"))
        print(ours.row("Renderer.pdf (warm)"))
        p50, p95 = pct(ours.wall, 0.5) / pct(base.wall, 0.5), pct(ours.wall, 0.95) / pct(base.wall, 0.95)
        print(f"renderer / baseline: p50 {p50:.2f}, p95 {p95:.2f}")
        if args.options:
            variants(renderer, config, doc, max(5, args.runs // 3))


def variants(renderer: Renderer, config: CertConfig, doc: Document, runs: int) -> None:
    """The warm renderer under gc.freeze, other WeasyPrint options, and fontTools subsetting."""
    import weasyprint.pdf.fonts

    print(f"\nvariants of the warm renderer ({runs} renders each)")
    print(HEADER)
    gc.collect()
    gc.freeze()  # what a server could do once after start-up: old objects leave the collector's scans
    frozen = Sample()
    for _ in range(runs):
        frozen.run(lambda: renderer.pdf(doc))
    gc.unfreeze()
    print(frozen.row("after gc.freeze()"))
    for opts in ({"uncompressed_pdf": True}, {"hinting": True}, {"full_fonts": True}):
        variant = Renderer(config, pdf_options=opts)
        variant.warm_up()
        sample = Sample()
        for _ in range(runs):
            sample.run(functools.partial(variant.pdf, doc))
        print(sample.row(", ".join(f"{k}={v}" for k, v in opts.items())))
    saved = weasyprint.pdf.fonts.harfbuzz_subset
    weasyprint.pdf.fonts.harfbuzz_subset = None  # as on a machine without libharfbuzz-subset0
    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # it warns on every PDF
    try:
        sample = Sample()
        for _ in range(runs):
            sample.run(lambda: renderer.pdf(doc))
        print(sample.row("fontTools subsetting"))
    finally:
        weasyprint.pdf.fonts.harfbuzz_subset = saved


if __name__ == "__main__":
    main()
