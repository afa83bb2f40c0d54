"""Glyph check: a character the fonts cannot print stops issuance and is named; nothing is substituted."""

from __future__ import annotations

from pathlib import Path

import pytest
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

from edgenode.certs.config import CertConfig
from edgenode.certs.errors import MissingGlyph
from edgenode.certs.glyphs import check_text, coverage, find_font_file
from edgenode.certs.issue import prepare
from edgenode.certs.model import CertRequest
from edgenode.certs.render import Renderer
from edgenode.certs.serial import SerialCounter
from edgenode.errors import ConfigError
from tests.certs.conftest import ISSUED_AT, household, pdftotext

PUA = "\ue000"
EXT_B = "\U0002a6d6"  # 𪛖, CJK Extension B, not in IPAex
REQUEST = CertRequest("住民票の写し", "世帯全員", "世帯連記式", "本人", id_document="運転免許証")


@pytest.fixture(scope="module")
def font() -> Path:
    return find_font_file("IPAexMincho")


def test_the_test_characters_are_really_missing_from_ipaex(font: Path) -> None:
    with TTFont(str(font), lazy=True) as f:
        cmap = f["cmap"].getBestCmap()
    assert ord(PUA) not in cmap and ord(EXT_B) not in cmap
    assert ord("渡") in cmap and ord("\u3000") in cmap


@pytest.mark.parametrize("char", [PUA, EXT_B])
def test_name_with_a_character_missing_from_the_font_is_refused_naming_it(
    config: CertConfig, char: str, tmp_path: Path
) -> None:
    hh = household(2)
    hh[1]["name"] = f"日向\u3000{char}子"
    counter = SerialCounter(tmp_path / "c.db")
    with pytest.raises(MissingGlyph) as err:
        prepare(hh, REQUEST, config, ISSUED_AT, counter=counter)
    assert err.value.field == "氏名"
    assert f"U+{ord(char):04X}" in str(err.value) and "「氏名」" in str(err.value)
    assert counter.last() == 0  # a refused certificate burns no 発行番号
    if char == PUA:
        assert "外字" in str(err.value)


def test_address_with_a_missing_character_names_the_address(config: CertConfig, tmp_path: Path) -> None:
    hh = household(1)
    hh[0]["katagaki"] = f"コーポ{EXT_B}田 2号"
    with pytest.raises(MissingGlyph, match=r"「住所」の文字 U\+2A6D6"):
        prepare(hh, REQUEST, config, ISSUED_AT, counter=SerialCounter(tmp_path / "c.db"))


def test_renderer_refuses_too_even_if_prepare_was_bypassed(renderer: Renderer, config: CertConfig) -> None:
    from edgenode.certs.pages import build_document
    from edgenode.certs.rules import select_persons

    hh = household(1)
    hh[0]["name"] = f"日向\u3000{PUA}"
    doc = build_document(select_persons(hh, REQUEST), hh, REQUEST, config, ISSUED_AT, [1])
    with pytest.raises(MissingGlyph):
        renderer.pdf(doc)


def test_ivs_sequence_the_font_lists_passes_and_prints(
    font: Path, config: CertConfig, renderer: Renderer, tmp_path: Path
) -> None:
    base, selector = min(coverage(font).sequences)
    name = f"日向\u3000{chr(base)}{chr(selector)}"
    check_text("氏名", name, [coverage(font)])
    hh = household(1)
    hh[0]["name"] = name
    doc = prepare(hh, REQUEST, config, ISSUED_AT)
    assert chr(base) in pdftotext(renderer.pdf(doc), tmp_path)


def test_ivs_sequence_the_font_lacks_is_refused_although_the_base_is_present(font: Path) -> None:
    cov = coverage(font)
    base = ord("斉")
    assert base in cov.chars and (base, 0xE0103) not in cov.sequences
    with pytest.raises(MissingGlyph, match=r"U\+6589 U\+E0103"):
        check_text("氏名", "斉\U000e0103藤", [cov])


def test_a_variation_selector_with_no_base_is_refused(font: Path) -> None:
    with pytest.raises(MissingGlyph, match=r"U\+E0100"):
        check_text("氏名", "\U000e0100太郎", [coverage(font)])


def test_compatibility_ideographs_are_checked_as_themselves(font: Path) -> None:
    check_text("氏名", "﨑山\u3000髙子", [coverage(font)])  # U+FA11 and U+9AD9, present as such


def test_every_character_the_template_prints_is_in_the_font(renderer: Renderer, config: CertConfig) -> None:
    import re

    doc = prepare(household(5), REQUEST, config, ISSUED_AT)
    html = renderer.html(doc, inline_css=False)
    text = re.sub(r"<[^>]+>", "", html)
    check_text("テンプレート", text.replace("\n", ""), [coverage(p) for p in renderer.font_paths])


def test_a_family_fontconfig_does_not_have_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="インストールされていません"):
        find_font_file("No Such Font Family 123")


def test_cmap_is_read_once_per_font_file(font: Path) -> None:
    assert coverage(font) is coverage(font)
