"""Exceptions raised by edgenode.

The tree::

    EdgenodeError                   root: everything edgenode raises on purpose
    ├── ConfigError                 a settings file, variable or flag is missing or invalid
    ├── RecordError                 a resident/staff/restriction record breaks the model
    ├── InputError                  a file crossing a boundary (apply file, snapshot) is refused
    ├── WireError                   feed batch / snapshot bytes are corrupt, forged or hostile
    │   └── SchemaTooNew            the hub speaks a newer schema than this node knows
    ├── StoreError                  a local SQLite store is missing or in an unexpected state
    │   └── StoreUnavailable        the hub's PostgreSQL cannot be reached (try again later)
    └── SyncError                   a sync step failed; knows if it is retryable, has a hint
        ├── HubUnreachable          connection refused, timeout, DNS, TLS: the WAN or hub is down
        ├── HubRejected             the hub answered with a refusal (401, 403, 4xx)
        ├── CursorTooOld            the hub no longer keeps the log after our cursor (410)
        └── SnapshotGone            the snapshot being fetched is no longer offered by the source
"""

from __future__ import annotations


class EdgenodeError(Exception):
    """Root of every error edgenode raises on purpose."""

    hint: str = ""


class ConfigError(EdgenodeError):
    """Raised when settings (file, environment, flags) are missing or invalid."""


class RecordError(EdgenodeError):
    """Raised when a record does not fit the resident model; the message names the item."""


class InputError(EdgenodeError):
    """Raised when an input file is refused as a whole; the message says where and why."""


class WireError(EdgenodeError):
    """Raised when feed or snapshot bytes fail a check (magic, size, hash, signature, chain)."""


class SchemaTooNew(WireError):
    """Raised when the hub's schema version is newer than this software understands."""

    def __init__(self, got: int, known: int) -> None:
        super().__init__(
            f"the hub sends schema version {got}, this node knows up to {known}: "
            f"upgrade edgenode to a release that supports schema {got}"
        )
        self.got = got
        self.known = known


class StoreError(EdgenodeError):
    """Raised when a local store is missing, locked or in a state we do not expect."""


class StoreUnavailable(StoreError):
    """Raised when the hub's database server cannot be reached; the hub answers 503, retryable."""


class SyncError(EdgenodeError):
    """Raised when a sync step fails; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, hint: str = "") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.hint = hint


class HubUnreachable(SyncError):
    """Raised when the hub cannot be reached or does not answer in time."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True, hint="check the WAN link and the hub's address")


class HubRejected(SyncError):
    """Raised when the hub refuses a request (bad token, wrong tenant, bad request)."""

    def __init__(self, message: str, status: int) -> None:
        hint = {
            401: "the node token is unknown or revoked: issue a new one with `edgenode hub token`",
            403: "the token belongs to another municipality",
        }.get(status, "")
        super().__init__(message, retryable=status >= 500 or status == 429, hint=hint)
        self.status = status


class CursorTooOld(SyncError):
    """Raised when the hub answers 410: our cursor predates its retained change log."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True, hint="the node will re-bootstrap from a snapshot")


class SnapshotGone(SyncError):
    """Raised when a source no longer offers the snapshot a bootstrap was fetching."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True, hint="the bootstrap starts over with the current snapshot")
