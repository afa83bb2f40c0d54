"""What a clerk asks for (`CertRequest`) and what gets printed (`Document`).

A `Document` is everything handed over for one request: one `Certificate` per copy (and, for
個人票, per person), each a stapled set of `Page`s with its own 発行番号. Pages hold `Item`s
whose `text` is exactly what prints: names, addresses and registry date strings byte-exact as
received, dates we format ourselves (交付年月日, ISO-only dates) already formatted.

Omitted items keep their cell and print the configured 省略 text (`Item.omitted`); items that do
not apply to the person (本籍 of a 外国人住民, 在留資格 of a 日本人住民) are left out.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from edgenode.certs.errors import RuleViolation

_E = TypeVar("_E", bound=enum.StrEnum)


class Kind(enum.StrEnum):
    """Certificate kinds this node issues (spec 5.1)."""

    COPY = "住民票の写し"
    REMOVED_COPY = "住民票の除票の写し"
    ITEM_CERTIFICATE = "住民票記載事項証明書"


class Scope(enum.StrEnum):
    """Whole household or part of it."""

    WHOLE = "世帯全員"
    PART = "世帯の一部"


class Layout(enum.StrEnum):
    """世帯連記式 (up to four persons a sheet) or 個人票 (one person a certificate)."""

    HOUSEHOLD = "世帯連記式"
    INDIVIDUAL = "個人票"


class Requester(enum.StrEnum):
    """Who asks (住民基本台帳法 12条, 12条の2, 12条の3)."""

    SELF = "本人"
    SAME_HOUSEHOLD = "同一世帯"
    PROXY = "代理人"
    THIRD_PARTY = "第三者"
    OFFICIAL = "公用"


class Omission(enum.StrEnum):
    """Items that can be left out (spec 5.1; 方書 only on a 記載事項証明書, spec 5.4)."""

    HEAD_AND_RELATIONSHIP = "世帯主・続柄"
    HONSEKI = "本籍・筆頭者"
    JUMINHYO_CODE = "住民票コード"
    MY_NUMBER = "個人番号"
    NATIONALITY = "国籍・地域"
    FOREIGN_CATEGORY = "法第30条の45に規定する区分"
    RESIDENCE_STATUS = "在留資格"
    RESIDENCE_PERIOD = "在留期間等"
    RESIDENCE_EXPIRY = "在留期間の満了の日"
    RESIDENCE_CARD = "在留カード等番号"
    ALIAS = "通称"
    KATAGAKI = "方書"


def _coerce(cls: type[_E], value: str, what: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        allowed = "、".join(m.value for m in cls)
        raise RuleViolation(f"{what}「{value}」は扱えません ({allowed} のいずれかです)") from None


@dataclass(frozen=True, init=False)
class CertRequest:
    """One request at the counter. The enum fields also take their Japanese strings.

    `omissions` None means "nothing was said": the legal default omissions apply (法12条5項).
    `persons` lists 宛名番号: required for 世帯の一部 and for 個人票 (empty for 世帯全員 means all).
    """

    kind: Kind
    scope: Scope
    layout: Layout
    requester: Requester
    persons: tuple[str, ...]
    omissions: frozenset[Omission] | None
    copies: int
    purpose: str  # 請求事由
    id_document: str  # 本人確認書類

    def __init__(
        self,
        kind: Kind | str,
        scope: Scope | str,
        layout: Layout | str,
        requester: Requester | str,
        persons: Iterable[str] = (),
        omissions: Iterable[Omission | str] | None = None,
        copies: int = 1,
        purpose: str = "",
        id_document: str = "",
    ) -> None:
        set_ = object.__setattr__
        set_(self, "kind", _coerce(Kind, kind, "証明書の種類"))
        set_(self, "scope", _coerce(Scope, scope, "範囲"))
        set_(self, "layout", _coerce(Layout, layout, "様式"))
        set_(self, "requester", _coerce(Requester, requester, "請求者の区分"))
        set_(self, "persons", tuple(persons))
        omitted = None if omissions is None else frozenset(_coerce(Omission, o, "省略する項目") for o in omissions)
        set_(self, "omissions", omitted)
        set_(self, "copies", copies)
        set_(self, "purpose", purpose)
        set_(self, "id_document", id_document)

    @property
    def is_official(self) -> bool:
        """公用請求: the certificate prints 「公用」 (spec 5.7)."""
        return self.requester is Requester.OFFICIAL


@dataclass(frozen=True)
class Item:
    """One printed cell: record key (or derived key), Japanese label, the text that prints."""

    key: str
    label: str
    text: str
    omitted: bool = False


@dataclass(frozen=True)
class Person:
    """One person's block: position in the certificate, 宛名番号, and the items in printed rows
    (a row holds one wide item or two half-width items)."""

    seq: int
    atena_no: str
    foreign: bool
    rows: tuple[tuple[Item, ...], ...]

    @property
    def items(self) -> tuple[Item, ...]:
        """All items in print order."""
        return tuple(i for row in self.rows for i in row)

    def get(self, key: str) -> Item | None:
        """The item with `key`, or None when it does not apply to this person."""
        return next((i for i in self.items if i.key == key), None)


@dataclass(frozen=True)
class Header:
    """Top of every page: title, 住所 (with 方書) and 世帯主."""

    title: str
    address: Item
    head: Item  # 世帯主 (on a 除票: the 世帯主 when the person left)
    official: bool


@dataclass(frozen=True)
class Footer:
    """Bottom of the last page only: 認証文, 交付年月日, the signer, the 職印."""

    certification: str
    issued_on: str
    signer: str
    seal: bool
    seal_note: str


@dataclass(frozen=True)
class Page:
    """One sheet: its persons, its 発行番号 (with p/N) and, on the last page, the footer."""

    number: int
    total: int
    serial: str
    persons: tuple[Person, ...]
    footer: Footer | None


@dataclass(frozen=True)
class Certificate:
    """One copy handed over (one 通): pages stapled together, one sequence number."""

    copy: int
    sequence: int
    header: Header
    pages: tuple[Page, ...]


@dataclass(frozen=True)
class Document:
    """Everything printed for one request, with the fee and notes for the clerk."""

    kind: Kind
    scope: Scope
    layout: Layout
    requester: Requester
    issued_at: _dt.datetime
    certificates: tuple[Certificate, ...]
    fee: int
    notes: tuple[str, ...] = ()

    @property
    def page_count(self) -> int:
        """Sheets of paper the document needs."""
        return sum(len(c.pages) for c in self.certificates)

    def pages(self) -> Iterator[tuple[Certificate, Page]]:
        """Every page in print order, with its certificate."""
        for cert in self.certificates:
            for page in cert.pages:
                yield cert, page

    def texts(self) -> Iterator[tuple[str, str]]:
        """(field label, text) of everything variable that prints, for the glyph check."""
        for cert, page in self.pages():
            h = cert.header
            yield "表題", h.title
            yield h.address.label, h.address.text
            yield h.head.label, h.head.text
            yield "発行番号", page.serial
            for person in page.persons:
                for item in person.items:
                    yield item.label, item.label
                    yield item.label, item.text
            if page.footer is not None:
                f = page.footer
                yield "認証文", f.certification
                yield "交付年月日", f.issued_on
                yield "認証者", f.signer
                yield "公印の注記", f.seal_note
