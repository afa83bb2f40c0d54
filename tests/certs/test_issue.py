"""`prepare`: rules first, numbers last, one number per copy, the fee; and a light import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgenode.certs.config import CertConfig
from edgenode.certs.errors import RuleViolation
from edgenode.certs.issue import draft, prepare
from edgenode.certs.model import CertRequest
from edgenode.certs.serial import SerialCounter
from edgenode.errors import ConfigError
from tests.certs.conftest import ISSUED_AT, config_for, household, moved_out

ROOT = Path(__file__).resolve().parents[2]
WHOLE = CertRequest("住民票の写し", "世帯全員", "世帯連記式", "本人", id_document="運転免許証")


def test_refused_request_takes_no_number(config: CertConfig) -> None:
    hh = household(2)
    hh[1] = moved_out(hh[1])
    req = CertRequest("住民票の写し", "世帯の一部", "世帯連記式", "本人", persons=(hh[1]["atena_no"],), id_document="x")
    with pytest.raises(RuleViolation):
        prepare(hh, req, config, ISSUED_AT)
    assert SerialCounter(config.serial_db).last() == 0


def test_individual_sheets_take_one_number_per_person_and_copy(config: CertConfig) -> None:
    hh = household(3)
    req = CertRequest(
        "住民票の写し", "世帯の一部", "個人票", "本人", persons=(hh[2]["atena_no"], hh[0]["atena_no"]),
        copies=2, id_document="運転免許証",
    )  # fmt: skip
    doc = prepare(hh, req, config, ISSUED_AT)
    assert [(c.pages[0].persons[0].atena_no, c.copy, c.sequence) for c in doc.certificates] == [
        (hh[0]["atena_no"], 1, 1),  # household order, not the order asked
        (hh[0]["atena_no"], 2, 2),
        (hh[2]["atena_no"], 1, 3),
        (hh[2]["atena_no"], 2, 4),
    ]
    assert doc.fee == 1200
    again = prepare(hh, req, config, ISSUED_AT)
    assert [c.sequence for c in again.certificates] == [5, 6, 7, 8]


def test_extra_sheets_add_the_configured_surcharge(tmp_path: Path) -> None:
    cfg = config_for(tmp_path, fee_per_extra_page=50)
    assert prepare(household(5), WHOLE, cfg, ISSUED_AT).fee == 350
    assert prepare(household(4), WHOLE, cfg, ISSUED_AT).fee == 300


def test_official_requests_are_free_unless_configured_otherwise(tmp_path: Path) -> None:
    req = CertRequest("住民票の写し", "世帯全員", "世帯連記式", "公用", purpose="国民健康保険法第113条の2")
    assert prepare(household(1), req, config_for(tmp_path), ISSUED_AT).fee == 0
    assert prepare(household(1), req, config_for(tmp_path, official_use_free=False), ISSUED_AT).fee == 300


def test_without_a_counter_or_serial_db_nothing_is_issued(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="serial_db"):
        prepare(household(1), WHOLE, config_for(tmp_path, serial_db=""), ISSUED_AT)


def test_issue_date_prints_in_wareki_with_the_mayor(config: CertConfig) -> None:
    footer = prepare(household(1), WHOLE, config, ISSUED_AT).certificates[0].pages[-1].footer
    assert footer is not None
    assert (footer.issued_on, footer.signer) == ("令和8年11月27日", "宮崎県門川町長\u3000門川　一郎")


def test_importing_the_certificate_modules_does_not_load_weasyprint() -> None:
    code = (
        "import sys, edgenode.certs, edgenode.certs.issue, edgenode.certs.render, edgenode.certs.pages;"
        "sys.exit('weasyprint' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0


def test_draft_for_preview_takes_no_number_and_shows_zeros(config: CertConfig) -> None:
    doc = draft(household(5), WHOLE, config, ISSUED_AT)
    assert [p.serial.split()[-2:] for _, p in doc.pages()] == [["000000", "1/2"], ["000000", "2/2"]]
    assert SerialCounter(config.serial_db).last() == 0
