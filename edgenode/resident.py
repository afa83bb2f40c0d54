"""The resident record shared by hub and node (住民記録).

Follows the standard's history model (住民記録システム標準仕様書 1.2.1): every change appends a
full copy of the person's record keyed by (宛名番号, 履歴番号); the *current* record is the one
with the highest 履歴番号. Household data (世帯番号, 続柄, 世帯主の氏名) is kept on each person.

Records are plain dicts of JSON scalars. Names, addresses and date display strings are kept
byte-exact as received: nothing here normalizes Unicode. Search keys are derived elsewhere.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from operator import mul
from typing import Any

from edgenode.errors import RecordError

#: 住民種別
RESIDENT_TYPES = ("日本人住民", "外国人住民")
#: 住民状態 (除票 = anything but 住民)
STATUSES = ("住民", "転出", "死亡", "消除")
#: 異動事由の区分 (spec 1.2.2)
CHANGE_CLASSES = ("記載", "消除", "修正")
SEXES = ("男", "女")
#: 法第30条の45 区分
FOREIGN_CATEGORIES = ("中長期在留者", "特別永住者", "一時庇護許可者", "仮滞在者", "経過滞在者")


@dataclass(frozen=True)
class Field:
    """One item of the record: key, Japanese label, whether it may be blank."""

    key: str
    label: str
    required: bool = False
    kind: str = "text"  # text | iso_date | digits | bool | int


FIELDS: tuple[Field, ...] = (
    Field("atena_no", "宛名番号", True, "digits"),
    Field("rireki_no", "履歴番号", True, "int"),
    Field("household_no", "世帯番号", True, "digits"),
    Field("resident_type", "住民種別", True),
    Field("status", "住民状態", True),
    Field("name", "氏名", True),
    Field("kana", "氏名の振り仮名"),
    Field("name_alpha", "氏名(アルファベット)"),
    Field("former_surname", "旧氏"),
    Field("former_surname_kana", "旧氏の振り仮名"),
    Field("alias", "通称"),
    Field("alias_kana", "通称の振り仮名"),
    Field("birth_date", "生年月日", True),
    Field("birth_date_iso", "生年月日(暦日)", False, "iso_date"),
    Field("sex", "性別"),
    Field("relationship", "続柄"),
    Field("head_name", "世帯主の氏名"),
    Field("household_order", "世帯員の並び順", False, "int"),
    Field("honseki", "本籍"),
    Field("hittosha", "筆頭者"),
    Field("address", "住所", True),
    Field("banchi", "番地"),
    Field("katagaki", "方書"),
    Field("address_code", "住所コード", False, "digits"),
    Field("postal_code", "郵便番号"),
    Field("resident_since", "住民となった年月日"),
    Field("resident_since_iso", "住民となった年月日(暦日)", False, "iso_date"),
    Field("address_since", "住所を定めた年月日"),
    Field("address_since_iso", "住所を定めた年月日(暦日)", False, "iso_date"),
    Field("notified_on", "届出日", False, "iso_date"),
    Field("prev_address", "転入前住所"),
    Field("juminhyo_code", "住民票コード", False, "digits"),
    Field("my_number", "個人番号", False, "digits"),
    Field("nationality", "国籍・地域"),
    Field("foreign_category", "法第30条の45に規定する区分"),
    Field("residence_status", "在留資格"),
    Field("residence_period", "在留期間"),
    Field("residence_expiry", "在留期間の満了の日", False, "iso_date"),
    Field("residence_card_no", "在留カード等番号"),
    Field("foreign_resident_since", "外国人住民となった年月日"),
    Field("change_reason", "異動事由", True),
    Field("change_class", "異動事由の区分", True),
    Field("change_date", "異動日"),
    Field("change_date_iso", "異動日(暦日)", False, "iso_date"),
    Field("notified_date", "届出の年月日(表示)"),
    Field("processed_on", "処理日", True, "iso_date"),
    Field("removal_reason", "消除事由"),
    Field("removal_date", "消除の年月日"),
    Field("moved_to", "転出先住所"),
)
FIELD_BY_KEY = {f.key: f for f in FIELDS}
#: Keys every exported line carries (the interface contract), even when blank.
EXPORT_KEYS = (
    "atena_no",
    "household_no",
    "name",
    "kana",
    "birth_date",
    "sex",
    "relationship",
    "address",
    "status",
)

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_TEXT = 1024
MAX_RECORD_BYTES = 16384

# 続柄 (spec 1.1.11): 世帯主, 縁故者, 同居人, or up to four of the base terms joined by 「の」.
_BASE = r"(?:夫|妻|夫[（(]未届[）)]|妻[（(]未届[）)]|子|父|母|兄|姉|弟|妹)"
_REL_RE = re.compile(rf"^(?:世帯主|縁故者|同居人|{_BASE}(?:の{_BASE}){{0,3}})$")


def is_valid_relationship(value: str) -> bool:
    """True if `value` is in the standard's 続柄 vocabulary (祖父, 孫 … are not)."""
    return bool(_REL_RE.match(value))


_DIGITS = bytes.maketrans(b"0123456789", bytes(range(10)))  # ASCII digit -> its value
_M11_WEIGHTS = (2, 3, 4, 5, 6, 7) * 8
_MY_NUMBER_WEIGHTS = (2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6)


def m11_check_digit(body: str) -> int:
    """Check digit of 宛名番号/世帯番号: modulus 11, weights 2..7 from the right (M11W2-7).

    Remainder 0 gives 0 (the spec); remainder 1 would give 10, which has no digit, so it also
    gives 0 (the usual practice; the spec is silent).
    """
    total = sum(map(mul, body[::-1].encode("ascii").translate(_DIGITS), _M11_WEIGHTS))
    r = total % 11
    return 0 if r <= 1 else 11 - r


def with_m11(body: str) -> str:
    """`body` with its M11W2-7 check digit appended."""
    return body + str(m11_check_digit(body))


def is_valid_m11(number: str) -> bool:
    """True if the last digit of `number` is its M11W2-7 check digit."""
    return (
        2 <= len(number) <= 48
        and number.isascii()
        and number.isdigit()
        and m11_check_digit(number[:-1]) == int(number[-1])
    )


def my_number_check_digit(body11: str) -> int:
    """Check digit of a 12-digit 個人番号 (番号法施行令 第8条)."""
    # weight of the n-th digit from the right: n + 1 for n <= 6, n - 5 after
    total = sum(map(mul, body11[::-1].encode("ascii").translate(_DIGITS), _MY_NUMBER_WEIGHTS))
    r = total % 11
    return 0 if r <= 1 else 11 - r


def is_valid_my_number(number: str) -> bool:
    """True for 12 ASCII digits whose last digit is the 個人番号 check digit."""
    return (
        len(number) == 12
        and number.isascii()
        and number.isdigit()
        and my_number_check_digit(number[:11]) == int(number[11])
    )


# Control characters and lone surrogates (which cannot be encoded as UTF-8) are never data.
_BAD_CHARS = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _check_text(key: str, value: Any) -> None:
    if type(value) is not str:
        raise RecordError(f"{key}: 文字列ではありません ({type(value).__name__})")
    if len(value) > MAX_TEXT:
        raise RecordError(f"{key}: 長すぎます ({len(value)} 文字)")
    bad = _BAD_CHARS.search(value)
    if bad is not None:
        what = "UTF-8 にできない文字" if bad.group() >= "\ud800" else "制御文字"
        raise RecordError(f"{key}: {what}を含みます (U+{ord(bad.group()):04X})")


_REQUIRED = tuple((f.key, f.label) for f in FIELDS if f.required)


def validate_record(rec: Any) -> dict[str, Any]:
    """Check one record and return it unchanged; raise `RecordError` saying what is wrong.

    Unknown keys are allowed (the rest of a vendor record travels along) but must be simple
    lower-case names with scalar values. This runs for every row a node applies (a million
    at a bootstrap), so it walks the record once and checks all its text with one search.
    """
    if type(rec) is not dict:
        raise RecordError("レコードが JSON オブジェクトではありません")
    for key, label in _REQUIRED:
        v = rec.get(key)
        if v is None or v == "":
            raise RecordError(f"{key} ({label}) は空欄にできません")
    texts: list[str] = []
    for key, v in rec.items():
        if v is None:
            continue
        f = FIELD_BY_KEY.get(key)
        if f is None:
            if not _KEY_RE.match(key):
                raise RecordError(f"項目名が不正です: {key!r}")
            if type(v) is str:
                texts.append(v)
            elif not isinstance(v, (bool, int, float)):
                raise RecordError(f"{key}: 値は文字列・数値・真偽値のいずれかです")
            continue
        kind = f.kind
        if kind == "int":
            if type(v) is not int or v < 0 or v > 10**9:
                raise RecordError(f"{key} ({f.label}) は 0 以上の整数です")
            continue
        if type(v) is not str:
            raise RecordError(f"{key} ({f.label}): 文字列ではありません ({type(v).__name__})")
        if len(v) > MAX_TEXT:
            raise RecordError(f"{key} ({f.label}): 長すぎます ({len(v)} 文字)")
        if kind == "text":
            texts.append(v)
        elif v == "":
            continue
        elif kind == "digits":
            if not (v.isascii() and v.isdigit()):
                raise RecordError(f"{key} ({f.label}) は半角数字です: {v!r}")
        elif kind == "iso_date":
            if not _ISO_RE.match(v):
                raise RecordError(f"{key} ({f.label}) は YYYY-MM-DD です: {v!r}")
            try:
                _dt.date.fromisoformat(v)
            except ValueError as exc:
                raise RecordError(f"{key} ({f.label}) は暦日ではありません: {v!r}") from exc
    bad = _BAD_CHARS.search("".join(texts))
    if bad is not None:
        for key, v in rec.items():
            if type(v) is str:
                _check_text(key, v)  # names the item
    if not is_valid_m11(rec["atena_no"]):
        raise RecordError(f"宛名番号 {rec['atena_no']} のチェックデジットが合いません")
    if not is_valid_m11(rec["household_no"]):
        raise RecordError(f"世帯番号 {rec['household_no']} のチェックデジットが合いません")
    if rec["resident_type"] not in RESIDENT_TYPES:
        raise RecordError(f"住民種別が不正です: {rec['resident_type']!r}")
    if rec["status"] not in STATUSES:
        raise RecordError(f"住民状態が不正です: {rec['status']!r}")
    if rec["change_class"] not in CHANGE_CLASSES:
        raise RecordError(f"異動事由の区分が不正です: {rec['change_class']!r}")
    if rec.get("sex") not in (None, "", *SEXES):
        raise RecordError(f"性別が不正です: {rec['sex']!r}")
    rel = rec.get("relationship")
    if rel and not is_valid_relationship(rel):
        raise RecordError(f"続柄が標準の語彙にありません: {rel!r}")
    mn = rec.get("my_number")
    if mn and not is_valid_my_number(mn):
        raise RecordError("個人番号のチェックデジットが合いません")
    jc = rec.get("juminhyo_code")
    if jc and len(jc) != 11:
        raise RecordError("住民票コードは 11 桁です")
    fc = rec.get("foreign_category")
    if fc and fc not in FOREIGN_CATEGORIES:
        raise RecordError(f"法第30条の45 区分が不正です: {fc!r}")
    return rec


#: Kinds of restriction (支援措置 / 抑止), replicated in their own table.
RESTRICTION_KINDS = ("支援措置", "仮支援措置", "抑止")
RESTRICTION_PROCESSES = ("証明書交付", "照会", "異動入力")
RESTRICTION_LEVELS = ("エラー", "アラート")


def validate_restriction(rec: Any) -> dict[str, Any]:
    """Check a 支援措置/抑止 record: who it covers, which processes, level and dates."""
    if not isinstance(rec, dict):
        raise RecordError("制限レコードが JSON オブジェクトではありません")
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid:
        raise RecordError("制限レコードに id がありません")
    if rec.get("kind") not in RESTRICTION_KINDS:
        raise RecordError(f"制限の種類が不正です: {rec.get('kind')!r}")
    if not rec.get("atena_no") and not rec.get("household_no"):
        raise RecordError("制限の対象 (宛名番号 または 世帯番号) がありません")
    procs = rec.get("processes")
    if not isinstance(procs, list) or not procs or any(p not in RESTRICTION_PROCESSES for p in procs):
        raise RecordError(f"制限の対象事務が不正です: {procs!r}")
    if rec.get("level") not in RESTRICTION_LEVELS:
        raise RecordError(f"制限のレベルが不正です: {rec.get('level')!r}")
    for k in ("start_date", "end_date"):
        v = rec.get(k)
        if v is not None and not (isinstance(v, str) and _ISO_RE.match(v)):
            raise RecordError(f"{k} は YYYY-MM-DD です")
    for k, v in rec.items():
        if k == "processes":
            continue
        if isinstance(v, str):
            _check_text(k, v)
    return rec


STAFF_ROLES = ("clerk", "supervisor", "admin")


def validate_staff(rec: Any) -> dict[str, Any]:
    """Check a staff account record (user name, role, argon2 hash)."""
    if not isinstance(rec, dict):
        raise RecordError("職員レコードが JSON オブジェクトではありません")
    name = rec.get("user")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.@-]{1,64}$", name):
        raise RecordError(f"ユーザー名が不正です: {name!r}")
    if rec.get("role") not in STAFF_ROLES:
        raise RecordError(f"役割が不正です: {rec.get('role')!r}")
    ph = rec.get("password_hash")
    if not isinstance(ph, str) or not ph.startswith("$argon2"):
        raise RecordError("パスワードハッシュは argon2 形式です")
    return rec
