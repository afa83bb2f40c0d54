"""Which characters the certificate fonts can print, and the check that refuses the rest.

A name printed with a fallback font, a substitute or a tofu box is a wrong certificate, so every
character of the document must be in the configured fonts (checked on the font's cmap, before
rendering). An IVS / SVS sequence (base + variation selector) counts only if the first font that
has the base also lists the sequence in its format-14 cmap: that is the font Pango will shape
it with. PUA characters (外字) pass only if a configured 外字 font has them.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

from edgenode.certs.errors import MissingGlyph
from edgenode.certs.model import Document
from edgenode.errors import ConfigError


@dataclass(frozen=True)
class FontCoverage:
    """The characters and variation sequences one font file maps to glyphs."""

    name: str
    path: Path
    chars: frozenset[int]
    sequences: frozenset[tuple[int, int]]  # (base, selector)


def is_variation_selector(cp: int) -> bool:
    """True for VS1–VS16 (U+FE00–FE0F) and the ideographic VS17–VS256 (U+E0100–E01EF)."""
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF


@functools.lru_cache(maxsize=8)
def find_font_file(family: str) -> Path:
    """The file fontconfig uses for `family`; ConfigError if fontconfig would substitute another font.

    Asked once per process (prepare runs for every request; fc-match is a subprocess).
    """
    try:
        out = subprocess.run(
            ["fc-match", "-f", "%{family}\n%{file}", family], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"fc-match でフォントを探せません ({exc}); font_files を設定してください") from exc
    families, _, file = out.partition("\n")
    wanted = family.replace(" ", "").casefold()
    if wanted not in {f.replace(" ", "").casefold() for f in families.split(",")} or not file:
        raise ConfigError(
            f"フォント {family} がインストールされていません (fc-match は {families or '何も'} を返しました)。"
            "fonts-ipaexfont-mincho を入れるか font_files を設定してください"
        )
    return Path(file)


@functools.lru_cache(maxsize=16)
def _load(path: Path, _mtime_ns: int, _size: int) -> FontCoverage:
    font = TTFont(str(path), lazy=True, fontNumber=0)
    try:
        cmap = font["cmap"]
        chars: set[int] = set()
        sequences: set[tuple[int, int]] = set()
        for sub in cmap.tables:
            if sub.format == 14:
                for selector, entries in sub.uvsDict.items():
                    sequences.update((base, selector) for base, _glyph in entries)
            elif sub.isUnicode():
                chars.update(sub.cmap)
        name = font["name"].getBestFamilyName() or path.name
    finally:
        font.close()
    return FontCoverage(str(name), path, frozenset(chars), frozenset(sequences))


def coverage(path: Path) -> FontCoverage:
    """The coverage of the font file at `path`, cached while the file is unchanged."""
    st = path.stat()
    return _load(path.resolve(), st.st_mtime_ns, st.st_size)


def check_text(field: str, text: str, fonts: Sequence[FontCoverage]) -> None:
    """Raise `MissingGlyph` for the first character or sequence of `text` no font can print."""
    names = " / ".join(f.name for f in fonts)
    i, n = 0, len(text)
    while i < n:
        cp = ord(text[i])
        if is_variation_selector(cp):  # a selector with nothing before it
            raise MissingGlyph(field, text[i], names)
        if i + 1 < n and is_variation_selector(ord(text[i + 1])):
            seq = (cp, ord(text[i + 1]))
            first = next((f for f in fonts if cp in f.chars), None)
            if first is None or seq not in first.sequences:
                raise MissingGlyph(field, text[i : i + 2], names)
            i += 2
            continue
        if not any(cp in f.chars for f in fonts):
            raise MissingGlyph(field, text[i], names)
        i += 1


def check_texts(texts: Iterable[tuple[str, str]], font_paths: Sequence[Path]) -> None:
    """`check_text` over (field, text) pairs, each distinct text once."""
    fonts = [coverage(p) for p in font_paths]
    seen: set[str] = set()
    for field, text in texts:
        if text not in seen:
            check_text(field, text, fonts)
            seen.add(text)


def check_glyphs(document: Document, font_paths: Sequence[Path]) -> None:
    """Raise `MissingGlyph` (naming U+XXXX and the field) unless every character of `document` prints."""
    check_texts(document.texts(), font_paths)
