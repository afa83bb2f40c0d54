"""Deterministic synthetic population of one municipality (current 住民記録, 履歴番号 1).

Everything is drawn from one `random.Random(seed)`, so the same arguments give the same
records byte for byte. Names and kana come from Faker's ja_JP pairs (plus a few older,
newer and regional names) so kanji and kana always match. Blank optional items are left
out of the dicts (the model treats missing and "" alike) to keep a million records small.

`HouseholdFactory` is shared with `edgenode.hub.simulate`, which draws 転入 households and
new numbers from it.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import functools
import gc
import itertools
import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from faker.providers.person.ja_JP import Provider as _JaPerson

from edgenode.resident import my_number_check_digit, with_m11
from edgenode.wareki import to_wareki

Record = dict[str, Any]
SP = "\u3000"  # between 氏 and 名 in kanji and kana names

_PREF_NAMES = (
    "北海道 青森県 岩手県 宮城県 秋田県 山形県 福島県 茨城県 栃木県 群馬県 埼玉県 千葉県 東京都 "
    "神奈川県 新潟県 富山県 石川県 福井県 山梨県 長野県 岐阜県 静岡県 愛知県 三重県 滋賀県 京都府 "
    "大阪府 兵庫県 奈良県 和歌山県 鳥取県 島根県 岡山県 広島県 山口県 徳島県 香川県 愛媛県 高知県 "
    "福岡県 佐賀県 長崎県 熊本県 大分県 宮崎県 鹿児島県 沖縄県"
).split()
#: JIS X 0401 code → prefecture name.
PREFECTURES: dict[str, str] = {f"{i:02d}": n for i, n in enumerate(_PREF_NAMES, start=1)}
# First two postal-code digits typical of each prefecture (same order as above).
_POSTAL2 = (
    "04 03 02 98 01 99 96 30 32 37 33 26 10 21 94 93 92 91 40 38 50 41 44 51 52 60 53 65 63 "
    "64 68 69 70 72 74 77 76 79 78 80 84 85 86 87 88 89 90"
).split()
# 町字 of 門川町 (454214), numbered into its real 889-06xx postal area.
_KADOGAWA = (
    "大字門川尾末 大字加草 大字川内 大字庵川 大字西門川 中須東 中須西 南町 東栄町 平城東 平城西 "
    "宮丘 須賀崎 栄ケ丘 上町 本町 旭ケ丘 城ケ丘 五十鈴"
).split()
_ELSEWHERE = (
    "宮崎県宮崎市橘通東一丁目 宮崎県延岡市本町二丁目 宮崎県日向市大字日知屋 宮崎県都城市姫城町 "
    "宮崎県日南市中央通一丁目 鹿児島県鹿児島市山下町 熊本県熊本市中央区手取本町 大分県大分市荷揚町 "
    "福岡県福岡市中央区天神一丁目 福岡県北九州市小倉北区城内 長崎県長崎市魚の町 佐賀県佐賀市栄町 "
    "大阪府大阪市北区中之島一丁目 東京都千代田区千代田 東京都新宿区西新宿二丁目 "
    "愛知県名古屋市中区三の丸三丁目 神奈川県横浜市中区港町一丁目 広島県広島市中区国泰寺町一丁目 "
    "北海道札幌市中央区北一条西二丁目 沖縄県那覇市泉崎一丁目"
).split()


def _pairs(spec: str) -> tuple[tuple[str, str], ...]:
    """'漢字:カナ …' → ((漢字, カナ), …)."""
    return tuple((p.split(":")[0], p.split(":")[1]) for p in spec.split())


def weights(spec: str) -> tuple[tuple[str, int], ...]:
    """'name:weight …' → ((name, weight), …)."""
    return tuple((k, int(w)) for k, w in (p.split(":") for p in spec.split()))


def pick(rng: random.Random, weighted: tuple[tuple[Any, int], ...]) -> Any:
    """Weighted choice over (value, weight) pairs."""
    x = rng.random() * sum(w for _, w in weighted)
    for v, w in weighted:
        x -= w
        if x < 0:
            return v
    return weighted[-1][0]


_F_MALE = tuple((k, kana) for k, kana, _ in _JaPerson.first_name_male_pairs)
_F_FEMALE = tuple((k, kana) for k, kana, _ in _JaPerson.first_name_female_pairs)
_OLD_MALE = _pairs("正雄:マサオ 清:キヨシ 勇:イサム 茂:シゲル 進:ススム 武:タケシ 昭:アキラ 和夫:カズオ 隆:タカシ")
_OLD_FEMALE = _pairs("和子:カズコ 幸子:サチコ 節子:セツコ 恵子:ケイコ 久子:ヒサコ 文子:フミコ 京子:キョウコ")
_OLD_FEMALE += _pairs("美代子:ミヨコ ハル:ハル キヨ:キヨ 澄子:スミコ")
_NEW_MALE = _pairs("蓮:レン 陽翔:ハルト 湊:ミナト 悠真:ユウマ 大和:ヤマト 樹:イツキ")
_NEW_FEMALE = _pairs("陽菜:ヒナ 結菜:ユイナ 凛:リン 芽依:メイ 葵:アオイ さくら:サクラ")
# (born before 1960, 1960–1999, 2000 on) × (男, 女); repeats weight the cohort's own names.
_GIVEN = {
    (0, "男"): _OLD_MALE * 3 + _F_MALE,
    (0, "女"): _OLD_FEMALE * 3 + _F_FEMALE,
    (1, "男"): _F_MALE,
    (1, "女"): _F_FEMALE,
    (2, "男"): _F_MALE + _NEW_MALE * 3,
    (2, "女"): _F_FEMALE + _NEW_FEMALE * 3,
}
_SURNAMES = [((k, kana), float(w)) for (k, kana, _), w in _JaPerson.last_name_pairs.items()]
_REGIONAL = {"45": _pairs("甲斐:カイ 黒木:クロキ 河野:カワノ 日高:ヒダカ 長友:ナガトモ 児玉:コダマ 椎葉:シイバ")}
#: Valid but awkward for byte-exact handling: 髙, 﨑 (U+FA11), 𠮷 (non-BMP), 斉 + IVS U+E0103.
TRICKY_SURNAMES = _pairs("髙橋:タカハシ 山\ufa11:ヤマザキ \U00020bb7田:ヨシダ 斉\U000e0103藤:サイトウ 髙木:タカギ")
_APT_HEAD = "コーポ ハイツ メゾン グランドール サンハイツ ヴィラ シャトー パレス レジデンス".split()
_APT_BODY = "サンライズ グリーン オーシャン ひまわり さくら みどり ひかり リバーサイド".split()
_APT_HALF = "ﾊｲﾂ ｻﾝｼｬｲﾝ|ﾒｿﾞﾝ･ﾄﾞ･ｿﾚｲﾕ|Villa K|RESIDENCE-88|ｺｰﾎﾟ ｱｵｿﾞﾗ".split("|")
# Per nationality: surnames, male and female given names as 'KANJI=ALPHA:カナ' or 'ALPHA:カナ';
# '_' is a space inside one part.
_FOREIGN_SPEC = """
ベトナム
NGUYEN:グエン TRAN:チャン LE:レ PHAM:ファム HOANG:ホアン VU:ヴー DANG:ダン BUI:ブイ
VAN_MINH:ヴァン_ミン VAN_HUNG:ヴァン_フン VAN_NAM:ヴァン_ナム DUC_ANH:ドゥック_アイン
THI_LAN:ティ_ラン THI_HOA:ティ_ホア THI_MAI:ティ_マイ THI_HUONG:ティ_フオン THU_TRANG:トゥ_チャン
中国
王=WANG:ワン 李=LI:リ 張=ZHANG:チャン 劉=LIU:リュウ 陳=CHEN:チェン 楊=YANG:ヤン
偉=WEI:ウェイ 強=QIANG:チアン 軍=JUN:ジュン 磊=LEI:レイ
芳=FANG:ファン 麗=LI:リー 静=JING:ジン 敏=MIN:ミン
韓国
金=KIM:キム 李=LEE:イ 朴=PARK:パク 崔=CHOI:チェ
成浩=SEONGHO:ソンホ 英洙=YOUNGSOO:ヨンス 正一=JEONGIL:チョンイル
英子=YOUNGJA:ヨンジャ 順子=SOONJA:スンジャ 美淑=MISOOK:ミスク
フィリピン
SANTOS:サントス REYES:レイエス CRUZ:クルス BAUTISTA:バウティスタ GARCIA:ガルシア
JOHN_PAUL:ジョン_ポール MARK:マーク JOSE:ホセ RAMON:ラモン
MARIA_CRISTINA:マリア_クリスティーナ ANGELICA:アンジェリカ JOY:ジョイ ROSE_ANN:ローズ_アン
ブラジル
SILVA:シルバ OLIVEIRA:オリベイラ SOUZA:ソウザ PEREIRA:ペレイラ TANAKA:タナカ
JOAO:ジョアン PEDRO:ペドロ LUCAS:ルーカス CARLOS:カルロス
ANA:アナ JULIANA:ジュリアナ FERNANDA:フェルナンダ
ネパール
GURUNG:グルン THAPA:タパ SHRESTHA:シュレスタ RAI:ライ TAMANG:タマン
RAM:ラム BISHAL:ビシャル SURESH:スレシュ
SITA:シータ GITA:ギータ ANJALI:アンジャリ
インドネシア
RAHAYU:ラハユ SAPUTRA:サプトラ HIDAYAT:ヒダヤット WIJAYA:ウィジャヤ
AHMAD:アフマド BUDI:ブディ RIZKI:リズキ
SITI:シティ DEWI:デウィ PUTRI:プトリ
"""
_NamePart = tuple[str, str, str]  # (kanji or '', ALPHA, カナ)


def _parts(line: str) -> tuple[_NamePart, ...]:
    out = []
    for p in line.split():
        kanji, _, rest = p.rpartition("=")
        alpha, kana = rest.split(":")
        out.append((kanji, alpha.replace("_", " "), kana.replace("_", SP)))
    return tuple(out)


_L = _FOREIGN_SPEC.strip().splitlines()
_FOREIGN = {_L[i]: (_parts(_L[i + 1]), _parts(_L[i + 2]), _parts(_L[i + 3])) for i in range(0, len(_L), 4)}
_WORKER_NATS = weights("ベトナム:45 インドネシア:18 フィリピン:12 中国:14 ネパール:8")
_FAMILY_NATS = weights("フィリピン:30 ブラジル:20 中国:25 ネパール:15 ベトナム:10")
_WORKER_STATUS = _pairs(
    "技能実習第1号ロ:1年 技能実習第2号ロ:1年 技能実習第2号ロ:2年 特定技能1号:1年 特定技能1号:6月 "
    "技術・人文知識・国際業務:3年 技術・人文知識・国際業務:5年 留学:1年3月 留学:2年"
)
_PERIOD_DAYS = {"6月": 182, "1年": 365, "1年3月": 456, "2年": 730, "3年": 1095, "5年": 1826}
#: 外国人住民 entered the 住民基本台帳 on this day (改正法施行).
FOREIGN_REGISTRY_START = _dt.date(2012, 7, 9)
#: 世帯員の並び順: 世帯主, 配偶者, 子, 子の配偶者, 子の子, 父母, 兄弟姉妹, other kin (7), 縁故者, 同居人.
ORDER_RANK = dict(
    weights("世帯主:0 妻:1 夫:1 子:2 子の妻:3 子の夫:3 子の子:4 父:5 母:5 兄:6 姉:6 弟:6 妹:6 縁故者:8 同居人:9")
)
_JP_KINDS = weights(
    "single_old:15 single_young:12 couple_old:19 couple_mid:9 couple_young:3 family:16 single_parent:4 "
    "three_gen_up:5 three_gen_down:5 old_with_child:7 siblings:1"
)
_OLD_KINDS = ("single_old", "couple_old", "three_gen_down", "old_with_child", "siblings")
_APT_SHARE = {"single_young": 0.55, "couple_young": 0.5, "family": 0.2, "single_parent": 0.45, "couple_mid": 0.08}
_FOREIGN_KINDS = weights("foreign_worker:62 foreign_family:28 foreign_zainichi:10")
_MARRIED_IN = ("妻", "夫", "子の妻", "子の夫", "母")  # in a long-standing family these moved in at marriage


@functools.cache
def wareki(day: _dt.date) -> str:
    """Cached `to_wareki` (a population repeats the same ~40,000 days)."""
    return to_wareki(day)


def seireki(day: _dt.date) -> str:
    """西暦 display used for 外国人住民 (1990年4月3日)."""
    return f"{day.year}年{day.month}月{day.day}日"


def order_rank(rel: str) -> int:
    """Sort rank of a 続柄 in the household."""
    return ORDER_RANK.get(rel, 7)


@dataclass(frozen=True)
class Town:
    """One 町字 of the municipality with its 3-digit code and postal code."""

    name: str
    code: str
    postal: str


@functools.lru_cache(maxsize=64)
def municipality_towns(lg_code: str, municipality: str) -> tuple[Town, ...]:
    """The 町字 of a municipality: built in for 門川町, else synthesized from the code."""
    if len(lg_code) != 6 or not lg_code.isdigit() or lg_code[:2] not in PREFECTURES:
        raise ValueError(f"団体コードが不正です: {lg_code!r}")
    if lg_code == "454214":
        return tuple(Town(n, f"{i:03d}", f"889-06{i:02d}") for i, n in enumerate(_KADOGAWA, start=1))
    r = random.Random(f"towns:{lg_code}")
    heads, tails = "東西南北中上下新本大小平高宮松桜若旭緑栄", "町 ケ丘 原 田 野 川 浜 台".split()
    names: list[str] = []
    while len(names) < 14:
        n = ("大字" if r.random() < 0.3 else "") + "".join(r.sample(heads, 2)) + r.choice(tails)
        if n not in names:
            names.append(n)
    p3 = _POSTAL2[int(lg_code[:2]) - 1] + lg_code[4]
    return tuple(Town(n, f"{i:03d}", f"{p3}-{r.randrange(10000):04d}") for i, n in enumerate(names, start=1))


def elsewhere_address(rng: random.Random) -> str:
    """A plausible address outside the municipality (転入前住所, 転出先)."""
    return f"{rng.choice(_ELSEWHERE)}{rng.randint(1, 40)}番{rng.randint(1, 30)}号"


@dataclass(eq=False)
class _M:
    """A household member being built (before numbers and dates are assigned)."""

    rel: str
    sex: str
    birth: _dt.date
    sur: tuple[str, str] = ("", "")
    given: tuple[str, str] = ("", "")
    nat: str = ""  # 国籍 of a 外国人住民, "" for 日本人住民
    koseki: tuple[str, str] = ("", "")  # (本籍, 筆頭者)
    kana: str = ""
    alpha: str = ""
    fsur: _NamePart = ("", "", "")
    fname: str = ""
    status: tuple[str, str] = ("", "")  # (在留資格, 在留期間)
    alias: tuple[str, str] | None = None
    special: bool = False  # 特別永住者

    @property
    def name(self) -> str:
        return self.fname if self.nat else self.sur[0] + SP + self.given[0]


class HouseholdFactory:
    """Makes households and fresh numbers for one municipality from one `random.Random`.

    宛名番号/世帯番号 bodies count up from the given starts; 個人番号, 住民票コード and
    在留カード番号 are random and checked against `taken`, so nothing is issued twice.
    """

    def __init__(
        self,
        rng: random.Random,
        today: _dt.date,
        lg_code: str,
        municipality: str,
        *,
        next_atena: int = 1,
        next_household: int = 5000001,
        taken: Iterable[str] = (),
        buildings: int = 40,
    ) -> None:
        self.rng, self.today, self.lg_code = rng, today, lg_code
        self.towns = municipality_towns(lg_code, municipality)
        pref = PREFECTURES[lg_code[:2]]
        self.prefix = municipality if municipality.startswith(pref) else pref + municipality
        self.next_atena, self.next_household = next_atena, next_household
        self.taken: set[str] = set(taken)
        self.buildings = [self._building(i) for i in range(max(1, buildings))]
        pairs = _SURNAMES + [(p, 60000.0) for p in _REGIONAL.get(lg_code[:2], ())]
        self._sur = [p for p, _ in pairs]
        self._sur_cum = list(itertools.accumulate(w for _, w in pairs))
        self._last_house: tuple[Record, tuple[str, str], float] | None = None  # address, 氏, head's age

    # ---- numbers -------------------------------------------------------------------------
    def atena(self) -> str:
        """Next 宛名番号 (7-digit body + M11W2-7 check digit)."""
        self.next_atena += 1
        return with_m11(f"{self.next_atena - 1:07d}")

    def household_no(self) -> str:
        """Next 世帯番号."""
        self.next_household += 1
        return with_m11(f"{self.next_household - 1:07d}")

    def _unused(self, make: Callable[[], str]) -> str:
        while (v := make()) in self.taken:
            pass
        self.taken.add(v)
        return v

    def my_number(self) -> str:
        """An unused 12-digit 個人番号 with a valid check digit."""
        rnd = self.rng.random

        def make() -> str:
            body = f"{int(rnd() * 1e11):011d}"
            return body + str(my_number_check_digit(body))

        return self._unused(make)

    def juminhyo_code(self) -> str:
        """An unused 11-digit 住民票コード."""
        rnd = self.rng.random
        return self._unused(lambda: str(10**10 + int(rnd() * 9e10)))

    def card_no(self) -> str:
        """An unused 在留カード等番号 like AB12345678CD."""
        r, up = self.rng, string.ascii_uppercase
        return self._unused(
            lambda: "".join(r.choices(up, k=2)) + f"{r.randrange(10**8):08d}" + "".join(r.choices(up, k=2))
        )

    # ---- names and places ----------------------------------------------------------------
    def surname(self) -> tuple[str, str]:
        """A (氏, カナ) pair weighted like Japan, rarely a tricky variant spelling."""
        r = self.rng
        if r.random() < 0.004:
            return r.choice(TRICKY_SURNAMES)
        return self._sur[bisect.bisect(self._sur_cum, r.random() * self._sur_cum[-1])]

    def given(self, sex: str, birth: _dt.date) -> tuple[str, str]:
        """A (名, カナ) pair fitting the birth cohort."""
        pool = _GIVEN[(0 if birth.year < 1960 else 1 if birth.year < 2000 else 2, sex)]
        return pool[int(self.rng.random() * len(pool))]

    def birth(self, age: float, ref: _dt.date | None = None) -> _dt.date:
        """A birth date giving `age` (whole years) on `ref` (default today)."""
        days = int((int(max(0.0, age)) + self.rng.random()) * 365.2425)
        return _dt.date.fromordinal(max((ref or self.today).toordinal() - days, 684596))  # ≥ 1875

    def _building(self, i: int) -> tuple[str, Town, str]:
        r = random.Random(f"bldg:{self.lg_code}:{i}")  # the same buildings for every seed
        town = r.choice(self.towns)
        if r.random() < 0.06:
            name = r.choice(_APT_HALF)
        else:
            name = r.choice(_APT_HEAD) + r.choice((r.choice(_APT_BODY), town.name.removeprefix("大字")[-2:]))
            name += r.choice(("", "", " A棟", " Ⅱ", "弐番館", "-B"))
        return name, town, f"{r.randint(1, 2999)}番地{r.randint(1, 20)}"

    def address(self, apartment: bool = False) -> Record:
        """Address items of a dwelling in the municipality (住所, 番地, 方書, codes)."""
        r = self.rng
        if apartment:
            name, town, banchi = r.choice(self.buildings)
            katagaki = f"{name} {1 + int(r.random() * 4)}{1 + int(r.random() * 12):02d}" + r.choice(("号", "号室", ""))
        else:
            town, b, katagaki = r.choice(self.towns), 1 + int(r.random() * 3999), ""
            banchi = f"{b}番地{1 + int(r.random() * 40)}" if r.random() < 0.6 else f"{b}番地"
        rec = {"address": self.prefix + town.name, "banchi": banchi, "katagaki": katagaki}
        rec.update(address_code=self.lg_code[:5] + town.code + "000", postal_code=town.postal)
        if not katagaki:
            del rec["katagaki"]
        return rec

    def honseki(self, local: float) -> str:
        """A 本籍: in this municipality with probability `local`, else elsewhere."""
        r = self.rng
        if r.random() < local:
            return f"{self.prefix}{r.choice(self.towns).name}{r.randint(1, 3999)}番地"
        return f"{r.choice(_ELSEWHERE)}{r.randint(1, 60)}番地"

    # ---- households ----------------------------------------------------------------------
    def household(self, kind: str | None = None, arrived: _dt.date | None = None, abroad: bool = False) -> list[Record]:
        """One household's records; `kind` None draws one (about 4 % of households foreign).

        `arrived` None lets the factory choose between long-standing and moved-in families;
        a date makes everyone born by then a 転入 of that day (`abroad`: 国外転入).
        """
        if kind is None:
            kind = "foreign" if self.rng.random() < 0.04 else pick(self.rng, _JP_KINDS)
        if kind.startswith("foreign"):
            return self._foreign(kind, arrived, abroad)
        return self._japanese(kind, arrived)

    def _japanese(self, kind: str, arrived: _dt.date | None) -> list[Record]:
        r, ref = self.rng, arrived or self.today
        # Now and then an old couple lives as its own 世帯 at their child's address (二世帯).
        twin = self._last_house if kind in ("single_old", "couple_old") and r.random() < 0.05 else None
        sur = twin[1] if twin else self.surname()
        parent_age = twin[2] + r.randint(24, 34) if twin else 0.0
        if twin:
            self._last_house = None
        ms: list[_M] = []

        def add(rel: str, sex: str, age: float, s: tuple[str, str] = sur) -> _M:
            bd = self.birth(min(age, 101), ref)
            g = self.given(sex, bd)
            for _ in range(3):  # no two in one family share a 名
                if all(g[0] != x.given[0] for x in ms):
                    break
                g = self.given(sex, bd)
            ms.append(_M(rel, sex, bd, s, g))
            return ms[-1]

        def couple(age: float, foreign_ok: bool = False) -> None:
            wife_age = max(18.0, age - r.randint(-2, 5))
            if r.random() < 0.04:  # the wife is 世帯主
                add("世帯主", "女", wife_age)
                add("夫", "男", age)
                return
            add("世帯主", "男", age)
            if foreign_ok and r.random() < 0.02:
                ms.append(self._foreign_wife(wife_age, ref))
            else:
                add("妻", "女", wife_age)

        def kids(mother_age: float, count: int, rel: str = "子") -> None:
            for _ in range(count):
                if (age := mother_age - r.uniform(22, 42)) >= 0:
                    add(rel, r.choice("男女"), min(age, 30))

        def head_or_couple(age: float, p_couple: float, p_female: float) -> None:
            if r.random() < p_couple:
                couple(age)
            else:
                add("世帯主", "女" if r.random() < p_female else "男", age)

        if kind == "single_old":
            head_or_couple(min(99, parent_age) or r.triangular(62, 99, 80), 0, 0.7)
        elif kind == "single_young":
            head_or_couple(r.triangular(18, 64, 30), 0, 0.4)
        elif kind.startswith("couple_"):
            lo, hi, mode = {"couple_old": (62, 95, 73), "couple_mid": (45, 69, 61), "couple_young": (22, 39, 30)}[kind]
            couple(min(95, parent_age) or r.triangular(lo, hi, mode), kind != "couple_old")
        elif kind == "family":
            couple(age := r.triangular(28, 62, 45), True)
            kids(age - r.randint(-2, 5), pick(r, ((1, 35), (2, 45), (3, 17), (4, 3))))
        elif kind == "single_parent":
            head_or_couple(age := r.triangular(25, 55, 40), 0, 0.85)
            kids(age, r.randint(1, 2))
        elif kind == "three_gen_up":
            couple(age := r.triangular(38, 62, 52))
            kids(age - 2, r.randint(0, 3))
            both, pa = r.random(), age + r.randint(24, 34)
            if both < 0.9:
                add("母", "女", pa - r.randint(0, 4))
            if both > 0.35:
                add("父", "男", pa)
        elif kind == "three_gen_down":
            head_or_couple(age := r.triangular(58, 88, 72), 0.8, 0.5)
            add("子", "男", son := max(22, age - r.randint(24, 34)))
            if r.random() < 0.9:
                add("子の妻", "女", son - r.randint(-2, 4))
                kids(son - 2, r.randint(0, 3), "子の子")
            if r.random() < 0.15:
                add("子", "女", son - r.randint(1, 6))
        elif kind == "old_with_child":
            head_or_couple(age := r.triangular(62, 92, 76), 0.6, 0.65)
            add("子", r.choice("男女"), max(25, age - r.randint(25, 35)))
        else:  # siblings
            head_or_couple(age := r.triangular(45, 85, 68), 0, 0.5)
            d, sex = r.choice((-1, 1)) * r.randint(1, 8), r.choice("男女")
            add(("兄" if d > 0 else "弟") if sex == "男" else ("姉" if d > 0 else "妹"), sex, age + d)
        if r.random() < 0.015:
            if r.random() < 0.5:
                add("同居人", r.choice("男女"), r.triangular(20, 80, 45), self.surname())
            else:
                add("縁故者", r.choice("男女"), r.uniform(15, 50))
        self._koseki(ms, kind)
        apt = r.random() < _APT_SHARE.get(kind, 0.03)
        addr = twin[0] if twin else self.address(apt)
        if not apt and kind not in _OLD_KINDS:
            self._last_house = (addr, sur, (self.today - ms[0].birth).days / 365.2425)
        if arrived is None and r.random() < (0.2 if kind in _OLD_KINDS else 0.65):
            head_birth = min(m.birth for m in ms if m.rel in ("世帯主", "妻", "夫"))
            span = max(30, min(40 * 365, (self.today - head_birth).days - 18 * 365))
            arrived = self.today - _dt.timedelta(days=max(1, int(r.random() ** 1.5 * span)))
        return self._emit(ms, addr, arrived, elsewhere_address(r) if arrived else "")

    def _koseki(self, ms: list[_M], kind: str) -> None:
        """本籍/筆頭者: a couple shares the husband's 戸籍, an unmarried adult stays in the father's."""
        r, head = self.rng, ms[0]

        def man(m: _M) -> str:  # a father or late husband who is not in the household
            return m.sur[0] + SP + self.given("男", m.birth - _dt.timedelta(days=10000))[0]

        husband = next((m for m in ms if m.sex == "男" and m.rel in ("世帯主", "夫") and not m.nat), None)
        if any(m.rel in ("妻", "夫") for m in ms):
            keeper = husband.name if husband else head.name
        elif kind == "single_old" and head.sex == "女" and r.random() < 0.85:
            keeper = man(head)
        elif kind in ("single_young", "siblings") and (head.birth.year > self.today.year - 32 or r.random() < 0.5):
            keeper = man(head)
        else:
            keeper = head.name
        main = parents = sons = (self.honseki(0.5), keeper)
        if any(m.rel in ("父", "母") for m in ms):
            dad = next((m.name for m in ms if m.rel == "父"), None)
            parents = (main[0] if r.random() < 0.6 else self.honseki(0.6), dad or man(head))
        son = (
            next((m for m in ms if m.rel == "子" and m.sex == "男"), None)
            if any(m.rel == "子の妻" for m in ms)
            else None
        )
        if son is not None:
            sons = (main[0] if r.random() < 0.7 else self.honseki(0.5), son.name)
        for m in ms:
            if m.rel in ("父", "母"):
                m.koseki = parents
            elif m.rel in ("子の妻", "子の子") or m is son:
                m.koseki = sons
            elif m.rel in ("同居人", "縁故者"):
                m.koseki = (self.honseki(0.3), man(m))
            elif not m.nat:
                m.koseki = main

    def _foreigner(self, rel: str, sex: str, birth: _dt.date, nat: str, sur: _NamePart | None = None) -> _M:
        r = self.rng
        surs, males, females = _FOREIGN[nat]
        s, g = sur or r.choice(surs), r.choice(males if sex == "男" else females)
        m = _M(rel, sex, birth, nat=nat, fsur=s, alpha=f"{s[1]} {g[1]}", kana=s[2] + SP + g[2])
        if nat == "インドネシア" and r.random() < 0.1:
            m.alpha, m.kana = g[1], g[2]  # a single name, as in the passport
        m.fname = s[0] + SP + g[0] if s[0] and g[0] else m.alpha
        return m

    def _foreign_wife(self, age: float, ref: _dt.date) -> _M:
        r = self.rng
        m = self._foreigner("妻", "女", self.birth(age, ref), pick(r, weights("フィリピン:50 中国:35 ベトナム:15")))
        m.status = ("永住者", "") if r.random() < 0.4 else ("日本人の配偶者等", r.choice(("1年", "3年", "5年")))
        return m

    def _foreign(self, kind: str, arrived: _dt.date | None, abroad: bool) -> list[Record]:
        r, ref = self.rng, arrived or self.today
        sub = kind if kind != "foreign" else pick(r, _FOREIGN_KINDS)
        ms: list[_M] = []
        if sub == "foreign_worker":
            sex, age = "男" if r.random() < 0.6 else "女", r.triangular(19, 38, 24)
            ms.append(self._foreigner("世帯主", sex, self.birth(age, ref), pick(r, _WORKER_NATS)))
            ms[0].status = r.choice(_WORKER_STATUS)
        elif sub == "foreign_family":
            nat = pick(r, _FAMILY_NATS)
            main, spouse = {"ブラジル": ("定住者", "定住者"), "ネパール": ("技能", "家族滞在")}.get(
                nat, ("永住者", "永住者の配偶者等") if r.random() < 0.5 else ("技術・人文知識・国際業務", "家族滞在")
            )
            h = self._foreigner("世帯主", "男", self.birth(age := r.triangular(25, 55, 36), ref), nat)
            h.status = (main, "" if main == "永住者" else r.choice(("3年", "5年")))
            keep = nat in ("中国", "ベトナム")  # wives keep their own surname
            w = self._foreigner("妻", "女", self.birth(age - r.randint(-2, 5), ref), nat, None if keep else h.fsur)
            w.status = (spouse, r.choice(("1年", "3年")))
            ms += [h, w]
            for _ in range(r.randint(0, 2)):
                k = self._foreigner("子", r.choice("男女"), self.birth(r.uniform(0, age - 24), ref), nat, h.fsur)
                k.status = ("永住者", "") if main == "永住者" else w.status
                ms.append(k)
        else:  # 在日韓国人の特別永住者, often with a 通称
            h = self._foreigner("世帯主", r.choice("男女"), self.birth(age := r.triangular(45, 95, 75)), "韓国")
            ms.append(h)
            if r.random() < 0.4:
                rel, sex = ("妻", "女") if h.sex == "男" else ("夫", "男")
                ms.append(self._foreigner(rel, sex, self.birth(age - r.randint(-3, 3)), "韓国"))
            for m in ms:
                m.special = True
                if r.random() < 0.5:
                    s, g = self.surname(), self.given(m.sex, m.birth)
                    m.alias = (s[0] + SP + g[0], s[1] + SP + g[1])
        apt = r.random() < {"foreign_worker": 0.8, "foreign_family": 0.4}.get(sub, 0.05)
        if arrived is None and sub != "foreign_zainichi":
            arrived = self.today - _dt.timedelta(days=r.randint(20, 6 * 365 if sub == "foreign_family" else 1000))
            abroad = r.random() < 0.8
        prev = (ms[0].nat if abroad else elsewhere_address(r)) if arrived else ""
        return self._emit(ms, self.address(apt), arrived, prev, abroad)

    def _emit(
        self, ms: list[_M], addr: Record, arrived: _dt.date | None, prev: str, abroad: bool = False
    ) -> list[Record]:
        """Members → records: numbers, 並び順, 世帯主の氏名, dates, 異動事由 of the latest event."""
        r, today = self.rng, self.today
        ms.sort(key=lambda m: (order_rank(m.rel), m.birth))
        hh = self.household_no()
        head_name = next((m.name for m in ms if m.rel == "世帯主"), "")
        moved = None  # a later 転居 within the municipality
        if r.random() < 0.15:
            first = min(m.birth if arrived is None else max(m.birth, arrived) for m in ms)
            if (today - first).days > 60:
                moved = first + _dt.timedelta(days=r.randint(30, (today - first).days - 1))
        out: list[Record] = []
        for i, m in enumerate(ms, start=1):
            if arrived is not None and m.birth <= arrived:
                since, reason = arrived, "国外転入等" if abroad else "国内転入"
            elif arrived is None and m.rel in _MARRIED_IN and not m.nat:
                since = min(today - _dt.timedelta(days=1), m.birth + _dt.timedelta(days=r.randint(7300, 11700)))
                reason = "国内転入"
            elif m.special and m.birth < FOREIGN_REGISTRY_START:
                since, reason = FOREIGN_REGISTRY_START, "職権記載"
            else:
                since, reason = m.birth, "出生"
            rec: Record = {
                "atena_no": self.atena(),
                "rireki_no": 1,
                "household_no": hh,
                "resident_type": "外国人住民" if m.nat else "日本人住民",
                "status": "住民",
                "name": m.name,
                "kana": m.kana or (m.sur[1] + SP + m.given[1]),
                "birth_date": seireki(m.birth) if m.nat else wareki(m.birth),
                "birth_date_iso": m.birth.isoformat(),
                "sex": m.sex,
                "relationship": m.rel,
                "head_name": head_name,
                "household_order": i,
            }
            rec.update(addr)
            if m.nat:
                rec.update(name_alpha=m.alpha, nationality=m.nat, foreign_resident_since=wareki(since))
                rec["foreign_category"] = "特別永住者" if m.special else "中長期在留者"
                if m.status[0]:
                    rec["residence_status"] = m.status[0]
                if period := m.status[1]:
                    expiry = today + _dt.timedelta(days=r.randint(15, _PERIOD_DAYS[period]))
                    rec.update(residence_period=period, residence_expiry=expiry.isoformat())
                rec["residence_card_no"] = self.card_no()
                if m.alias:
                    rec["alias"], rec["alias_kana"] = m.alias
            else:
                rec["honseki"], rec["hittosha"] = m.koseki
                rec["resident_since"], rec["resident_since_iso"] = wareki(since), since.isoformat()
            if reason in ("国内転入", "国外転入等"):
                rec["prev_address"] = prev if arrived is not None else elsewhere_address(r)
            event, cls = since, "記載"
            if moved is not None and since < moved:
                event, reason, cls = moved, "転居", "修正"
                rec["address_since"], rec["address_since_iso"] = wareki(moved), moved.isoformat()
            rec["juminhyo_code"], rec["my_number"] = self.juminhyo_code(), self.my_number()
            rec.update(change_reason=reason, change_class=cls, change_date=wareki(event))
            rec["change_date_iso"] = rec["processed_on"] = event.isoformat()
            if reason != "職権記載":
                told = min(today, event + _dt.timedelta(days=int(r.random() * 14)))
                rec.update(notified_on=told.isoformat(), notified_date=wareki(told), processed_on=told.isoformat())
            out.append(rec)
        return out


def generate_population(lg_code: str, municipality: str, n: int, seed: int, today: _dt.date) -> list[Record]:
    """`n` current resident records (履歴番号 1) of a plausible Japanese town, deterministic per seed.

    The last household is cut short (trailing members dropped) so exactly `n` come back.
    """
    f = HouseholdFactory(random.Random(seed), today, lg_code, municipality, buildings=max(30, n // 120))
    out: list[Record] = []
    # Millions of new dicts trigger collections that never find garbage; pause the collector.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(out) < n:
            out.extend(f.household()[: n - len(out)])
    finally:
        if was_enabled:
            gc.enable()
    return out
