"""The calls the counter UI and `edgenode node issue` make to get a printable document.

`prepare` applies the rules, composes the document, checks every character against the fonts,
and only then takes sequence numbers from the counter, so a refused request never burns a
発行番号. `draft` does the same without numbers (発行番号 000000) for a preview: render it to
find 文字溢れ before numbers are taken. Rendering is separate (`edgenode.certs.render.Renderer`),
so the clerk can be shown the fee, the notes and a preview before anything prints.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from edgenode.certs.config import CertConfig
from edgenode.certs.glyphs import check_glyphs
from edgenode.certs.model import CertRequest, Document
from edgenode.certs.pages import build_document, certificates_needed
from edgenode.certs.rules import check_request, select_persons
from edgenode.certs.serial import SerialCounter
from edgenode.errors import ConfigError

Records = Sequence[Mapping[str, Any]]


def draft(records_of_household: Records, request: CertRequest, config: CertConfig, issued_at: _dt.datetime) -> Document:
    """The document `prepare` would give, with sequence number 0 everywhere and no number taken.

    Raises `RuleViolation` or `MissingGlyph` exactly as `prepare` does.
    """
    check_request(request)
    persons = select_persons(records_of_household, request)
    zeros = [0] * certificates_needed(request, persons)
    document = build_document(persons, records_of_household, request, config, issued_at, zeros)
    check_glyphs(document, config.font_paths())
    return document


def prepare(
    records_of_household: Records,
    request: CertRequest,
    config: CertConfig,
    issued_at: _dt.datetime,
    *,
    counter: SerialCounter | None = None,
) -> Document:
    """The document for `request` over the latest records of one household (current and 除票).

    Raises `RuleViolation` or `MissingGlyph` before any number is taken. Sequence numbers come
    from `counter`, else from a counter on `config.serial_db`.
    """
    checked = draft(records_of_household, request, config, issued_at)
    needed = len(checked.certificates)
    if counter is None:
        if not config.serial_db:
            raise ConfigError("発行番号の保存先 serial_db が設定されていません (serial_db is not set)")
        with SerialCounter(config.serial_db) as own:
            serials = own.reserve(needed)
    else:
        serials = counter.reserve(needed)
    persons = select_persons(records_of_household, request)
    return build_document(persons, records_of_household, request, config, issued_at, serials)
