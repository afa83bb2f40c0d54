"""Fixtures for the certificate tests: a configuration, hand-made households, a warm renderer."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edgenode.certs.config import CertConfig
from edgenode.certs.render import Renderer
from tests.records import person

ISSUED_AT = dt.datetime(2026, 11, 27, 10, 30)
Record = dict[str, Any]


def config_for(tmp: Path, **over: Any) -> CertConfig:
    """A 門川町 configuration whose counter lives under `tmp`."""
    values: dict[str, Any] = {
        "prefecture": "宮崎県",
        "municipality": "門川町",
        "mayor_name": "門川　一郎",
        "terminal_name": "kadogawa-honcho-1",
        "serial_db": str(tmp / "serial.db"),
    }
    values.update(over)
    return CertConfig(**values)


@pytest.fixture
def config(tmp_path: Path) -> CertConfig:
    return config_for(tmp_path)


@pytest.fixture(scope="session")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    """One warm renderer for the session (its configuration's counter is not used)."""
    return Renderer(config_for(tmp_path_factory.mktemp("renderer")))


def _member(i: int, rel: str, name: str, kana: str, born: dt.date, **over: Any) -> Record:
    from edgenode.wareki import to_wareki

    rec = person(
        i,
        name=name,
        kana=kana,
        relationship=rel,
        head_name="日向\u3000太郎",
        birth_date=to_wareki(born),
        birth_date_iso=born.isoformat(),
        sex="女" if rel in ("妻", "母", "姉", "妹") else "男",
        address="宮崎県門川町城ケ丘",
        banchi="3688番地26",
        katagaki="サンハイツ城ケ丘 101号",
        honseki="宮崎県門川町大字川内957番地",
        hittosha="日向\u3000太郎",
        resident_since="平成24年8月20日",
        resident_since_iso="2012-08-20",
        notified_on="2012-08-23",
        notified_date="平成24年8月23日",
        prev_address="東京都千代田区千代田1番1号",
        juminhyo_code=f"{10000000000 + i}",
        my_number="123456789018",
    )
    rec.update(over)
    return rec


def household(n: int = 5) -> list[Record]:
    """A Japanese household of up to 6 persons with registry order 1..n."""
    members = [
        _member(1, "世帯主", "日向\u3000太郎", "ヒュウガ\u3000タロウ", dt.date(1976, 7, 12)),
        _member(2, "妻", "日向\u3000花子", "ヒュウガ\u3000ハナコ", dt.date(1981, 6, 2)),
        _member(3, "子", "日向\u3000一郎", "ヒュウガ\u3000イチロウ", dt.date(2008, 3, 18)),
        _member(4, "子", "日向\u3000二郎", "ヒュウガ\u3000ジロウ", dt.date(2016, 1, 3)),
        _member(5, "母", "日向\u3000直子", "ヒュウガ\u3000ナオコ", dt.date(1946, 5, 19), hittosha="日向\u3000清"),
        _member(
            6, "同居人", "門川\u3000次郎", "カドガワ\u3000ジロウ", dt.date(1990, 1, 1), honseki="宮崎県日向市本町1番地"
        ),
    ][:n]
    for order, rec in enumerate(members, start=1):
        rec["household_order"] = order
    return members


def foreign_household() -> list[Record]:
    """A 外国人住民 couple: 西暦 birth dates, 在留資格, 通称 on the wife."""
    common: dict[str, Any] = {
        "resident_type": "外国人住民",
        "address": "宮崎県門川町平城東",
        "banchi": "1685番地",
        "head_name": "GARCIA RAMON",
        "nationality": "フィリピン",
        "foreign_category": "中長期在留者",
        "foreign_resident_since": "令和3年12月17日",
        "prev_address": "フィリピン",
        "notified_on": "2021-12-26",
    }
    head = person(
        11,
        **common,
        name="GARCIA RAMON",
        name_alpha="GARCIA RAMON",
        kana="ガルシア\u3000ラモン",
        relationship="世帯主",
        birth_date="1982年8月21日",
        birth_date_iso="1982-08-21",
        residence_status="技術・人文知識・国際業務",
        residence_period="5年",
        residence_expiry="2029-12-09",
        residence_card_no="PP45199834RY",
        juminhyo_code="87076050975",
        my_number="123456789018",
        household_order=1,
    )
    wife = person(
        12,
        **common,
        name="GARCIA ROSE ANN",
        name_alpha="GARCIA ROSE ANN",
        kana="ガルシア\u3000ローズ\u3000アン",
        alias="山田\u3000ローズ",
        alias_kana="ヤマダ\u3000ローズ",
        relationship="妻",
        sex="女",
        birth_date="1986年3月7日",
        birth_date_iso="1986-03-07",
        residence_status="家族滞在",
        residence_period="1年",
        residence_expiry="2027-03-05",
        residence_card_no="SI72714593XO",
        juminhyo_code="74243531815",
        household_order=2,
    )
    return [head, wife]


def moved_out(rec: Record) -> Record:
    """`rec` as the 除票 left by a 転出."""
    return {
        **rec,
        "status": "転出",
        "removal_reason": "転出",
        "removal_date": "令和8年10月1日",
        "moved_to": "福岡県福岡市中央区天神一丁目1番1号",
        "change_reason": "国内転出",
        "change_class": "消除",
    }


def pdftotext(pdf: bytes, tmp: Path, page: int | None = None) -> str:
    """The text of `pdf` (one page, 1-based, or all) as poppler's pdftotext reads it, in layout order."""
    path = tmp / "out.pdf"
    path.write_bytes(pdf)
    pages = ["-f", str(page), "-l", str(page)] if page is not None else []
    return subprocess.run(
        ["pdftotext", "-layout", *pages, str(path), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def squash(text: str) -> str:
    """`text` without any whitespace (pdftotext turns the gaps of U+3000 and tables into spaces)."""
    return "".join(text.split())


def page_count(pdf: bytes, tmp: Path) -> int:
    """Pages of `pdf` according to pdfinfo."""
    path = tmp / "count.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True, timeout=60).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))
