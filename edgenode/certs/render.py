"""Render a `Document` to HTML (Jinja2, autoescaped) and to PDF (WeasyPrint).

Resident data is only ever template *data*: autoescaping is on, so a name such as
``<img src="http://…">`` prints as those characters. Behind that, WeasyPrint gets a URL fetcher
that serves the packaged assets by an allow-list (``asset:font-N``, ``asset:seal.png``) and
refuses everything else, so even markup that slipped through could fetch nothing.

Speed: a `Renderer` stays warm. It keeps one WeasyPrint `FontConfiguration` and one parsed
stylesheet for its lifetime, so the 7.8 MB font is fetched, copied to WeasyPrint's temporary
folder and registered with fontconfig once, not per certificate, and Pango keeps its loaded face.
What is left per PDF is WeasyPrint's own work: style cascade and table layout (~2/3), drawing and
the PDF (~1/4, font subsetting included, cheap with HarfBuzz; with fontTools, when
libharfbuzz-subset0 is missing, it alone costs ~150-200 ms). Embedding the whole font instead of
a subset (full_fonts) would make every PDF 5.6 MB and slower. Run ``python -m bench.render``.
A renderer is used by one thread at a time (a lock).

WeasyPrint is imported inside the methods: importing edgenode.certs never loads it.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from edgenode.certs.config import CertConfig
from edgenode.certs.errors import LayoutOverflow
from edgenode.certs.glyphs import check_glyphs
from edgenode.certs.model import Document

log = logging.getLogger("edgenode.certs")
TEMPLATES = Path(__file__).with_name("templates")
SEAL_URL = "asset:seal.png"
#: Beyond these lengths a cell's text is set smaller (文字溢れ, spec 5.8): (half cell, wide cell).
_FIT1 = (20, 46)
_FIT2 = (28, 64)
#: WeasyPrint's defaults, stated: subset fonts, drop hinting, compress (bench/render.py --options
#: shows what the alternatives cost: full_fonts embeds the whole 7.8 MB font in every PDF).
PDF_OPTIONS: Mapping[str, Any] = {"hinting": False, "full_fonts": False, "uncompressed_pdf": False}


def _fit(text: str, cells_in_row: int) -> str:
    wide = 1 if cells_in_row == 1 else 0
    n = len(text)
    return "fit2" if n > _FIT2[wide] else "fit1" if n > _FIT1[wide] else ""


def blackened_png(data: bytes) -> bytes:
    """The seal image as black ink on transparency: ink = how far a pixel is from white."""
    from PIL import Image, ImageChops, ImageOps

    with Image.open(io.BytesIO(data)) as src:
        im = src.convert("RGBA")
    r, g, b, a = im.split()
    ink = ImageOps.invert(ImageChops.darker(ImageChops.darker(r, g), b))
    out = Image.new("RGBA", im.size, (0, 0, 0, 255))
    out.putalpha(ImageChops.multiply(ink, a))
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class FetchLog:
    """Every URL WeasyPrint asked for, and the ones refused (for audits and tests)."""

    asked: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def make_fetcher(assets: dict[str, Path | bytes], record: FetchLog) -> Any:
    """A WeasyPrint URL fetcher serving `assets` (URL → file or bytes) and refusing all else."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse  # type: ignore[import-untyped]

    class AssetFetcher(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            record.asked.append(url)
            asset = assets.get(url)
            if asset is None:
                record.refused.append(url)
                raise ValueError(f"証明書の描画で外部の URL は読み込みません: {url!r}")
            body = asset.read_bytes() if isinstance(asset, Path) else asset
            return URLFetcherResponse(url, body=body)

    return AssetFetcher(allowed_protocols=("asset",), allow_redirects=False, timeout=1)


class Renderer:
    """Turns documents into HTML and PDF for one configuration; keep one and reuse it."""

    def __init__(self, config: CertConfig, *, pdf_options: Mapping[str, Any] | None = None) -> None:
        self.config = config
        self.pdf_options = {**PDF_OPTIONS, **(pdf_options or {})}
        self.font_paths = config.font_paths()
        self.fetches = FetchLog()
        self._assets: dict[str, Path | bytes] = {f"asset:font-{i}": p for i, p in enumerate(self.font_paths)}
        if config.seal_image:
            self._assets[SEAL_URL] = blackened_png(Path(config.seal_image).read_bytes())
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._template = self._env.get_template("certificate.html")
        self.css = self._env.get_template("certificate.css").render(
            font_urls=[f"asset:font-{i}" for i in range(len(self.font_paths))],
            seal_mm=f"{config.seal_size_mm:g}",
        )
        self._lock = threading.Lock()
        self._warm: _Warm | None = None
        self._image_cache: dict[str, Any] = {}

    def html(self, document: Document, *, inline_css: bool = True) -> str:
        """The HTML of `document`; with `inline_css` it carries the stylesheet (previews, golden files)."""
        return self._template.render(doc=document, inline_css=inline_css, css=self.css, fit=_fit)

    def pdf(self, document: Document) -> bytes:
        """The PDF of `document`. Raises `MissingGlyph` (checked first) or `LayoutOverflow`."""
        check_glyphs(document, self.font_paths)
        return self.pdf_from_html(self.html(document, inline_css=False), document.page_count)

    def pdf_from_html(self, html: str, expected_pages: int | None = None) -> bytes:
        """Render `html` with the packaged stylesheet; with `expected_pages`, refuse another sheet count."""
        from weasyprint import HTML  # type: ignore[import-untyped]

        with self._lock:
            warm = self._warmed()
            rendered = HTML(string=html, url_fetcher=warm.fetcher).render(
                font_config=warm.font_config, stylesheets=[warm.stylesheet], cache=self._image_cache, **self.pdf_options
            )
            if expected_pages is not None and len(rendered.pages) != expected_pages:
                raise LayoutOverflow(expected_pages, len(rendered.pages))
            pdf: bytes = rendered.write_pdf(**self.pdf_options)
        return pdf

    def warm_up(self) -> None:
        """Do the one-time work now (font registration, first shaping) so the first clerk does not wait."""
        self.pdf_from_html("<p>住民票　証明書　1234567890</p>")

    def _warmed(self) -> _Warm:
        # Built once: the font is fetched and registered with fontconfig here, not per PDF.
        if self._warm is None:
            from weasyprint import CSS
            from weasyprint.text.ffi import harfbuzz_subset  # type: ignore[import-untyped]
            from weasyprint.text.fonts import FontConfiguration  # type: ignore[import-untyped]

            if not harfbuzz_subset:
                log.warning("libharfbuzz-subset0 がありません: フォントの部分埋め込みが遅くなります (~+200 ms/PDF)")

            font_config = FontConfiguration()
            fetcher = make_fetcher(self._assets, self.fetches)
            stylesheet = CSS(string=self.css, font_config=font_config, url_fetcher=fetcher)
            self._warm = _Warm(font_config, fetcher, stylesheet)
        return self._warm


@dataclass(frozen=True)
class _Warm:
    """WeasyPrint objects kept across renders."""

    font_config: Any
    fetcher: Any
    stylesheet: Any
