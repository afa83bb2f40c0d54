"""Certificate settings, declared once as data and validated into a frozen `CertConfig`.

Every field carries help text; the ones the domain research could not verify (marked [U] in
jp_municipal_domain.md) also carry `unverified`, saying what to confirm with the municipality.
Those are settings with a sensible default, never a guess buried in code. `describe()` lists
them all for the docs and `edgenode node config show`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edgenode.certs.model import Kind, Layout, Omission, Scope
from edgenode.errors import ConfigError
from edgenode.wareki import DEFAULT_TABLE, EraTable

#: Keys of `certification_texts`: the kind, then the scope or 個人票 for a 住民票の写し.
CERTIFICATION_KEYS = (
    "住民票の写し/世帯全員",
    "住民票の写し/世帯の一部",
    "住民票の写し/個人票",
    "住民票の除票の写し",
    "住民票記載事項証明書",
)
_DEFAULT_CERTIFICATION = {
    "住民票の写し/世帯全員": "この写しは、世帯全員の住民票の原本と相違ないことを証明する。",
    "住民票の写し/世帯の一部": "この写しは、世帯の一部の住民票の原本と相違ないことを証明する。",
    "住民票の写し/個人票": "この写しは、住民票の原本と相違ないことを証明する。",
    "住民票の除票の写し": "この写しは、住民票の除票の原本と相違ないことを証明する。",
    "住民票記載事項証明書": "上記の事項は、住民票の原本と相違ないことを証明する。",
}
_DEFAULT_TITLES = {
    "住民票の写し": "住民票",
    "住民票の除票の写し": "住民票（除票）",
    "住民票記載事項証明書": "住民票記載事項証明書",
}
#: 法12条5項: left out unless the requester asks for them.
DEFAULT_OMISSIONS = (Omission.HEAD_AND_RELATIONSHIP, Omission.HONSEKI, Omission.MY_NUMBER, Omission.JUMINHYO_CODE)
MAX_SEAL_MM = 25.0  # spec 5.6


def certification_key(kind: Kind, scope: Scope, layout: Layout) -> str:
    """The `certification_texts` key of a certificate."""
    if kind is not Kind.COPY:
        return kind.value
    return f"{kind.value}/{'個人票' if layout is Layout.INDIVIDUAL else scope.value}"


@dataclass(frozen=True)
class Deputy:
    """A 職務代理者 who signs from `start` to `end` (inclusive), e.g. 副町長 while the 町長 is away."""

    title: str
    name: str
    start: _dt.date
    end: _dt.date


def _setting(default: Any, help: str, unverified: str = "", **kw: Any) -> Any:
    meta = {"help": help, "unverified": unverified}
    if isinstance(default, dict):
        proxy = MappingProxyType(dict(default))
        return field(default_factory=lambda: proxy, metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def _required(help: str) -> Any:
    return field(metadata={"help": help, "unverified": ""})


@dataclass(frozen=True)
class CertConfig:
    """How this node prints certificates. Build with `from_mapping` (validates) or directly."""

    prefecture: str = _required("都道府県名。職名と一緒に印字する (spec 5.6)。例: 宮崎県")
    municipality: str = _required("市区町村名。例: 門川町")
    mayor_name: str = _required("市区町村長の氏名 (認証者)")
    terminal_name: str = _required("発行端末名 (このノードの node_id)。発行番号に入り、全ノードで一意にする")
    mayor_title: str = _setting("町長", "市区町村長の職名。市なら 市長、区なら 区長")
    deputies: tuple[Deputy, ...] = _setting((), "職務代理者 (title, name, from, to)。期間内の交付日はこの者が認証者")
    deputy_label: str = _setting(
        "職務代理者", "職務代理者の表示語", "第4章の様式での職務代理者の表記 (§2.3 は見本のみ)"
    )
    seal_image: str = _setting("", "職印の画像 (PNG)。黒で最大 25 mm 角に印字する。空なら印字しない")
    seal_size_mm: float = _setting(MAX_SEAL_MM, "職印の一辺 (mm)、25 以下 (spec 5.6)")
    seal_note: str = _setting("この印は黒色です。", "職印の下に添える定型文 (spec 5.6)")
    certification_texts: Mapping[str, str] = _setting(
        _DEFAULT_CERTIFICATION,
        "認証文 (種類・範囲ごと)。キー: " + "、".join(CERTIFICATION_KEYS),
        "標準仕様書 第4章の正式な認証文は未入手 (§2.5, §7-1)。団体の現行様式から設定すること",
    )
    titles: Mapping[str, str] = _setting(_DEFAULT_TITLES, "証明書の表題 (種類ごと)", "第4章の様式の表題 (§7-1)")
    omitted_text: str = _setting("省略", "省略した項目の欄に印字する文字", "第4章の様式で省略欄をどう表すか (§7-1)")
    default_omissions: tuple[Omission, ...] = _setting(
        DEFAULT_OMISSIONS,
        "請求で指定がないときに省略する項目 (法12条5項)",
        "法12条5項の現行条文 (§3.1, §7-2)",
    )
    proxy_may_receive_numbers: bool = _setting(
        False,
        "代理人に個人番号・住民票コード入りの写しをその場で交付してよいか",
        "任意代理人には本人住所へ郵送する運用が多い。団体の運用を確認 (§3.1)",
    )
    fee_per_copy: int = _setting(300, "1通の手数料 (円)", "手数料条例 (§3.2, §7-4)")
    fee_per_extra_page: int = _setting(0, "2枚目以降1枚ごとの加算額 (円)", "手数料条例 (一宮町は 50 円, §2.6)")
    official_use_free: bool = _setting(True, "公用請求は手数料なし", "手数料条例の公用免除 (§3.2)")
    printer_no: int = _setting(1, "発行プリンタ番号 (発行番号に プリンタ001 の形で入る)")
    serial_digits: int = _setting(6, "発行番号の連番の最小桁数", "第4章の発行番号の桁数 (spec 5.5 の例は 3 桁)")
    serial_db: str = _setting("", "発行番号の連番を保存する SQLite ファイル (ノードのデータフォルダ内)")
    font_family: str = _setting("IPAexMincho", "印字に使うフォントのファミリー名 (fc-match で探す)")
    font_files: tuple[str, ...] = _setting((), "フォントファイル (順に使う)。空なら font_family を fc-match で探す")
    paper: str = _setting("A4", "用紙。A4 縦のみ (§2.2)")
    eras: tuple[tuple[str, _dt.date], ...] = _setting((), "元号表に追加する元号 (名前, 開始日) (spec 1.3.6)")

    def __post_init__(self) -> None:
        for name in ("prefecture", "municipality", "mayor_name", "terminal_name", "mayor_title"):
            if not getattr(self, name).strip():
                raise ConfigError(f"証明書の設定 {name} が空です ({name} must be set)")
        if not re.fullmatch(r"\S{1,40}", self.terminal_name):
            raise ConfigError(
                f"terminal_name は空白を含まない 40 文字以内です: {self.terminal_name!r} "
                "(terminal_name must be 1-40 characters without spaces)"
            )
        if not 1 <= self.printer_no <= 999:
            raise ConfigError(f"printer_no は 1〜999 です: {self.printer_no} (printer_no must be 1-999)")
        if not 1 <= self.serial_digits <= 12:
            raise ConfigError("serial_digits は 1〜12 です (serial_digits must be 1-12)")
        if self.fee_per_copy < 0 or self.fee_per_extra_page < 0:
            raise ConfigError("手数料は 0 円以上です (fees must be >= 0)")
        if not 0 < self.seal_size_mm <= MAX_SEAL_MM:
            raise ConfigError(f"seal_size_mm は 0 より大きく 25 以下です: {self.seal_size_mm} (max 25 mm, spec 5.6)")
        if self.paper != "A4":
            raise ConfigError(f"用紙は A4 のみです: {self.paper!r} (only A4 portrait is supported)")
        if self.seal_image:
            p = Path(self.seal_image)
            if not p.is_file():
                raise ConfigError(f"職印の画像がありません: {p} (seal_image not found)")
            with p.open("rb") as f:
                if f.read(8) != b"\x89PNG\r\n\x1a\n":
                    raise ConfigError(f"職印の画像は PNG です: {p} (seal_image must be a PNG)")
        for f_ in self.font_files:
            if not Path(f_).is_file():
                raise ConfigError(f"フォントファイルがありません: {f_} (font file not found)")
        unknown = set(self.certification_texts) - set(CERTIFICATION_KEYS)
        if unknown:
            raise ConfigError(f"certification_texts の不明なキー: {sorted(unknown)} (keys: {CERTIFICATION_KEYS})")
        missing = [k for k in CERTIFICATION_KEYS if not self.certification_texts.get(k, "").strip()]
        if missing:
            raise ConfigError(f"認証文が空です: {missing} (certification text must not be empty)")
        if set(self.titles) != set(_DEFAULT_TITLES) or not all(v.strip() for v in self.titles.values()):
            raise ConfigError(f"titles には {sorted(_DEFAULT_TITLES)} のすべてが必要です")
        ds = sorted(self.deputies, key=lambda d: d.start)
        for d in ds:
            if d.end < d.start or not d.title.strip() or not d.name.strip():
                raise ConfigError(f"職務代理者の設定が不正です: {d} (title, name and from <= to are required)")
        for a, b in itertools.pairwise(ds):
            if b.start <= a.end:
                raise ConfigError(f"職務代理者の期間が重なっています: {a.name} と {b.name} (deputy periods overlap)")
        try:
            self.era_table  # noqa: B018 - builds and checks the table once
        except ValueError as exc:
            raise ConfigError(f"元号の設定が不正です: {exc}") from exc

    @functools.cached_property
    def era_table(self) -> EraTable:
        """The default era table extended with `eras`."""
        table = DEFAULT_TABLE
        for name, start in self.eras:
            table = table.extended(name, start)
        return table

    @property
    def office(self) -> str:
        """「宮崎県門川町長」: 都道府県名 + 市区町村名 + 長 (門川町 + 町長 → 門川町長)."""
        m, t = self.municipality, self.mayor_title
        return self.prefecture + (m + t[1:] if m.endswith(t[0]) else m + t)

    def signer(self, day: _dt.date) -> str:
        """The 認証者 line for a certificate issued on `day`: the mayor, or the deputy of that day."""
        for d in self.deputies:
            if d.start <= day <= d.end:
                return f"{self.office}{self.deputy_label}\u3000{d.title}\u3000{d.name}"
        return f"{self.office}\u3000{self.mayor_name}"

    def font_paths(self) -> tuple[Path, ...]:
        """The font files to print with: `font_files`, else `font_family` found with fc-match."""
        from edgenode.certs.glyphs import find_font_file

        if self.font_files:
            return tuple(Path(f) for f in self.font_files)
        return (find_font_file(self.font_family),)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base_dir: Path | None = None) -> CertConfig:
        """Validate `data` (e.g. the [certs] table of node.toml); relative paths are under `base_dir`."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"証明書の設定に不明な項目があります: {unknown} (unknown certificate settings)")
        kw: dict[str, Any] = {}
        for name, value in data.items():
            kw[name] = _convert(name, str(fields[name].type), value, base_dir)
        missing = [n for n, f in fields.items() if f.default is dataclasses.MISSING and n not in kw and _is_required(f)]
        if missing:
            raise ConfigError(f"証明書の設定が足りません: {missing} (required certificate settings)")
        # A partial table overrides some texts and keeps the defaults of the others.
        if "certification_texts" in kw:
            kw["certification_texts"] = MappingProxyType({**_DEFAULT_CERTIFICATION, **kw["certification_texts"]})
        if "titles" in kw:
            kw["titles"] = MappingProxyType({**_DEFAULT_TITLES, **kw["titles"]})
        return cls(**kw)


def _is_required(f: dataclasses.Field[Any]) -> bool:
    return f.default_factory is dataclasses.MISSING


def _date(name: str, value: Any) -> _dt.date:
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{name}: 日付は YYYY-MM-DD です: {value!r} (dates are YYYY-MM-DD)")


def _convert(name: str, typ: str, value: Any, base_dir: Path | None) -> Any:
    def path(v: Any) -> str:
        if not isinstance(v, str):
            raise ConfigError(f"{name}: パスは文字列です (a path is a string)")
        return str(base_dir / v) if v and base_dir is not None and not Path(v).is_absolute() else v

    if name in ("seal_image", "serial_db"):
        return path(value)
    if name == "font_files":
        if not isinstance(value, list | tuple):
            raise ConfigError("font_files はパスの配列です (font_files is a list of paths)")
        return tuple(path(v) for v in value)
    if name == "deputies":
        if not isinstance(value, list | tuple) or not all(isinstance(d, Mapping) for d in value):
            raise ConfigError("deputies は {title, name, from, to} の配列です (deputies is a list of tables)")
        out = []
        for d in value:
            if set(d) != {"title", "name", "from", "to"}:
                raise ConfigError(f"職務代理者には title, name, from, to が必要です: {dict(d)}")
            out.append(Deputy(str(d["title"]), str(d["name"]), _date("from", d["from"]), _date("to", d["to"])))
        return tuple(out)
    if name == "eras":
        if not isinstance(value, list | tuple) or not all(isinstance(e, Mapping) for e in value):
            raise ConfigError("eras は {name, start} の配列です (eras is a list of tables)")
        eras = tuple((str(e.get("name") or "").strip(), _date("start", e.get("start"))) for e in value)
        if not all(n for n, _ in eras):
            raise ConfigError("元号には name が必要です (every era needs a name)")
        return eras
    if name == "default_omissions":
        if not isinstance(value, list | tuple):
            raise ConfigError("default_omissions は項目名の配列です")
        try:
            return tuple(Omission(v) for v in value)
        except ValueError as exc:
            raise ConfigError(f"default_omissions: {exc}") from exc
    if name in ("certification_texts", "titles"):
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{name} は 文字列の表です ({name} is a table of strings)")
        return dict(value)
    expected = {"str": str, "int": int, "float": float, "bool": bool}[typ]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected:
        raise ConfigError(f"{name} は {typ} です: {value!r} ({name} must be {typ})")
    return value


def describe() -> list[tuple[str, str, str, str]]:
    """(name, default, help, what is unverified) of every certificate setting, for the docs."""
    out = []
    for f in dataclasses.fields(CertConfig):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(dict(f.default_factory()))
        else:
            default = "(必須)"
        out.append((f.name, default, f.metadata["help"], f.metadata["unverified"]))
    return out
