"""Reading records in the export format (`hub apply FILE`): all lines valid, or nothing.

The export format is UTF-8 NDJSON, one current record a line. This is the path by which a real
datacenter registry feeds the hub, so every line is checked and the first problem is reported
with its line number; no line is applied unless every line is valid.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from edgenode.errors import InputError, RecordError
from edgenode.resident import validate_record

MAX_LINE_BYTES = 64 * 1024


def parse_records(lines: Iterable[bytes], source: str) -> list[dict[str, Any]]:
    """Parse and validate every line; raise `InputError` naming the first bad line."""
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for no, raw in enumerate(lines, start=1):
        if len(raw) > MAX_LINE_BYTES:
            raise InputError(f"{source}:{no}: line longer than {MAX_LINE_BYTES} bytes")
        stripped = raw.rstrip(b"\r\n")
        if not stripped.strip():
            continue
        try:
            stripped.decode("utf-8")  # to name the byte offset of bad UTF-8
        except UnicodeDecodeError as exc:
            raise InputError(f"{source}:{no}: not UTF-8 (byte {exc.start})") from exc
        try:
            rec = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{source}:{no}: not valid JSON ({exc})") from exc
        if not isinstance(rec, dict):
            raise InputError(f"{source}:{no}: a line must be one JSON object")
        rec.setdefault("rireki_no", 0)  # the hub assigns the real 履歴番号
        try:
            validate_record(rec)
        except RecordError as exc:
            raise InputError(f"{source}:{no}: {exc}") from exc
        atena = rec["atena_no"]
        if atena in seen:
            raise InputError(f"{source}:{no}: 宛名番号 {atena} already appears on line {seen[atena]}")
        seen[atena] = no
        records.append(rec)
    return records


def group_by_household(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Records grouped by 世帯番号, in first-seen order: one registry transaction each."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault(rec["household_no"], []).append(rec)
    return list(groups.values())
