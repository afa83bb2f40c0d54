"""Issuance rules as pure functions: who gets what, which items are left out, in what order.

Every refusal is a `RuleViolation` whose `reason` tells the clerk what to ask for instead.
Sources: 住民基本台帳法 12条 (default omissions, 5項), 12条の3 (third parties), spec 5.1
(除票 only as 個人票, no mixing of 除票 and current persons on one 世帯連記式 sheet) and
5.2 (世帯員の並び順).

Not checked here: 支援措置 / 抑止 (they live in the restriction table; the caller checks them
before `prepare`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edgenode.certs.config import CertConfig
from edgenode.certs.errors import RuleViolation
from edgenode.certs.model import CertRequest, Kind, Layout, Omission, Requester, Scope

Record = Mapping[str, Any]
MAX_COPIES = 10
#: Never handed to a third party, whatever was asked (番号法; 法12条の3).
NUMBERS = frozenset({Omission.MY_NUMBER, Omission.JUMINHYO_CODE})
_SPOUSES = frozenset({"夫", "妻", "夫（未届）", "妻（未届）", "夫(未届)", "妻(未届)"})
_SIBLINGS = frozenset({"兄", "姉", "弟", "妹"})


def is_removed(rec: Record) -> bool:
    """True for a 除票 (住民状態 other than 住民: 転出, 死亡, 消除)."""
    return rec.get("status") != "住民"


def _who(rec: Record) -> str:
    return f"宛名番号 {rec.get('atena_no')} の方"


def check_request(request: CertRequest) -> None:
    """Rules that depend on the request alone (copies, layout, requester's papers)."""
    if not 1 <= request.copies <= MAX_COPIES:
        raise RuleViolation(f"交付通数は 1〜{MAX_COPIES} 通です (指定: {request.copies} 通)。")
    if request.kind is Kind.REMOVED_COPY and request.layout is not Layout.INDIVIDUAL:
        raise RuleViolation("住民票の除票の写しは個人票でのみ発行できます。様式を個人票にしてください。")
    if request.omissions and Omission.KATAGAKI in request.omissions and request.kind is not Kind.ITEM_CERTIFICATE:
        raise RuleViolation("方書は省略できません (省略できるのは住民票記載事項証明書だけです)。")
    if request.scope is Scope.PART and not request.persons:
        raise RuleViolation("世帯の一部の請求では、記載する方を選んでください。")
    if request.kind is Kind.REMOVED_COPY and not request.persons:
        raise RuleViolation("除票の写しでは、記載する方を選んでください。")
    if len(set(request.persons)) != len(request.persons):
        raise RuleViolation("同じ方が2回選ばれています。")
    if request.requester in (Requester.THIRD_PARTY, Requester.OFFICIAL) and not request.purpose.strip():
        who = "第三者" if request.requester is Requester.THIRD_PARTY else "公用"
        raise RuleViolation(f"{who}請求には請求事由 (利用目的・根拠) の記入が必要です。")
    if request.requester is not Requester.OFFICIAL and not request.id_document.strip():
        raise RuleViolation("窓口に来た方の本人確認書類を記録してください。")


def effective_omissions(request: CertRequest, config: CertConfig) -> tuple[frozenset[Omission], tuple[str, ...]]:
    """The items to leave out, and notes for the clerk about items left out against the request.

    Nothing asked → the default omissions (法12条5項). A third party never gets 個人番号 or
    住民票コード; nor does a 代理人 unless `proxy_may_receive_numbers` (usual practice is to mail
    such a copy to the resident).
    """
    asked = frozenset(config.default_omissions) if request.omissions is None else request.omissions
    forced: frozenset[Omission] = frozenset()
    if request.requester is Requester.THIRD_PARTY or (
        request.requester is Requester.PROXY and not config.proxy_may_receive_numbers
    ):
        forced = NUMBERS
    notes: tuple[str, ...] = ()
    if forced - asked:
        items = "・".join(o.value for o in Omission if o in forced - asked)
        notes = (f"{request.requester.value}請求のため、{items}は記載しません (省略と印字されます)。",)
    return asked | forced, notes


def _rank(rel: str) -> int:
    # spec 5.2: 世帯主, 配偶者, 子, 子の家族, 父母, 兄弟姉妹, other kin, 縁故者, 同居人
    if rel == "世帯主":
        return 0
    if rel in _SPOUSES:
        return 1
    if rel == "子":
        return 2
    if rel.startswith("子の"):
        return 3
    if rel in ("父", "母"):
        return 4
    if rel in _SIBLINGS:
        return 5
    return {"縁故者": 7, "同居人": 8}.get(rel, 6)


def _derived_key(rec: Record) -> tuple[int, int, str, str]:
    rel = str(rec.get("relationship") or "")
    # 父母: the one who heads the family register (筆頭者) first
    parent_first = 0 if rel in ("父", "母") and rec.get("name") == rec.get("hittosha") else 1
    return _rank(rel), parent_first, str(rec.get("birth_date_iso") or "9999-99-99"), str(rec.get("atena_no"))


def household_order(records: Iterable[Record]) -> list[Record]:
    """Records in 世帯員の並び順: the registry's `household_order` where present, then the rest
    (newcomers) in the standard's order, by birth date, ties by 宛名番号."""

    def key(rec: Record) -> tuple[int, int, tuple[int, int, str, str]]:
        order = rec.get("household_order")
        if isinstance(order, int) and not isinstance(order, bool):
            return 0, order, (0, 0, "", str(rec.get("atena_no")))
        return 1, 0, _derived_key(rec)

    return sorted(records, key=key)


def select_persons(household: Sequence[Record], request: CertRequest) -> list[Record]:
    """The persons the certificate shows, in household order; refuses what the rules forbid."""
    by_atena: dict[str, Record] = {}
    for rec in household:
        a = str(rec.get("atena_no"))
        if a in by_atena:
            raise RuleViolation(f"宛名番号 {a} の記録が2件あります (最新の記録だけを渡してください)。")
        by_atena[a] = rec
    if len({rec.get("household_no") for rec in household}) > 1:
        raise RuleViolation("別の世帯の記録が混ざっています。")
    current = [r for r in household if not is_removed(r)]
    if request.persons:
        unknown = [a for a in request.persons if a not in by_atena]
        if unknown:
            raise RuleViolation(f"宛名番号 {'、'.join(unknown)} はこの世帯の記録にありません。")
        chosen = [by_atena[a] for a in request.persons]
    else:
        chosen = current
    if not chosen:
        raise RuleViolation("この世帯には住民の方がいません。除票の写しで請求してください。")

    removed = [r for r in chosen if is_removed(r)]
    if request.kind is Kind.REMOVED_COPY:
        if len(removed) != len(chosen):
            who = _who(next(r for r in chosen if not is_removed(r)))
            raise RuleViolation(f"{who}は住民です。除票の写しは住民でなくなった方にだけ発行できます。")
    elif removed:
        if request.layout is Layout.HOUSEHOLD and len(removed) < len(chosen):
            raise RuleViolation(
                "世帯連記式では除票の方と住民の方を同じ証明書に記載できません。"
                "除票の方は住民票の除票の写し (個人票) で別に請求してください。"
            )
        r = removed[0]
        raise RuleViolation(
            f"{_who(r)}は住民ではありません ({r.get('status')})。住民票の除票の写しで請求してください。"
        )
    if request.scope is Scope.WHOLE and request.kind is not Kind.REMOVED_COPY and request.persons:
        if {str(r.get("atena_no")) for r in chosen} != {str(r.get("atena_no")) for r in current}:
            raise RuleViolation("世帯全員の請求では世帯の全員を選ぶか、範囲を世帯の一部にしてください。")
    return household_order(chosen)


def fee(config: CertConfig, request: CertRequest, pages_per_certificate: Iterable[int]) -> int:
    """The fee in yen: per certificate the copy fee plus the surcharge for each extra sheet."""
    if request.is_official and config.official_use_free:
        return 0
    return sum(config.fee_per_copy + (n - 1) * config.fee_per_extra_page for n in pages_per_certificate)
