"""Resident search at the counter: folded search keys kept beside the replica (標準仕様書 2.1.2/2.1.3).

- `edgenode.search.kana`: folding of フリガナ, 氏名 and 住所 into search keys (the standard's
  equivalence rules as explicit tables);
- `edgenode.search.birth`: 生年月日 queries in 和暦 or 西暦, full or partial, as a date range;
- `edgenode.search.index`: the key tables in the replica file, rebuilt or kept in step with
  the registry inside the caller's transaction;
- `edgenode.search.query`: `SearchQuery` → `Hit` list, and the free-text box's guesser.

Stored names are never normalized: keys are derived copies, the record text stays byte-exact.
"""

from __future__ import annotations

from edgenode.errors import EdgenodeError


class QueryError(EdgenodeError, ValueError):
    """Raised when a search input cannot be understood (a date that is no date, an empty query)."""
