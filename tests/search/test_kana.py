"""フリガナ, 氏名 and 住所 fold the way the standard says they compare (標準仕様書 2.1.2/2.1.3)."""

from __future__ import annotations

import pytest

from edgenode.search.kana import (
    VARIANT_GROUPS,
    fold_address,
    fold_kana,
    fold_name,
    is_kana_text,
    kana_index_readings,
    kana_query_keys,
    kanji_number,
    run_together,
)


def _stored_keys(kana: str) -> set[str]:
    """The whole-name keys the index holds for a stored フリガナ."""
    keys = set()
    for parts in kana_index_readings(kana):
        joined = "".join(parts)
        keys |= {joined, run_together(joined)}
    return keys


def finds(query: str, stored: str) -> bool:
    """True if a kana query equals a stored フリガナ under the folding rules."""
    return bool(set(kana_query_keys(query)) & _stored_keys(stored))


def test_sato_finds_satou_and_satoo() -> None:
    assert fold_kana("サトウ") == fold_kana("サトオ") == fold_kana("サトー") == fold_kana("サト")
    assert finds("サトー", "サトウ") and finds("サトオ", "サトウ") and finds("サトウ", "サトー")


def test_u_after_o_row_is_folded_only_from_the_second_character() -> None:
    assert fold_kana("ウエダ").startswith("ウ")
    assert fold_kana("ウエダ") != fold_kana("エダ")
    assert fold_kana("オウギ") == fold_kana("オーギ") == fold_kana("オギ")
    assert fold_kana("コウノ") == fold_kana("コーノ") == fold_kana("コオノ")
    assert fold_kana("キョウコ") == fold_kana("キョーコ")


def test_u_rule_restarts_where_the_given_name_begins() -> None:
    assert fold_kana("サトウ　ウメ") == fold_kana("サト") + fold_kana("ウメ")
    assert finds("サトウ ウメ", "サトウ　ウメ")
    assert finds("サトウウメ", "サトウ　ウメ")  # typed without the space: the run-together key
    assert finds("サトウオサム", "サトウ　オサム") and finds("サトウ　オサム", "サトウ　オサム")


def test_u_after_other_rows_is_kept() -> None:
    assert fold_kana("ユウコ") != fold_kana("ユコ")
    assert fold_kana("ユウコ") == fold_kana("ユウコ")


@pytest.mark.parametrize(
    ("a", "b"),
    [("ガ", "カ"), ("パ", "ハ"), ("バ", "ハ"), ("パ", "バ"), ("ゴトウ", "コトウ"), ("ベップ", "ヘツフ")],
)
def test_voiced_and_semi_voiced_marks_are_ignored(a: str, b: str) -> None:
    assert fold_kana(a) == fold_kana(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ヂ", "ジ"),
        ("ズ", "ヅ"),
        ("ワ", "ハ"),
        ("ヴァ", "バ"),
        ("ヴィ", "ビ"),
        ("ヴ", "ブ"),
        ("オ", "ヲ"),
        ("ヒ", "ピ"),
    ],
)
def test_every_pair_the_standard_lists_is_equal(a: str, b: str) -> None:
    assert finds(a, b) and finds(b, a)
    assert finds(f"カ{a}ミ", f"カ{b}ミ")


def test_di_and_du_also_match_their_unvoiced_kana_through_a_second_key() -> None:
    assert finds("チヂワ", "チチワ") and finds("チチワ", "チヂワ") and finds("チジワ", "チヂワ")
    assert finds("ツヅキ", "ツツキ") and finds("ツズキ", "ツヅキ")
    assert len(kana_query_keys("チヂワ")) == 2


def test_chi_and_shi_stay_apart() -> None:
    assert not finds("チカ", "シカ")
    assert not finds("ツダ", "スダ")
    assert not finds("ジ", "チ")


@pytest.mark.parametrize(
    ("small", "large"), list(zip("ッャュョァィゥェォヮヵヶ", "ツヤユヨアイウエオワカケ", strict=True))
)
def test_small_kana_equal_large_kana(small: str, large: str) -> None:
    assert fold_kana(f"カ{small}") == fold_kana(f"カ{large}")


@pytest.mark.parametrize("mark", ["ー", "―", "－", "‐", "ｰ", "-"])
def test_every_long_vowel_mark_and_dash_is_ignored(mark: str) -> None:
    assert fold_kana(f"マ{mark}ク") == fold_kana("マク") == fold_kana("マーク")


def test_spaces_between_surname_and_given_name_are_ignored() -> None:
    assert (
        fold_kana("ヤマダ　ハナコ")
        == fold_kana("ヤマダ ハナコ")
        == fold_kana("ヤマダハナコ")
        == fold_kana("ヤマダ ・ハナコ")
    )


def test_hiragana_and_half_width_kana_are_searched_as_katakana() -> None:
    assert fold_kana("さとう　はなこ") == fold_kana("ｻﾄｳ ﾊﾅｺ") == fold_kana("サトウ　ハナコ")
    assert fold_kana("ｶﾞｯｺｳ") == fold_kana("ガッコウ")
    assert fold_kana("ｳﾞｧｲｵﾘﾝ") == fold_kana("バイオリン")
    assert fold_kana("ウ゛ァ") == fold_kana("ヴァ")  # a spacing ゛ typed after ウ


def test_iteration_marks_repeat_the_kana_before_them() -> None:
    assert fold_kana("サヽキ") == fold_kana("ササキ") == fold_kana("さゝき")


def test_is_kana_text_accepts_either_script_and_half_width() -> None:
    assert is_kana_text("さとう はなこ") and is_kana_text("ｻﾄｳ") and is_kana_text("サトー")
    assert not is_kana_text("佐藤") and not is_kana_text("sato") and not is_kana_text("  ")


def test_name_folding_drops_spaces_and_case() -> None:
    assert fold_name("渡辺　修平") == fold_name("渡辺 修平") == fold_name("渡辺修平")
    assert fold_name("ＰＡＲＫ　Youngja") == fold_name("park youngja") == "parkyoungja"


@pytest.mark.parametrize(
    ("variant", "plain"),
    [
        ("髙橋", "高橋"),
        ("山\ufa11", "山崎"),
        ("\U00020bb7田", "吉田"),
        ("渡邊", "渡辺"),
        ("渡邉", "渡辺"),
        ("齋藤", "斉藤"),
        ("斎藤", "斉藤"),
        ("斉\U000e0103藤", "斉藤"),  # an IVS is dropped before the variant table
        ("濱田", "浜田"),
        ("澤田", "沢田"),
        ("嶋田", "島田"),
        ("冨田", "富田"),
        ("櫻井", "桜井"),
        ("廣田", "広田"),
        ("龍太", "竜太"),
        ("惠子", "恵子"),
        ("神\ufa19", "神神"),  # a CJK compatibility ideograph, by NFKC
        ("一之瀬", "一ノ瀬"),
        ("三ヶ島", "三ケ島"),
    ],
)
def test_variant_kanji_fold_to_one_representative(variant: str, plain: str) -> None:
    assert fold_name(variant) == fold_name(plain)


def test_variant_groups_do_not_overlap() -> None:
    chars = [c for group in VARIANT_GROUPS for c in group]
    assert len(chars) == len(set(chars))


def test_address_folding_turns_counted_kanji_numerals_into_digits() -> None:
    assert fold_address("橘通東一丁目３番２号") == fold_address("橘通東1丁目3番2号") == "橘通東1丁目3番2号"
    assert fold_address("三十五番地") == "35番地"
    assert kanji_number("百五") == 105 and kanji_number("一〇") == 10 and kanji_number("二千二十六") == 2026


def test_address_folding_leaves_building_and_place_names_alone() -> None:
    assert fold_address("八重洲二引ビル") == "八重洲二引ビル"
    assert fold_address("大字五十鈴") == "大字五十鈴"
    assert fold_address("コーポ ハイツ") == "コーポハイツ"


def test_address_folding_unifies_dashes_spaces_and_ke() -> None:
    assert fold_address("3688－26") == fold_address("3688‐26") == fold_address("3688ー26") == "3688-26"
    assert fold_address("栄ヶ丘") == fold_address("栄ケ丘") == fold_address("栄が丘")
    assert fold_address("メゾン　城西") == fold_address("メゾン城西")
