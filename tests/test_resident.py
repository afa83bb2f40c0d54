import pytest

from edgenode.errors import RecordError
from edgenode.resident import (
    is_valid_m11,
    is_valid_my_number,
    is_valid_relationship,
    m11_check_digit,
    my_number_check_digit,
    validate_record,
    with_m11,
)
from tests.records import person


def test_m11_check_digit_uses_weights_two_to_seven_from_the_right() -> None:
    # 0000001: 1*2 = 2, 2 mod 11 = 2, 11 - 2 = 9
    assert m11_check_digit("0000001") == 9
    # weights cycle 2..7 then back to 2: body 1000000 -> 1*(2 + 6 % 6) = 2 -> 9
    assert m11_check_digit("1000000") == 9
    assert is_valid_m11(with_m11("1234567"))
    assert not is_valid_m11("12345670" if with_m11("1234567") != "12345670" else "12345671")


def test_my_number_check_digit_matches_a_published_example() -> None:
    # Example commonly used in 番号法 documentation: 123456789018
    assert my_number_check_digit("12345678901") == 8
    assert is_valid_my_number("123456789018")
    assert not is_valid_my_number("123456789010")
    assert not is_valid_my_number("１２３４５６７８９０１８")  # full-width digits are refused


@pytest.mark.parametrize("rel", ["世帯主", "妻", "子", "子の妻", "子の子の子の子", "夫（未届）", "縁故者", "同居人"])
def test_relationship_vocabulary_accepts_standard_terms(rel: str) -> None:
    assert is_valid_relationship(rel)


@pytest.mark.parametrize("rel", ["祖父", "孫", "長男", "子の子の子の子の子", "おじ", "準世帯主"])
def test_relationship_vocabulary_refuses_terms_the_standard_forbids(rel: str) -> None:
    assert not is_valid_relationship(rel)


def test_record_validation_names_the_bad_item() -> None:
    validate_record(person(1))
    with pytest.raises(RecordError, match="birth_date"):
        validate_record(person(1, birth_date=""))
    with pytest.raises(RecordError, match="宛名番号"):
        validate_record(person(1, atena_no="00000010"))
    with pytest.raises(RecordError, match="続柄"):
        validate_record(person(1, relationship="孫"))
    with pytest.raises(RecordError, match="制御文字"):
        validate_record(person(1, name="門川\x00太郎"))
    with pytest.raises(RecordError, match="YYYY-MM-DD"):
        validate_record(person(1, birth_date_iso="S55.12.26"))


def test_undated_display_strings_are_kept_as_received() -> None:
    rec = person(1, birth_date="昭和55年頃", birth_date_iso=None)
    assert validate_record(rec)["birth_date"] == "昭和55年頃"
