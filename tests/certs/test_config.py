"""Certificate settings: validation, defaults for the unverified items, the signer by date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from edgenode.certs.config import CERTIFICATION_KEYS, CertConfig, describe
from edgenode.errors import ConfigError

BASE = {"prefecture": "宮崎県", "municipality": "門川町", "mayor_name": "門川　一郎", "terminal_name": "kadogawa-1"}


def config(**over: Any) -> CertConfig:
    return CertConfig.from_mapping({**BASE, **over})


def test_defaults_are_the_documented_ones() -> None:
    c = config()
    assert c.fee_per_copy == 300 and c.fee_per_extra_page == 0
    assert c.mayor_title == "町長" and c.office == "宮崎県門川町長"
    assert c.seal_note == "この印は黒色です。" and c.seal_size_mm == 25
    assert c.paper == "A4" and c.printer_no == 1
    full = c.certification_texts["住民票の写し/世帯全員"]
    assert full == "この写しは、世帯全員の住民票の原本と相違ないことを証明する。"
    assert set(c.certification_texts) == set(CERTIFICATION_KEYS)


def test_every_unverified_item_is_a_setting_with_help() -> None:
    rows = {name: (help_, unverified) for name, _default, help_, unverified in describe()}
    assert all(help_ for help_, _ in rows.values())
    for name in ("certification_texts", "fee_per_copy", "default_omissions", "proxy_may_receive_numbers"):
        assert rows[name][1], f"{name} should say what is unverified"


def test_a_partial_certification_table_keeps_the_other_defaults() -> None:
    c = config(certification_texts={"住民票の写し/世帯全員": "これは、世帯全員の住民票の写しである。"})
    assert c.certification_texts["住民票の写し/世帯全員"] == "これは、世帯全員の住民票の写しである。"
    assert c.certification_texts["住民票の除票の写し"].startswith("この写しは、住民票の除票")


def test_city_and_ward_titles_read_naturally() -> None:
    assert config(municipality="延岡市", mayor_title="市長").office == "宮崎県延岡市長"
    assert config(prefecture="東京都", municipality="新宿区", mayor_title="区長").office == "東京都新宿区長"


def test_deputy_signs_within_the_configured_dates() -> None:
    c = config(deputies=[{"title": "副町長", "name": "日向　次郎", "from": "2026-11-20", "to": "2026-11-30"}])
    assert c.signer(dt.date(2026, 11, 27)) == "宮崎県門川町長職務代理者\u3000副町長\u3000日向　次郎"
    assert c.signer(dt.date(2026, 12, 1)) == "宮崎県門川町長\u3000門川　一郎"


def test_a_new_era_comes_from_the_settings() -> None:
    c = config(eras=[{"name": "新元", "start": "2031-03-01"}])
    assert c.era_table.to_wareki(dt.date(2031, 3, 1)) == "新元元年3月1日"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"fee_per_copy": -1}, "手数料は 0 円以上"),
        ({"fee_per_copy": "300"}, "fee_per_copy は int"),
        ({"printer_no": 1000}, "printer_no は 1〜999"),
        ({"seal_size_mm": 30}, "25 以下"),
        ({"paper": "B5"}, "A4 のみ"),
        ({"terminal_name": "本庁 1"}, "空白を含まない"),
        ({"mayor_name": ""}, "mayor_name が空"),
        ({"colour": "red"}, "不明な項目"),
        ({"certification_texts": {"印鑑登録証明書": "x"}}, "不明なキー"),
        ({"deputies": [{"title": "副町長", "name": "x", "from": "2026-12-01", "to": "2026-11-01"}]}, "職務代理者"),
        (
            {
                "deputies": [
                    {"title": "副町長", "name": "a", "from": "2026-11-01", "to": "2026-11-10"},
                    {"title": "総務課長", "name": "b", "from": "2026-11-10", "to": "2026-11-20"},
                ]
            },
            "重なっています",
        ),
        ({"deputies": [{"title": "副町長", "name": "x", "from": "11/1", "to": "2026-11-01"}]}, "YYYY-MM-DD"),
        ({"eras": [{"name": "古", "start": "1990-01-01"}]}, "元号の設定"),
        ({"default_omissions": ["血液型"]}, "default_omissions"),
        ({"font_files": ["no-such-font.ttf"]}, "フォントファイルがありません"),
        ({"seal_image": "no-such-seal.png"}, "職印の画像がありません"),
    ],
)
def test_invalid_settings_are_refused_with_a_clear_message(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**over)


def test_missing_required_settings_are_listed() -> None:
    with pytest.raises(ConfigError, match="mayor_name"):
        CertConfig.from_mapping({"prefecture": "宮崎県", "municipality": "門川町", "terminal_name": "t"})


def test_seal_must_be_a_png_and_relative_paths_are_under_the_data_folder(tmp_path: Path) -> None:
    (tmp_path / "seal.png").write_bytes(b"GIF89a not a png")
    with pytest.raises(ConfigError, match="PNG"):
        CertConfig.from_mapping({**BASE, "seal_image": "seal.png"}, base_dir=tmp_path)
    c = CertConfig.from_mapping({**BASE, "serial_db": "serial.db"}, base_dir=tmp_path)
    assert Path(c.serial_db) == tmp_path / "serial.db"


def test_default_font_is_found_with_fontconfig() -> None:
    (font,) = config().font_paths()
    assert font.is_file() and font.suffix in (".ttf", ".otf")
