"""Exceptions raised while preparing and rendering certificates.

They hang under edgenode's root (`edgenode.errors`)::

    EdgenodeError
    ├── ConfigError            (edgenode.errors) a certificate setting is missing or invalid
    └── CertError              a certificate cannot be issued as asked
        ├── RuleViolation      the request breaks a rule (law, standard, this node's policy)
        ├── MissingGlyph       a character of the certificate is not in the configured fonts
        └── LayoutOverflow     the content does not fit the sheet it was composed for

Every message is Japanese and says what the clerk can do; `reason` / `field` / `char` carry
the parts a UI may want to show separately.
"""

from __future__ import annotations

from edgenode.errors import EdgenodeError


class CertError(EdgenodeError):
    """Root of the errors that stop a certificate from being issued."""


class RuleViolation(CertError):
    """Raised when a request breaks an issuance rule; `reason` is a Japanese sentence for the clerk."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingGlyph(CertError):
    """Raised when a character (or an IVS sequence) is in no configured font: never print a substitute."""

    def __init__(self, field: str, text: str, font: str) -> None:
        self.field = field
        self.text = text  # the character, or base + variation selector
        self.codepoints = " ".join(f"U+{ord(c):04X}" for c in text)
        self.font = font
        kind = "外字 (私用領域) " if any(0xE000 <= ord(c) <= 0xF8FF for c in text) else ""
        super().__init__(
            f"「{field}」の文字 {self.codepoints} ({text}) は{kind}フォント {font} にありません。"
            "代替文字では印刷できないため発行を中止しました。外字フォントの登録を確認してください。"
        )


class LayoutOverflow(CertError):
    """Raised when the rendered PDF has more sheets than composed (文字溢れ, spec 5.8)."""

    def __init__(self, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(
            f"記載事項が用紙に収まりません (文字溢れ: {expected} 枚のはずが {got} 枚)。"
            "長すぎる項目がないか確認してください。"
        )
