"""Compose the printed `Document` from records: items, rows, pages, copies, 発行番号.

Layout rules, kept in one place:

- 世帯連記式: up to `PERSONS_PER_SHEET` persons a sheet; further sheets continue the numbering;
  the footer (認証文, 交付年月日, 認証者, 職印) is on the last sheet only (spec 5.1).
- 個人票: one person per certificate (one sheet: this node holds no change history).
- Every copy is its own certificate with its own sequence number; each page's 発行番号 ends in p/N.
- Omitted items keep their cell and print `config.omitted_text` (「省略」). Exceptions: an omitted
  通称 drops its row (printing 「省略」 would reveal that one exists), and an omitted 方書 (only
  possible on a 記載事項証明書) is left out of the address line.
- Items that do not apply are left out: 本籍・筆頭者 and 住民となった年月日 for 外国人住民; 国籍,
  在留資格 … for 日本人住民; 旧氏 / 通称 / アルファベット氏名 rows when the person has none;
  消除事由 and 転出先 except on a 除票.
- Registry text (names, addresses, 和暦/西暦 date strings) prints byte-exact. Only dates that
  come as ISO alone are formatted: 和暦, or 西暦 for a 外国人住民's birth date and 満了日.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from edgenode.certs.config import CertConfig, certification_key
from edgenode.certs.model import (
    Certificate,
    CertRequest,
    Document,
    Footer,
    Header,
    Item,
    Layout,
    Omission,
    Page,
    Person,
)
from edgenode.certs.rules import effective_omissions, fee, is_removed
from edgenode.certs.serial import format_serial
from edgenode.wareki import EraTable, to_seireki

Record = Mapping[str, Any]
PERSONS_PER_SHEET = 4

LABELS = {
    "kana": "氏名の振り仮名",
    "name": "氏名",
    "name_alpha": "氏名（アルファベット）",
    "former_surname": "旧氏",
    "former_surname_kana": "旧氏の振り仮名",
    "alias": "通称",
    "alias_kana": "通称の振り仮名",
    "birth_date": "生年月日",
    "sex": "性別",
    "relationship": "続柄",
    "resident_since": "住民となった年月日",
    "foreign_resident_since": "外国人住民となった年月日",
    "address_since": "住所を定めた年月日",
    "notified": "届出日",
    "honseki": "本籍",
    "hittosha": "筆頭者",
    "prev_address": "転入前住所",
    "my_number": "個人番号",
    "juminhyo_code": "住民票コード",
    "nationality": "国籍・地域",
    "foreign_category": "法第30条の45に規定する区分",
    "residence_status": "在留資格",
    "residence_period": "在留期間等",
    "residence_expiry": "在留期間の満了の日",
    "residence_card_no": "在留カード等番号",
    "removal_reason": "消除事由",
    "removal_date": "消除の年月日",
    "moved_to": "転出先住所",
}
OMITTED_BY = {
    "relationship": Omission.HEAD_AND_RELATIONSHIP,
    "honseki": Omission.HONSEKI,
    "hittosha": Omission.HONSEKI,
    "my_number": Omission.MY_NUMBER,
    "juminhyo_code": Omission.JUMINHYO_CODE,
    "nationality": Omission.NATIONALITY,
    "foreign_category": Omission.FOREIGN_CATEGORY,
    "residence_status": Omission.RESIDENCE_STATUS,
    "residence_period": Omission.RESIDENCE_PERIOD,
    "residence_expiry": Omission.RESIDENCE_EXPIRY,
    "residence_card_no": Omission.RESIDENCE_CARD,
    "alias": Omission.ALIAS,
    "alias_kana": Omission.ALIAS,
}
# Rows of a person's block by record type; a row is one wide key or two half-width keys.
_JAPANESE_ROWS: tuple[tuple[str, ...], ...] = (
    ("kana", "my_number"),
    ("name", "juminhyo_code"),
    ("former_surname_kana", "former_surname"),
    ("birth_date", "sex"),
    ("relationship", "notified"),
    ("resident_since", "address_since"),
    ("honseki", "hittosha"),
    ("prev_address",),
)
_FOREIGN_ROWS: tuple[tuple[str, ...], ...] = (
    ("kana", "my_number"),
    ("name", "juminhyo_code"),
    ("name_alpha",),
    ("alias_kana", "alias"),
    ("birth_date", "sex"),
    ("relationship", "notified"),
    ("foreign_resident_since", "address_since"),
    ("nationality", "foreign_category"),
    ("residence_status", "residence_card_no"),
    ("residence_period", "residence_expiry"),
    ("prev_address",),
)
_REMOVAL_ROWS: tuple[tuple[str, ...], ...] = (("removal_reason", "removal_date"), ("moved_to",))
#: Rows that print only when the person has the item (an empty pair is dropped).
_OPTIONAL = frozenset({"former_surname", "former_surname_kana", "name_alpha", "alias", "alias_kana"})
_STAY_ITEMS = ("residence_status", "residence_period", "residence_expiry")


def _iso_text(iso: Any, seireki: bool, eras: EraTable) -> str:
    if not iso:
        return ""
    day = _dt.date.fromisoformat(str(iso))
    return to_seireki(day) if seireki else eras.to_wareki(day)


def _value(rec: Record, key: str, eras: EraTable) -> str:
    """The text of `key` as it prints: registry strings as received, ISO-only dates formatted."""
    foreign = rec.get("resident_type") == "外国人住民"
    if key == "birth_date":
        return str(rec.get("birth_date") or _iso_text(rec.get("birth_date_iso"), foreign, eras))
    if key == "notified":
        return str(rec.get("notified_date") or _iso_text(rec.get("notified_on"), False, eras))
    if key in ("resident_since", "address_since"):
        return str(rec.get(key) or _iso_text(rec.get(f"{key}_iso"), False, eras))
    if key == "residence_expiry":
        return _iso_text(rec.get(key), True, eras)
    if key == "name_alpha":
        alpha = rec.get("name_alpha") or ""
        return "" if alpha == rec.get("name") else str(alpha)
    return str(rec.get(key) or "")


def person_block(seq: int, rec: Record, omit: frozenset[Omission], config: CertConfig) -> Person:
    """The printed block of one person."""
    foreign = rec.get("resident_type") == "外国人住民"
    layout = _FOREIGN_ROWS if foreign else _JAPANESE_ROWS
    if is_removed(rec):
        layout = layout + _REMOVAL_ROWS
    eras = config.era_table
    rows: list[tuple[Item, ...]] = []
    for keys in layout:
        if foreign and any(k in _STAY_ITEMS for k in keys):
            # 特別永住者 and the like have no 在留資格/在留期間: those rows do not apply
            if rec.get("foreign_category") != "中長期在留者" and not any(rec.get(k) for k in keys):
                continue
        values = {k: _value(rec, k, eras) for k in keys}
        if all(k in _OPTIONAL for k in keys) and not any(values.values()):
            continue
        if any(OMITTED_BY.get(k) is Omission.ALIAS for k in keys) and Omission.ALIAS in omit:
            continue
        row = []
        for k in keys:
            omitted = OMITTED_BY.get(k) in omit
            row.append(Item(k, LABELS[k], config.omitted_text if omitted else values[k], omitted))
        rows.append(tuple(row))
    return Person(seq, str(rec["atena_no"]), foreign, tuple(rows))


def _header(title: str, rec: Record, omit: frozenset[Omission], config: CertConfig, official: bool) -> Header:
    address = f"{rec.get('address') or ''}{rec.get('banchi') or ''}"
    katagaki = rec.get("katagaki") or ""
    if katagaki and Omission.KATAGAKI not in omit:
        address += f"\u3000{katagaki}"  # 方書 always prints (spec 5.4)
    omitted = Omission.HEAD_AND_RELATIONSHIP in omit
    head = Item("head_name", "世帯主", config.omitted_text if omitted else str(rec.get("head_name") or ""), omitted)
    return Header(title, Item("address", "住所", address), head, official)


def certificate_units(request: CertRequest, persons: Sequence[Record]) -> list[list[Record]]:
    """The persons of each certificate: all together (世帯連記式) or one each (個人票)."""
    if request.layout is Layout.INDIVIDUAL:
        return [[p] for p in persons]
    return [list(persons)]


def certificates_needed(request: CertRequest, persons: Sequence[Record]) -> int:
    """How many sequence numbers the request takes: certificates × copies."""
    return len(certificate_units(request, persons)) * request.copies


def build_document(
    records: Sequence[Record],
    household_records: Sequence[Record],
    request: CertRequest,
    config: CertConfig,
    issued_at: _dt.datetime,
    serials: Sequence[int],
) -> Document:
    """The document for persons `records` (already selected and ordered by the rules) of a household.

    `serials` holds one sequence number per certificate (`certificates_needed`), used in order.
    """
    units = certificate_units(request, records)
    if len(serials) != len(units) * request.copies:
        raise ValueError(f"need {len(units) * request.copies} serial numbers, got {len(serials)}")
    omit, notes = effective_omissions(request, config)
    day = issued_at.date()
    footer = Footer(
        certification=config.certification_texts[certification_key(request.kind, request.scope, request.layout)],
        issued_on=config.era_table.to_wareki(day),
        signer=config.signer(day),
        seal=bool(config.seal_image),
        seal_note=config.seal_note if config.seal_image else "",
    )
    title = config.titles[request.kind.value]
    # The household's own header data (the 世帯主's record if present) for a 世帯連記式 sheet.
    head_rec = next((r for r in household_records if r.get("relationship") == "世帯主" and not is_removed(r)), None)
    certs: list[Certificate] = []
    numbers = iter(serials)
    for unit in units:
        blocks = [person_block(i, rec, omit, config) for i, rec in enumerate(unit, start=1)]
        per_sheet = PERSONS_PER_SHEET if request.layout is Layout.HOUSEHOLD else 1
        chunks = [blocks[i : i + per_sheet] for i in range(0, len(blocks), per_sheet)]
        source = head_rec if request.layout is Layout.HOUSEHOLD and head_rec is not None else unit[0]
        header = _header(title, source, omit, config, request.is_official)
        for copy in range(1, request.copies + 1):
            seq = next(numbers)
            total = len(chunks)
            pages = tuple(
                Page(n, total, format_serial(config, day, seq, n, total), tuple(chunk), footer if n == total else None)
                for n, chunk in enumerate(chunks, start=1)
            )
            certs.append(Certificate(copy, seq, header, pages))
    return Document(
        kind=request.kind,
        scope=request.scope,
        layout=request.layout,
        requester=request.requester,
        issued_at=issued_at,
        certificates=tuple(certs),
        fee=fee(config, request, (len(c.pages) for c in certs)),
        notes=notes,
    )
