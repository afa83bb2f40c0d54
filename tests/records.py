"""Small hand-made records for unit tests (the synthetic population has its own tests)."""

from __future__ import annotations

from typing import Any

from edgenode.resident import with_m11


def person(i: int, household: int = 1, **over: Any) -> dict[str, Any]:
    """A valid current record of person `i` in household `household`."""
    rec: dict[str, Any] = {
        "atena_no": with_m11(f"{i:07d}"),
        "rireki_no": 1,
        "household_no": with_m11(f"{5000000 + household:07d}"),
        "resident_type": "日本人住民",
        "status": "住民",
        "name": f"門川\u3000太郎{i}",
        "kana": "カドガワ\u3000タロウ",
        "birth_date": "昭和55年12月26日",
        "birth_date_iso": "1980-12-26",
        "sex": "男",
        "relationship": "世帯主",
        "address": "宮崎県東臼杵郡門川町大字加草",
        "banchi": f"{i}番地",
        "change_reason": "国内転入",
        "change_class": "記載",
        "processed_on": "2026-11-01",
    }
    rec.update(over)
    return rec
