"""The hub's Ed25519 signing key and the node's pinned verifier.

The hub signs every feed batch header and snapshot manifest; a node pins the hub's public key
when it is initialised and refuses anything that does not verify against it.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from edgenode.errors import ConfigError, WireError


def key_id(public_b64: str) -> str:
    """Short fingerprint of a public key, for humans comparing keys and for log lines."""
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


class HubKey:
    """The hub's private signing key, kept in a 0600 PEM file under the hub's data folder."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_b64 = base64.b64encode(raw).decode("ascii")
        self.key_id = key_id(self.public_b64)

    @classmethod
    def load_or_create(cls, path: Path) -> HubKey:
        """Load the key at `path`, creating it (mode 0600, written atomically) if absent."""
        if path.exists():
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except ValueError as exc:
                raise ConfigError(f"hub signing key {path.name} is unreadable") from exc
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigError(f"hub signing key {path.name} is not an Ed25519 key")
            return cls(key)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return cls(key)

    def sign(self, data: bytes) -> str:
        """Base64 Ed25519 signature of `data`."""
        return base64.b64encode(self._private.sign(data)).decode("ascii")

    def __repr__(self) -> str:
        return f"HubKey(key_id={self.key_id!r})"


class PinnedVerifier:
    """Verifies signatures against the one hub public key a node has pinned."""

    def __init__(self, public_b64: str) -> None:
        try:
            raw = base64.b64decode(public_b64, validate=True)
            self._key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise ConfigError("the pinned hub public key is not a valid Ed25519 key") from exc
        self.key_id = key_id(public_b64)

    def __call__(self, data: bytes, sig_b64: str) -> None:
        """Raise `WireError` unless `sig_b64` signs `data` under the pinned key."""
        try:
            self._key.verify(base64.b64decode(sig_b64, validate=True), data)
        except (InvalidSignature, ValueError) as exc:
            raise WireError("signature does not verify against the pinned hub key") from exc
