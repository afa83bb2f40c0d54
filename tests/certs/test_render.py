"""Rendering: PDF text as poppler reads it, no outside fetch, the seal, 文字溢れ."""

from __future__ import annotations

import http.server
import io
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgenode.certs.config import CertConfig
from edgenode.certs.errors import LayoutOverflow
from edgenode.certs.issue import prepare
from edgenode.certs.model import CertRequest, Omission
from edgenode.certs.render import Renderer, blackened_png
from edgenode.resident import with_m11
from tests.certs.conftest import ISSUED_AT, config_for, foreign_household, household, page_count, pdftotext, squash

WHOLE = CertRequest("住民票の写し", "世帯全員", "世帯連記式", "本人", id_document="運転免許証")
ALL_ITEMS: frozenset[Omission] = frozenset()


def test_five_persons_make_two_sheets_with_certification_on_the_last_only(
    config: CertConfig, renderer: Renderer, tmp_path: Path
) -> None:
    pdf = renderer.pdf(prepare(household(5), WHOLE, config, ISSUED_AT))
    assert page_count(pdf, tmp_path) == 2
    one, two = squash(pdftotext(pdf, tmp_path, 1)), squash(pdftotext(pdf, tmp_path, 2))
    for name in ("日向太郎", "日向花子", "日向一郎", "日向二郎"):
        assert name in one and name not in two
    assert "日向直子" in two and "日向直子" not in one
    certification = "この写しは、世帯全員の住民票の原本と相違ないことを証明する。"
    assert certification not in one and certification in two
    assert "令和8年11月27日" in two and "宮崎県門川町長門川一郎" in two
    assert "次葉に続く" in one and "次葉に続く" not in two
    assert squash("20261127 門川町 kadogawa-honcho-1 プリンタ001 000001 1/2") in one
    assert squash("20261127 門川町 kadogawa-honcho-1 プリンタ001 000001 2/2") in two


def test_default_omissions_print_as_shoryaku_and_hide_the_values(
    config: CertConfig, renderer: Renderer, tmp_path: Path
) -> None:
    text = squash(pdftotext(renderer.pdf(prepare(household(2), WHOLE, config, ISSUED_AT)), tmp_path))
    assert "省略" in text
    assert "123456789018" not in text  # 個人番号
    assert "10000000001" not in text  # 住民票コード
    assert "宮崎県門川町大字川内957番地" not in text  # 本籍
    assert "世帯主省略" in text  # the header's 世帯主 (続柄 omitted with it)


def test_third_party_copy_never_shows_my_number(config: CertConfig, renderer: Renderer, tmp_path: Path) -> None:
    req = CertRequest(
        "住民票の写し", "世帯の一部", "個人票", "第三者", persons=(household(1)[0]["atena_no"],),
        omissions=ALL_ITEMS, purpose="相続手続", id_document="運転免許証",
    )  # fmt: skip
    doc = prepare(household(2), req, config, ISSUED_AT)
    text = squash(pdftotext(renderer.pdf(doc), tmp_path))
    assert "123456789018" not in text and "10000000001" not in text
    assert "宮崎県門川町大字川内957番地" in text  # 本籍 was asked for and may be given
    assert doc.notes and "個人番号" in doc.notes[0]


def test_names_print_exactly_as_stored(config: CertConfig, renderer: Renderer, tmp_path: Path) -> None:
    hh = household(2)
    hh[1]["name"] = "\ufa19山\u3000花子"  # 神 (compatibility ideograph): NFC would turn it into U+795E
    doc = prepare(hh, WHOLE, config, ISSUED_AT)
    assert "\ufa19山\u3000花子" in renderer.html(doc)
    text = pdftotext(renderer.pdf(doc), tmp_path)
    assert "\ufa19山" in text and "\u795e山" not in text


def test_foreign_residents_show_seireki_dates_and_residence_items(
    config: CertConfig, renderer: Renderer, tmp_path: Path
) -> None:
    req = CertRequest("住民票の写し", "世帯全員", "世帯連記式", "本人", omissions=ALL_ITEMS, id_document="在留カード")
    text = squash(pdftotext(renderer.pdf(prepare(foreign_household(), req, config, ISSUED_AT)), tmp_path))
    for expected in (
        "1982年8月21日",  # 生年月日 in 西暦, as received
        "2029年12月9日",  # 在留期間の満了の日 from its ISO date, in 西暦
        "令和3年12月17日",  # 外国人住民となった年月日 stays 和暦
        "技術・人文知識・国際業務",
        "中長期在留者",
        "山田ローズ",  # 通称
        "PP45199834RY",
    ):
        assert expected in text
    assert "本籍" not in text and "筆頭者" not in text


def test_official_request_prints_koyo(config: CertConfig, renderer: Renderer, tmp_path: Path) -> None:
    req = CertRequest("住民票の写し", "世帯全員", "世帯連記式", "公用", purpose="児童手当法第28条")
    doc = prepare(household(1), req, config, ISSUED_AT)
    assert doc.fee == 0
    assert "公用" in pdftotext(renderer.pdf(doc), tmp_path)


def test_each_copy_is_its_own_certificate_with_its_own_number(
    config: CertConfig, renderer: Renderer, tmp_path: Path
) -> None:
    req = CertRequest("住民票の写し", "世帯全員", "世帯連記式", "本人", copies=2, id_document="運転免許証")
    doc = prepare(household(5), req, config, ISSUED_AT)
    assert [c.sequence for c in doc.certificates] == [1, 2]
    assert doc.fee == 600
    text = squash(pdftotext(renderer.pdf(doc), tmp_path))
    for seq in ("000001", "000002"):
        for page in ("1/2", "2/2"):
            assert squash(f"プリンタ001 {seq} {page}") in text
    assert text.count("この写しは、世帯全員の住民票の原本と相違ないことを証明する。") == 2


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 - shared by the server's handler instances

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    """A local web server that records every request, so a fetch would show."""
    _Recorder.hits = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_hostile_markup_in_a_record_renders_as_literal_text_and_fetches_nothing(
    config: CertConfig, web: str, tmp_path: Path
) -> None:
    hh = household(2)
    hh[0]["name"] = f'<img src="{web}/x.png">'
    hh[0]["katagaki"] = "file:///etc/passwd"
    hh[1]["name"] = f"<link rel=stylesheet href='{web}/a.css'>"
    hh[1]["prev_address"] = f"<style>@import url({web}/b.css);</style>"
    renderer = Renderer(config)
    doc = prepare(hh, WHOLE, config, ISSUED_AT)
    html = renderer.html(doc)
    assert "&lt;img src=&#34;" in html and '<img src="http' not in html
    text = squash(pdftotext(renderer.pdf(doc), tmp_path))
    assert squash(f'<img src="{web}/x.png">') in text
    assert "file:///etc/passwd" in text
    assert "root:" not in text
    assert _Recorder.hits == []
    assert renderer.fetches.asked == ["asset:font-0"]  # the fetcher was never even asked for another URL
    assert renderer.fetches.refused == []


def test_fetcher_refuses_every_url_but_the_packaged_assets(config: CertConfig, web: str) -> None:
    renderer = Renderer(config)
    html = (
        f'<html><head><link rel="stylesheet" href="{web}/a.css"></head><body>'
        f'<img src="file:///etc/passwd"><img src="{web}/b.png"><p>門川</p></body></html>'
    )
    assert renderer.pdf_from_html(html).startswith(b"%PDF")
    assert set(renderer.fetches.refused) == {f"{web}/a.css", "file:///etc/passwd", f"{web}/b.png"}
    assert _Recorder.hits == []


def test_text_too_long_for_the_sheet_is_refused_not_cut(config: CertConfig, renderer: Renderer) -> None:
    hh = household(4)
    for rec in hh:
        rec["prev_address"] = "東京都千代田区千代田一丁目一番一号" * 60  # 1020 characters
        rec["honseki"] = "東京都千代田区千代田一丁目一番地" * 30
    with pytest.raises(LayoutOverflow, match="文字溢れ"):
        renderer.pdf(prepare(hh, WHOLE, config, ISSUED_AT))


def test_four_foreign_residents_with_every_item_fit_one_sheet(
    config: CertConfig, renderer: Renderer, tmp_path: Path
) -> None:
    head, wife = foreign_household()
    children = [
        {**wife, "atena_no": with_m11(f"{100 + i:07d}"), "relationship": "子", "household_order": i} for i in (3, 4)
    ]
    hh = [head, wife, *children]
    for rec in hh:
        rec["alias"], rec["alias_kana"] = "山田\u3000ローズ", "ヤマダ\u3000ローズ"
        rec["katagaki"] = "メゾン・ド・ソレイユ門川 第二号棟 1203号室"
    req = CertRequest("住民票の写し", "世帯全員", "世帯連記式", "本人", omissions=ALL_ITEMS, id_document="在留カード")
    assert page_count(renderer.pdf(prepare(hh, req, config, ISSUED_AT)), tmp_path) == 1


def _seal(path: Path) -> Path:
    from PIL import Image, ImageDraw

    im = Image.new("RGBA", (240, 240), (255, 255, 255, 0))
    ImageDraw.Draw(im).ellipse((10, 10, 230, 230), outline=(210, 30, 40, 255), width=18)
    im.save(path)
    return path


def test_seal_image_is_blackened_and_printed_at_most_25mm(tmp_path: Path) -> None:
    from PIL import Image

    cfg = config_for(tmp_path, seal_image=str(_seal(tmp_path / "seal.png")))
    black = Image.open(io.BytesIO(blackened_png((tmp_path / "seal.png").read_bytes()))).convert("RGBA")
    r, g, b, a = black.split()
    assert r.getextrema() == g.getextrema() == b.getextrema() == (0, 0)  # every pixel is black ink
    darkest = a.getextrema()[1]
    assert isinstance(darkest, int) and darkest > 200  # and the ring is not faded
    renderer = Renderer(cfg)
    pdf = renderer.pdf(prepare(household(1), WHOLE, cfg, ISSUED_AT))
    assert "この印は黒色です。" in pdftotext(pdf, tmp_path)
    (tmp_path / "s.pdf").write_bytes(pdf)
    listing = subprocess.run(["pdfimages", "-list", str(tmp_path / "s.pdf")], capture_output=True, text=True).stdout
    rows = [line.split() for line in listing.splitlines()[2:] if line.strip()]
    images = [r for r in rows if r[2] == "image"]
    assert len(images) == 1
    width_px, x_ppi = int(images[0][3]), float(images[0][12])
    assert width_px / x_ppi * 25.4 <= 25.01


def test_without_a_seal_nothing_claims_one(config: CertConfig, renderer: Renderer, tmp_path: Path) -> None:
    text = pdftotext(renderer.pdf(prepare(household(1), WHOLE, config, ISSUED_AT)), tmp_path)
    assert "この印は黒色です" not in text


def test_html_has_no_absolute_paths_of_this_machine(config: CertConfig, renderer: Renderer) -> None:
    html = renderer.html(prepare(household(1), WHOLE, config, ISSUED_AT))
    assert not re.search(r"file:|/usr/|/home/|/tmp/", html)


def test_fonts_are_subset_with_harfbuzz_not_the_slow_fonttools_fallback() -> None:
    # Without libharfbuzz-subset0 WeasyPrint subsets the 7.8 MB font with fontTools: ~+200 ms per PDF.
    from weasyprint.text.ffi import harfbuzz_subset  # type: ignore[import-untyped]

    assert harfbuzz_subset, "install the Debian package libharfbuzz-subset0"
