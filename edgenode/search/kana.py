"""Search keys: フリガナ, 氏名 and 住所 folded so that what the standard calls equal compares equal.

Keys are derived copies for the index and for queries; the stored record is never touched.

**フリガナ** (`fold_kana`, `kana_query_keys`, `kana_index_readings`; 標準仕様書 2.1.2/2.1.3), in order:

1. NFKC (half-width ｶﾞ → ガ, full-width digits and letters → ASCII, U+3000 → space), the
   spacing marks ゛゜ made combining first so that ｳﾞ, ウ゛ and ヴ are all ヴ;
2. hiragana → katakana (ゔ → ヴ, ゝゞ → ヽヾ);
3. 長音 and every dash the standard lists as equal, 「ー ― － ‐ ｰ -」, plus ‑ ‒ – — − 〜 ～, are
   dropped; spaces (full or half width), ・ and = separate 氏 from 名 and are dropped;
4. ヴ: ヴァ ヴィ ヴェ ヴォ are searched as バ ビ ベ ボ, ヴュ as ビユ, ヴ alone as ブ (listed
   pairs ヴァ=バ, ヴィ=ビ, ヴ=ブ);
5. 濁音/半濁音 are ignored: ガ → カ, バ パ → ハ, ヒ=ピ … (`_VOICED`);
6. the four-kana pair ヂ=ジ, ズ=ヅ: ヂ folds to シ (with ジ) and ヅ to ス (with ズ). Ignoring
   濁音 alone would also make ヂ=チ and ヅ=ツ; one function cannot do both without making
   チ=シ and ツ=ス for every name, so the other reading is a *second key*: the key functions give
   every ヂ/ヅ both readings (ヂ → シ and チ, ヅ → ス and ツ), the index stores them all and a
   query searches them all. Thus ヂ matches ジ, シ, チ; ジ matches シ, ヂ; チ matches ヂ; but
   チ and シ stay different;
7. small = large (ァィゥェォ ッ ャュョ ヮ ヵヶ and the Ainu small kana ㇰ…ㇿ);
8. ワ=ハ, オ=ヲ (listed pairs), and the obsolete ヰ ヱ as イ エ (ヷヸヹヺ as バビベボ);
9. ヽ/ヾ repeat the kana before them (濁点 is ignored anyway);
10. from the 2nd character of each part (氏, 名), a run of ウ or オ after an オ段 kana is a
    long vowel: the standard searches that ウ as オ, and an オ after an オ段 kana is the same
    long vowel that 「ー」 writes, which is ignored; so both are dropped: サトウ = サトオ =
    サトー = サト, オオノ = オーノ = オノ. ウエダ keeps its ウ (first character). The rule reads
    the folded text, so キョウ → キヨ (ョ is オ段) and トゥ → ト.

Consequences worth knowing: ワタナベ = ハタナヘ, キョウコ = キヨコ, コウノ = コノ. Search
finds more, never fewer; results rank exact before partial. ウ段+ウ (ユウコ/ユーコ) and
エ段+イ (ケイコ/ケーコ) are not folded: the standard does not list them.

A name's parts are folded one by one and joined (the ウ rule restarts at 名), and the index
also stores the fold of the parts run together, so サトウ　オサム is found by サトウ オサム,
サトウオサム and サトオサム alike.

**氏名** (`fold_name`): variation selectors (IVS) dropped, NFKC (compatibility ideographs such as
神 U+FA19 → 神, full-width Latin → ASCII), case-folded, hiragana → katakana, separators and
dashes dropped, 異体字 → one representative (`VARIANT_GROUPS`: a *partial* table of common
name variants; the complete one would come from the 文字情報基盤 MJ tables), and ケ/ヶ/が,
ノ/の/之 between two kanji made equal (一ノ瀬 = 一之瀬, 三ヶ島 = 三ケ島).

**住所** (`fold_address`): as for names, but dashes become ASCII ``-`` (ー only right after a
digit) and kanji numerals become digits only where they count 丁目/番地/番/号 (一丁目 → 1丁目,
三十五番地 → 35番地); everything else, building names included (八重洲, 五十鈴, 二引ビル), is
left alone. 丁目/番地/番/号 stay as they are.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata

# ------------------------------------------------------------------------------ shared

#: Characters that are never data in a key: variation selectors (IVS), zero-width marks.
_INVISIBLE = dict.fromkeys([*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0), 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF])
#: 「ー ― － ‐ ｰ -」 (the standard's list, after NFKC) and the other dashes people type.
DASHES = "ー―‐-‑‒–—−〜~"
#: Between 氏 and 名 (after NFKC, U+3000 is a space and ･ is ・).
SEPARATORS = " \t・="
_HIRA_TO_KATA = {c: c + 0x60 for c in range(0x3041, 0x3097)} | {0x309D: 0x30FD, 0x309E: 0x30FE}
_PRE = {0x309B: 0x3099, 0x309C: 0x309A} | _INVISIBLE  # ゛゜ → combining, so NFKC composes them

#: 異体字 groups, representative first. Partial: common name variants only (see module doc).
VARIANT_GROUPS: tuple[str, ...] = (
    "辺邊邉边",
    "浜濱濵滨",
    "斉齊齋斎",
    "高髙",
    "崎﨑嵜碕",
    "沢澤",
    "島嶋嶌",
    "吉𠮷",
    "藤籐籘䕨",
    "富冨",
    "桜櫻",
    "広廣",
    "国國圀",
    "竜龍",
    "恵惠",
    "関關",
    "徳德",
    "真眞",
    "実實",
    "栄榮",
    "黒黑",
    "会會",
    "条條",
    "蔵藏",
    "渋澁",
    "浅淺",
    "寿壽",
    "万萬",
    "与與",
    "瀬瀨",
    "弥彌",
    "増增",
    "槙槇",
    "柳栁",
    "館舘",
    "野埜",
    "峰峯",
    "桧檜",
    "円圓",
    "亀龜",
    "県縣",
    "塩鹽",
    "鉄鐵",
    "礼禮",
    "晋晉",
    "曽曾",
    "遥遙",
    "芦蘆",
    "穂穗",
    "薗園",
)
VARIANTS: dict[str, str] = {c: group[0] for group in VARIANT_GROUPS for c in group[1:]}

_IDEOGRAPH = "\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003ffff々〆"
# ケ/ヶ/が and ノ/の/之 read the same inside place and family names (after hiragana → katakana).
_KE = re.compile(f"(?<=[{_IDEOGRAPH}])[ケヶカガ](?=[{_IDEOGRAPH}])")
_NO = re.compile(f"(?<=[{_IDEOGRAPH}])[ノ之](?=[{_IDEOGRAPH}])")


def _between_kanji(s: str) -> str:
    if "ケ" in s or "ヶ" in s or "カ" in s or "ガ" in s:
        s = _KE.sub("ケ", s)
    if "ノ" in s or "之" in s:
        s = _NO.sub("ノ", s)
    return s


def _nfkc(s: str) -> str:
    return unicodedata.normalize("NFKC", s.translate(_PRE))


# ------------------------------------------------------------------------------ フリガナ

_VOICED = (
    "ガカ ギキ グク ゲケ ゴコ ザサ ジシ ズス ゼセ ゾソ ダタ デテ ドト バハ パハ ビヒ ピヒ ブフ プフ ベヘ ペヘ ボホ ポホ"
)
_SMALL = "ァア ィイ ゥウ ェエ ォオ ッツ ャヤ ュユ ョヨ ヮハ ヵカ ヶケ"
_SMALL_AINU = "ㇰク ㇱシ ㇲス ㇳト ㇴヌ ㇵハ ㇶヒ ㇷフ ㇸヘ ㇹホ ㇺム ㇻラ ㇼリ ㇽル ㇾレ ㇿロ"
_SAME = "ワハ ヲオ ヰイ ヱエ ヷハ ヸヒ ヹヘ ヺホ"
#: ヂ/ヅ: the primary key reads them as ジ/ズ, the second key as チ/ツ (rule 6).
YOTSUGANA = {"ヂ": ("シ", "チ"), "ヅ": ("ス", "ツ")}


def _pairs(*specs: str) -> dict[int, int]:
    return {ord(p[0]): ord(p[1]) for spec in specs for p in spec.split()}


_KATA = str.maketrans({**{chr(k): chr(v) for k, v in _HIRA_TO_KATA.items()}, **dict.fromkeys(DASHES, "")})
_KATA.update({ord(c): " " for c in SEPARATORS})
#: The fold table proper (rules 5–8).
KANA_FOLD: dict[int, int] = _pairs(_VOICED, _SMALL, _SMALL_AINU, _SAME) | {
    ord(k): ord(v[0]) for k, v in YOTSUGANA.items()
}
_VU = re.compile("ヴ([ァィェォュ]?)")
_VU_AS = {"ァ": "ハ", "ィ": "ヒ", "ェ": "ヘ", "ォ": "ホ", "ュ": "ヒユ", "": "フ"}
_REPEAT = re.compile("(.)([ヽヾ]+)")
#: オ段 after folding (ゴ, ヲ, ョ, ォ … are already コ, オ, ヨ, オ).
O_ROW = "オコソトノホモヨロ"
_LONG = re.compile(f"(?<=[{O_ROW}])[ウオ]+")
#: A name with more ヂ/ヅ than this gets both readings for the first ones only (2**3 keys).
_MAX_YOTSUGANA = 3


def _katakana(s: str) -> str:
    """Rules 1–3: NFKC, katakana, no dashes, parts separated by single spaces."""
    return _nfkc(s).translate(_KATA)


def _fold_parts(kata: str) -> list[str]:
    """Rules 4–10 on katakana text; one folded string per part."""
    if "ヴ" in kata:
        kata = _VU.sub(lambda m: _VU_AS[m.group(1)], kata)
    s = kata.translate(KANA_FOLD)
    if "ヽ" in s or "ヾ" in s:
        s = _REPEAT.sub(lambda m: m.group(1) * (1 + len(m.group(2))), s)
    return [_LONG.sub("", p) for p in s.split()]


def fold_kana(s: str) -> str:
    """The search key of a フリガナ (or a kana query): its parts folded and joined (module doc)."""
    return "".join(_fold_parts(_katakana(s)))


def _readings(kata: str) -> list[str]:
    """`kata` with every ヂ/ヅ spelled each way (rule 6); the primary reading first."""
    spots = [i for i, c in enumerate(kata) if c in YOTSUGANA][:_MAX_YOTSUGANA]
    if not spots:
        return [kata]
    out = []
    for choice in itertools.product((0, 1), repeat=len(spots)):
        chars = list(kata)
        for i, pick in zip(spots, choice, strict=True):
            chars[i] = YOTSUGANA[kata[i]][pick]
        out.append("".join(chars))
    return out


def kana_query_keys(s: str) -> tuple[str, ...]:
    """The keys a kana query searches: one per ヂ/ヅ reading; the spaces typed mark where 名 begins."""
    keys = dict.fromkeys("".join(_fold_parts(k)) for k in _readings(_katakana(s)))
    keys.pop("", None)
    return tuple(keys)


_RAW_SEPARATORS = re.compile("[ \u3000\t・･=＝]+")


@functools.lru_cache(maxsize=1 << 16)
def _part_readings(raw: str) -> tuple[tuple[str, ...], ...]:
    """Each reading of one part as typed (ヂ/ヅ both ways), folded into its sub-parts.

    Names repeat (a million residents share a few thousand 氏 and 名), so this is cached.
    """
    return tuple(tuple(_fold_parts(k)) for k in _readings(_katakana(raw)))


def kana_index_readings(s: str) -> list[tuple[str, ...]]:
    """Each reading of a stored フリガナ (ヂ/ヅ both ways) as its folded parts (氏, 名, …)."""
    per_part = [_part_readings(r) for r in _RAW_SEPARATORS.split(s) if r]
    if all(len(r) == 1 for r in per_part):  # no ヂ/ヅ: one reading
        return [tuple(p for r in per_part for p in r[0] if p)]
    combos = itertools.islice(itertools.product(*per_part), 1 << _MAX_YOTSUGANA)
    return [tuple(p for reading in combo for p in reading if p) for combo in combos]


def run_together(folded: str) -> str:
    """Folded parts joined without a space, with the ウ rule applied where 名 begins (サトオサム → サトサム).

    Equal to folding the name typed without its space: within each part the rule has already run.
    """
    return _LONG.sub("", folded)


def is_kana_text(s: str) -> bool:
    """True if `s` is kana only (hiragana, katakana, half-width, with spaces and dashes)."""
    kata = _katakana(s).replace(" ", "")
    return bool(kata) and all("\u30a1" <= c <= "\u30ff" or "\u31f0" <= c <= "\u31ff" for c in kata)


# ------------------------------------------------------------------------------ 氏名

_NAME = str.maketrans(
    {
        **{chr(k): chr(v) for k, v in _HIRA_TO_KATA.items()},
        **VARIANTS,
        **dict.fromkeys(DASHES.replace("ー", ""), ""),
        **dict.fromkeys(SEPARATORS, " "),
    }
)


@functools.lru_cache(maxsize=1 << 16)
def _name_part(raw: str) -> tuple[str, ...]:
    return tuple(_between_kanji(p) for p in _nfkc(raw).casefold().translate(_NAME).split())


def _name_parts(s: str) -> list[str]:
    return [p for raw in _RAW_SEPARATORS.split(s) if raw for p in _name_part(raw)]


def fold_name(s: str) -> str:
    """The search key of a 氏名 (漢字 or alphabet) or of a name query (module doc)."""
    return "".join(_name_parts(s))


def name_index_parts(s: str) -> tuple[str, ...]:
    """The folded parts (氏, 名, …) of a stored 氏名."""
    return tuple(p for p in _name_parts(s) if p)


# ------------------------------------------------------------------------------ 住所

_ADDRESS = str.maketrans(
    {
        **{chr(k): chr(v) for k, v in _HIRA_TO_KATA.items()},
        **VARIANTS,
        **dict.fromkeys(DASHES.replace("ー", "").replace("〜", "").replace("~", ""), "-"),
        **dict.fromkeys(SEPARATORS, ""),
        "ヶ": "ケ",
        "ヵ": "カ",
    }
)
_DIGIT = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0}
_UNIT = {"十": 10, "百": 100, "千": 1000}
_COUNTED = re.compile("([〇零一二三四五六七八九十百千]+)(?=丁目|番地|番(?![町館街丁])|号)")
_DIGIT_DASH = re.compile(r"(?<=\d)ー")


def kanji_number(t: str) -> int:
    """一 → 1, 二十三 → 23, 百五 → 105, 一〇 → 10 (kanji numerals, positional or with 十百千)."""
    if not any(c in _UNIT for c in t):
        return int("".join(str(_DIGIT[c]) for c in t))
    total = digit = 0
    for c in t:
        if c in _UNIT:
            total += (digit or 1) * _UNIT[c]
            digit = 0
        else:
            digit = digit * 10 + _DIGIT[c]
    return total + digit


@functools.lru_cache(maxsize=1 << 16)
def fold_address(s: str) -> str:
    """The search key of a 住所/番地/方書 text or of an address query (module doc)."""
    s = _nfkc(s).casefold().translate(_ADDRESS)
    s = _COUNTED.sub(lambda m: str(kanji_number(m.group(1))), s)
    if "ー" in s:
        s = _DIGIT_DASH.sub("-", s)
    return _between_kanji(s)
