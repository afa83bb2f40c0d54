"""Golden HTML for each kind of certificate, plus what poppler reads from the PDF.

Regenerate after an intended template or layout change with::

    EDGENODE_REGEN_GOLDEN=1 .venv/bin/pytest tests/certs/test_golden.py

and review the diff of tests/certs/golden/ before committing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgenode.certs.config import CertConfig
from edgenode.certs.issue import prepare
from edgenode.certs.model import CertRequest, Document, Omission
from edgenode.certs.render import Renderer
from tests.certs.conftest import ISSUED_AT, foreign_household, household, moved_out, page_count, pdftotext, squash

GOLDEN = Path(__file__).with_name("golden")
REGENERATE = os.environ.get("EDGENODE_REGEN_GOLDEN") == "1"
NUMBERS = frozenset({Omission.MY_NUMBER, Omission.JUMINHYO_CODE})


def check_golden(name: str, html: str) -> None:
    path = GOLDEN / name
    if REGENERATE:
        path.write_text(html, encoding="utf-8")
    assert path.exists(), f"{path.name} is missing: run with EDGENODE_REGEN_GOLDEN=1"
    assert html == path.read_text(encoding="utf-8"), f"{path.name} changed: review, then regenerate"


def issue(records: list[dict[str, Any]], request: CertRequest, config: CertConfig) -> Document:
    return prepare(records, request, config, ISSUED_AT)


def test_household_copy_of_five_spans_two_sheets(config: CertConfig, renderer: Renderer, tmp_path: Path) -> None:
    req = CertRequest("住民票の写し", "世帯全員", "世帯連記式", "本人", omissions=NUMBERS, id_document="運転免許証")
    doc = issue(household(5), req, config)
    assert [len(c.pages) for c in doc.certificates] == [2]
    check_golden("household_copy_5_persons.html", renderer.html(doc))
    pdf = renderer.pdf(doc)
    assert page_count(pdf, tmp_path) == 2
    one, two = squash(pdftotext(pdf, tmp_path, 1)), squash(pdftotext(pdf, tmp_path, 2))
    assert "世帯全員の住民票の原本と相違ない" in two and "相違ない" not in one
    assert "000001 1/2".replace(" ", "") in one and "000001 2/2".replace(" ", "") in two
    assert "宮崎県門川町大字川内957番地" in one  # 本籍 asked for


def test_individual_sheet_of_a_foreign_resident(config: CertConfig, renderer: Renderer, tmp_path: Path) -> None:
    hh = foreign_household()
    req = CertRequest(
        "住民票の写し", "世帯の一部", "個人票", "同一世帯", persons=(hh[1]["atena_no"],),
        omissions=frozenset({Omission.MY_NUMBER, Omission.JUMINHYO_CODE, Omission.RESIDENCE_CARD}),
        id_document="在留カード",
    )  # fmt: skip
    doc = issue(hh, req, config)
    check_golden("individual_foreign.html", renderer.html(doc))
    text = squash(pdftotext(renderer.pdf(doc), tmp_path))
    assert "GARCIAROSEANN" in text and "1986年3月7日" in text and "山田ローズ" in text
    assert "SI72714593XO" not in text  # 在留カード等番号 omitted
    assert "この写しは、住民票の原本と相違ないことを証明する。" in text


def test_item_certificate_leaves_out_katagaki_when_asked(
    config: CertConfig, renderer: Renderer, tmp_path: Path
) -> None:
    hh = household(3)
    req = CertRequest(
        "住民票記載事項証明書", "世帯の一部", "世帯連記式", "代理人",
        persons=(hh[0]["atena_no"], hh[2]["atena_no"]),
        omissions=frozenset({Omission.KATAGAKI, Omission.HONSEKI}), id_document="運転免許証（代理人）",
    )  # fmt: skip
    doc = issue(hh, req, config)
    check_golden("item_certificate.html", renderer.html(doc))
    text = squash(pdftotext(renderer.pdf(doc), tmp_path))
    assert "住民票記載事項証明書" in text and "上記の事項は、住民票の原本と相違ないことを証明する。" in text
    assert "サンハイツ城ケ丘" not in text and "日向花子" not in text
    assert "123456789018" not in text  # a 代理人 gets no 個人番号 by default


def test_removed_copy_shows_the_removal(config: CertConfig, renderer: Renderer, tmp_path: Path) -> None:
    hh = household(3)
    hh[2] = moved_out(hh[2])
    req = CertRequest(
        "住民票の除票の写し", "世帯の一部", "個人票", "本人", persons=(hh[2]["atena_no"],), id_document="旅券"
    )
    doc = issue(hh, req, config)
    check_golden("removed_copy.html", renderer.html(doc))
    text = squash(pdftotext(renderer.pdf(doc), tmp_path))
    assert "住民票（除票）" in text and "日向一郎" in text
    assert "消除事由転出" in text and "令和8年10月1日" in text and "福岡県福岡市中央区天神一丁目1番1号" in text
    assert "この写しは、住民票の除票の原本と相違ないことを証明する。" in text


def test_golden_folder_holds_exactly_the_checked_files() -> None:
    names = {p.name for p in GOLDEN.glob("*.html")}
    assert names == {
        "household_copy_5_persons.html",
        "individual_foreign.html",
        "item_certificate.html",
        "removed_copy.html",
    }
