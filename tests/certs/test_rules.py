"""Issuance rules: default omissions, third parties, 除票, no mixing, the requester's papers."""

from __future__ import annotations

import dataclasses

import pytest

from edgenode.certs.config import CertConfig
from edgenode.certs.errors import RuleViolation
from edgenode.certs.model import CertRequest, Omission
from edgenode.certs.rules import check_request, effective_omissions, select_persons
from tests.certs.conftest import household, moved_out

ALL_ITEMS: frozenset[Omission] = frozenset()


def request(**over: object) -> CertRequest:
    values: dict[str, object] = {
        "kind": "住民票の写し",
        "scope": "世帯全員",
        "layout": "世帯連記式",
        "requester": "本人",
        "id_document": "マイナンバーカード",
    }
    values.update(over)
    return CertRequest(**values)  # type: ignore[arg-type]


def test_nothing_asked_leaves_out_the_four_default_items(config: CertConfig) -> None:
    omit, notes = effective_omissions(request(), config)
    assert omit == {Omission.HEAD_AND_RELATIONSHIP, Omission.HONSEKI, Omission.MY_NUMBER, Omission.JUMINHYO_CODE}
    assert notes == ()


def test_items_asked_for_are_printed_for_the_resident(config: CertConfig) -> None:
    omit, _ = effective_omissions(request(omissions=ALL_ITEMS), config)
    assert omit == set()


@pytest.mark.parametrize("omissions", [None, ALL_ITEMS, frozenset({Omission.HONSEKI})])
def test_third_party_copy_never_shows_my_number_or_juminhyo_code(
    config: CertConfig, omissions: frozenset[Omission] | None
) -> None:
    req = request(requester="第三者", purpose="相続手続のため", omissions=omissions)
    omit, notes = effective_omissions(req, config)
    assert {Omission.MY_NUMBER, Omission.JUMINHYO_CODE} <= omit
    if omissions == ALL_ITEMS:
        assert notes and "第三者請求のため" in notes[0] and "個人番号" in notes[0]


def test_proxy_gets_no_numbers_unless_the_municipality_allows_it(config: CertConfig) -> None:
    req = request(requester="代理人", omissions=ALL_ITEMS)
    assert Omission.MY_NUMBER in effective_omissions(req, config)[0]
    allowing = dataclasses.replace(config, proxy_may_receive_numbers=True)
    assert Omission.MY_NUMBER not in effective_omissions(req, allowing)[0]


def test_removed_copy_is_only_issued_as_individual_sheet() -> None:
    with pytest.raises(RuleViolation, match="個人票でのみ"):
        check_request(request(kind="住民票の除票の写し", layout="世帯連記式", scope="世帯の一部", persons=("1",)))


def test_removed_copy_is_refused_for_a_current_resident() -> None:
    hh = household(3)
    req = request(kind="住民票の除票の写し", layout="個人票", scope="世帯の一部", persons=(hh[0]["atena_no"],))
    with pytest.raises(RuleViolation, match="住民です。除票の写しは"):
        select_persons(hh, req)


def test_household_sheet_never_mixes_removed_and_current_persons() -> None:
    hh = household(3)
    hh[2] = moved_out(hh[2])
    req = request(scope="世帯の一部", persons=tuple(r["atena_no"] for r in hh))
    with pytest.raises(RuleViolation, match="除票の方と住民の方を同じ証明書に記載できません") as err:
        select_persons(hh, req)
    assert "住民票の除票の写し" in err.value.reason


def test_copy_of_a_removed_person_points_to_the_removed_copy() -> None:
    hh = household(2)
    hh[1] = moved_out(hh[1])
    req = request(scope="世帯の一部", layout="個人票", persons=(hh[1]["atena_no"],))
    with pytest.raises(RuleViolation, match="除票の写しで請求してください"):
        select_persons(hh, req)


def test_whole_household_means_the_current_members_only() -> None:
    hh = household(3)
    hh.append(moved_out(household(4)[3]))
    chosen = select_persons(hh, request())
    assert [r["atena_no"] for r in chosen] == [r["atena_no"] for r in hh[:3]]


def test_whole_household_with_some_persons_picked_is_refused() -> None:
    hh = household(3)
    with pytest.raises(RuleViolation, match="世帯全員の請求"):
        select_persons(hh, request(persons=(hh[0]["atena_no"],)))


def test_unknown_person_is_named_in_the_refusal() -> None:
    with pytest.raises(RuleViolation, match="宛名番号 99999999 はこの世帯の記録にありません"):
        select_persons(household(2), request(scope="世帯の一部", persons=("99999999",)))


def test_records_of_two_households_are_refused() -> None:
    other = household(6)[5] | {"household_no": "50000028"}
    with pytest.raises(RuleViolation, match="別の世帯"):
        select_persons([*household(2), other], request())


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"copies": 0}, "交付通数は 1〜10 通です"),
        ({"copies": 11}, "交付通数は 1〜10 通です"),
        ({"requester": "第三者"}, "第三者請求には請求事由"),
        ({"requester": "公用", "id_document": ""}, "公用請求には請求事由"),
        ({"id_document": " "}, "本人確認書類"),
        ({"scope": "世帯の一部"}, "記載する方を選んでください"),
        ({"omissions": frozenset({Omission.KATAGAKI})}, "方書は省略できません"),
        ({"scope": "世帯の一部", "persons": ("1", "1")}, "2回選ばれています"),
    ],
)
def test_requests_missing_what_the_counter_must_record_are_refused(over: dict[str, object], reason: str) -> None:
    with pytest.raises(RuleViolation, match=reason):
        check_request(request(**over))


def test_official_request_needs_no_identity_document() -> None:
    check_request(request(requester="公用", id_document="", purpose="児童手当法第28条による事務"))


def test_katagaki_may_be_left_out_of_an_item_certificate_only() -> None:
    check_request(request(kind="住民票記載事項証明書", omissions=frozenset({Omission.KATAGAKI})))


def test_unknown_values_are_refused_in_japanese() -> None:
    with pytest.raises(RuleViolation, match="証明書の種類「印鑑登録証明書」は扱えません"):
        request(kind="印鑑登録証明書")
