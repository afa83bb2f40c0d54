"""Identifiers shared by hub and node: municipality codes and node ids."""

from __future__ import annotations

import re

from edgenode.errors import ConfigError

LG_CODE_RE = re.compile(r"^\d{6}$")
NODE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def valid_lg_code(code: str) -> str:
    """Return `code` if it is a 6-digit 全国地方公共団体コード with a valid check digit."""
    if not LG_CODE_RE.match(code or ""):
        raise ConfigError(f"municipality code must be 6 digits (全国地方公共団体コード): {code!r}")
    # 全国地方公共団体コード: check digit = 11 - (Σ digit×weight(6..2) mod 11), last digit mod 10.
    total = sum(int(d) * w for d, w in zip(code[:5], (6, 5, 4, 3, 2), strict=True))
    check = (11 - total % 11) % 10
    if check != int(code[5]):
        raise ConfigError(f"municipality code {code} has a wrong check digit (expected {check})")
    return code
