"""The wire format refuses corrupt, forged, replayed and hostile bytes."""

from __future__ import annotations

import os

import pytest
import zstandard

from edgenode import wire
from edgenode.errors import SchemaTooNew, WireError
from edgenode.signing import HubKey, PinnedVerifier

LG = "454214"


@pytest.fixture()
def key(tmp_path) -> HubKey:  # type: ignore[no-untyped-def]
    return HubKey.load_or_create(tmp_path / "k.pem")


def _lines(first: int, n: int) -> tuple[list[bytes], str, str]:
    prev = wire.genesis_chain(LG)
    chain = prev
    lines = []
    for seq in range(first, first + n):
        line = wire.canonical_bytes({"at": "2026-11-27T00:00:00.000000Z", "ops": [], "reason": "転居", "seq": seq})
        chain = wire.next_chain(chain, line)
        lines.append(line)
    return lines, prev, chain


def _batch(key: HubKey, n: int = 3, **extra: object) -> bytes:
    lines, prev, chain = _lines(1, n)
    return wire.encode_batch(
        lg_code=LG, lines=lines, first_seq=1, prev_chain=prev, chain=chain, extra=dict(extra), signer=key.sign
    )


def test_batch_round_trip_verifies_chain_and_signature(key: HubKey) -> None:
    b = wire.decode_batch(
        _batch(key), lg_code=LG, cursor=0, chain=wire.genesis_chain(LG), verifier=PinnedVerifier(key.public_b64)
    )
    assert [tx["seq"] for tx in b.txs] == [1, 2, 3]
    assert b.last_seq == 3


def test_flipped_payload_byte_is_detected(key: HubKey) -> None:
    data = bytearray(_batch(key))
    data[-5] ^= 0x40
    with pytest.raises(WireError, match="corrupt"):
        wire.decode_batch(
            bytes(data), lg_code=LG, cursor=0, chain=wire.genesis_chain(LG), verifier=PinnedVerifier(key.public_b64)
        )


def test_truncated_batch_is_detected(key: HubKey) -> None:
    data = _batch(key)
    with pytest.raises(WireError):
        wire.decode_batch(
            data[:-10], lg_code=LG, cursor=0, chain=wire.genesis_chain(LG), verifier=PinnedVerifier(key.public_b64)
        )


def test_batch_signed_by_another_key_is_refused(key: HubKey, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = HubKey.load_or_create(tmp_path / "other.pem")
    with pytest.raises(WireError, match="signature"):
        wire.decode_batch(
            _batch(other), lg_code=LG, cursor=0, chain=wire.genesis_chain(LG), verifier=PinnedVerifier(key.public_b64)
        )


def test_altered_header_breaks_the_signature(key: HubKey) -> None:
    data = _batch(key, head_seq=3)
    tampered = data.replace(b'"head_seq":3', b'"head_seq":9')
    assert tampered != data
    with pytest.raises(WireError, match="signature"):
        wire.decode_batch(
            tampered, lg_code=LG, cursor=0, chain=wire.genesis_chain(LG), verifier=PinnedVerifier(key.public_b64)
        )


def test_replayed_batch_is_refused_once_applied(key: HubKey) -> None:
    _, _, chain = _lines(1, 3)
    with pytest.raises(WireError, match="expected 4"):
        wire.decode_batch(_batch(key), lg_code=LG, cursor=3, chain=chain, verifier=PinnedVerifier(key.public_b64))


def test_batch_of_another_municipality_is_refused(key: HubKey) -> None:
    with pytest.raises(WireError, match="municipality"):
        wire.decode_batch(
            _batch(key),
            lg_code="011002",
            cursor=0,
            chain=wire.genesis_chain("011002"),
            verifier=PinnedVerifier(key.public_b64),
        )


def test_newer_schema_names_the_version_to_upgrade_to(key: HubKey) -> None:
    _, prev, _ = _lines(1, 1)
    header = {"type": "batch", "schema": wire.SCHEMA_VERSION + 1, "lg_code": LG}
    frame = wire.encode_frame(wire.BATCH_MAGIC, wire.sign_header(header, key.sign), b"")
    with pytest.raises(SchemaTooNew, match=f"schema {wire.SCHEMA_VERSION + 1}"):
        wire.decode_batch(frame, lg_code=LG, cursor=0, chain=prev, verifier=PinnedVerifier(key.public_b64))


def test_decompression_bomb_is_capped(key: HubKey) -> None:
    bomb = zstandard.ZstdCompressor().compress(b"\n" * (wire.MAX_RAW_BATCH + 1))
    header = {
        "type": "batch",
        "schema": 1,
        "lg_code": LG,
        "first_seq": 1,
        "last_seq": 1,
        "count": 1,
        "prev_chain": wire.genesis_chain(LG),
        "chain": "00" * 32,
        "raw_size": 10,
        "payload_len": len(bomb),
        "payload_sha256": wire.sha256_hex(bomb),
    }
    frame = wire.encode_frame(wire.BATCH_MAGIC, wire.sign_header(header, key.sign), bomb)
    with pytest.raises(WireError, match="decompressed"):
        wire.decode_batch(
            frame, lg_code=LG, cursor=0, chain=wire.genesis_chain(LG), verifier=PinnedVerifier(key.public_b64)
        )
    with pytest.raises(WireError, match="limit"):
        wire.decompress_bounded(bomb, wire.MAX_RAW_BATCH + 1, wire.MAX_RAW_BATCH)


def test_snapshot_chunks_are_checked_against_the_manifest(key: HubKey) -> None:
    chunks: dict[int, bytes] = {}
    rows = [wire.canonical_bytes({"i": i, "pad": os.urandom(40).hex()}) for i in range(2000)]
    header = wire.build_snapshot(
        lg_code=LG,
        rows=iter(rows),
        seq=7,
        chain="00" * 32,
        chunk_size=4096,
        extra={"snap_id": "7-abc"},
        signer=key.sign,
        sink=chunks.__setitem__,
    )
    m = wire.verify_manifest(header, lg_code=LG, verifier=PinnedVerifier(key.public_b64))
    assert len(m.chunks) == len(chunks) > 1
    got = list(wire.iter_snapshot_lines(m, (chunks[i] for i in range(len(chunks)))))
    assert got == rows
    with pytest.raises(WireError, match="SHA-256"):
        wire.check_chunk(m, 0, chunks[0][:-1] + b"!")
    forged = {**header, "seq": 8}
    with pytest.raises(WireError, match="signature"):
        wire.verify_manifest(forged, lg_code=LG, verifier=PinnedVerifier(key.public_b64))
