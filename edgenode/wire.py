"""The wire format shared by hub and node: feed batches, snapshot manifests and files.

Standard library plus zstandard (codec) and orjson (a strict, fast parser) only, so that the
two sides cannot drift. Signatures are made and checked by callables passed in (see
`edgenode.signing`), keeping this module free of the crypto library.

A *frame* is ``MAGIC (4 bytes) | header length (u32, big-endian) | header (canonical JSON) |
payload``. The header is signed: ``sig`` is an Ed25519 signature over the canonical JSON of the
header without ``sig``. The payload is a zstd-compressed NDJSON stream; the header carries its
SHA-256, its length and its decompressed size, which bounds decompression (no zip bombs).

Change-log transactions are chained: ``chain(n) = sha256(chain(n-1) || sha256(line(n)))`` with
``chain(0) = sha256("edgenode-chain-v1:" + lg_code)``, so a node that holds ``chain(cursor)``
detects any replayed, reordered, altered or foreign transaction. Full details: docs/protocol.md.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import zstandard

from edgenode.errors import SchemaTooNew, WireError

#: The schema version this software writes and the newest it reads.
SCHEMA_VERSION = 1
BATCH_MAGIC = b"ENB1"
SNAPSHOT_MAGIC = b"ENS1"
MAX_HEADER = 1 << 20
#: No batch or snapshot may decompress to more than this, whatever its header claims.
MAX_RAW_BATCH = 256 << 20
MAX_RAW_SNAPSHOT = 64 << 30
MAX_LINE = 8 << 20
ZSTD_LEVEL = 9

Signer = Callable[[bytes], str]
Verifier = Callable[[bytes, str], None]


def canonical_json(obj: Any) -> str:
    """Keys sorted, no spaces, UTF-8 kept as is (no \\u escapes): the form hashed and exported."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def canonical_bytes(obj: Any) -> bytes:
    """`canonical_json` encoded as UTF-8."""
    return canonical_json(obj).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def genesis_chain(lg_code: str) -> str:
    """The chain value before a tenant's first transaction (sequence 0)."""
    return sha256_hex(b"edgenode-chain-v1:" + lg_code.encode("ascii"))


def next_chain(prev: str, line: bytes) -> str:
    """The chain value after appending the transaction whose canonical line is `line`."""
    return hashlib.sha256(bytes.fromhex(prev) + hashlib.sha256(line).digest()).hexdigest()


def sign_header(header: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """A copy of `header` with ``sig`` set over its canonical form."""
    body = {k: v for k, v in header.items() if k != "sig"}
    return {**body, "sig": signer(canonical_bytes(body))}


def verify_header(header: dict[str, Any], verifier: Verifier) -> None:
    """Raise `WireError` unless ``sig`` is a valid signature over the rest of `header`."""
    sig = header.get("sig")
    if not isinstance(sig, str):
        raise WireError("header is not signed")
    body = {k: v for k, v in header.items() if k != "sig"}
    verifier(canonical_bytes(body), sig)


def check_schema(header: dict[str, Any]) -> None:
    """Raise unless the header's schema version is one this software reads."""
    schema = header.get("schema")
    if not isinstance(schema, int) or schema < 1:
        raise WireError(f"invalid schema version {schema!r}")
    if schema > SCHEMA_VERSION:
        raise SchemaTooNew(schema, SCHEMA_VERSION)


def encode_frame(magic: bytes, header: dict[str, Any], payload: bytes) -> bytes:
    """Join magic, header and payload into one frame."""
    hb = canonical_bytes(header)
    return magic + struct.pack(">I", len(hb)) + hb + payload


def decode_frame_header(magic: bytes, data: bytes) -> tuple[dict[str, Any], int]:
    """Parse the header at the start of `data`; return it and the payload's offset."""
    if len(data) < 8 or data[:4] != magic:
        raise WireError(f"not an edgenode frame (expected magic {magic!r})")
    (n,) = struct.unpack(">I", data[4:8])
    if n > MAX_HEADER or 8 + n > len(data):
        raise WireError("frame header length is invalid or truncated")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError("frame header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise WireError("frame header is not an object")
    return header, 8 + n


def compress(raw: bytes) -> bytes:
    """zstd-compress `raw` with the content size recorded."""
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)


def decompress_bounded(payload: bytes, raw_size: int, limit: int) -> bytes:
    """Decompress `payload`, refusing anything that is not exactly `raw_size` bytes (≤ `limit`)."""
    if not isinstance(raw_size, int) or raw_size < 0 or raw_size > limit:
        raise WireError(f"declared decompressed size {raw_size!r} exceeds the limit of {limit}")
    dobj = zstandard.ZstdDecompressor().decompressobj()
    try:
        out = dobj.decompress(payload) if raw_size else b""
    except zstandard.ZstdError as exc:
        raise WireError(f"payload does not decompress: {exc}") from exc
    # zstd frames record their content size; decompressobj honours it, and we check anyway.
    if len(out) != raw_size:
        raise WireError(f"payload decompressed to {len(out)} bytes, header says {raw_size}")
    return out


def iter_ndjson(raw: bytes) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Yield (line bytes, parsed object) for each line of `raw`."""
    for line in raw.split(b"\n"):
        if not line:
            continue
        if len(line) > MAX_LINE:
            raise WireError("a line exceeds the maximum line length")
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise WireError("a payload line is not valid JSON") from exc
        if not isinstance(obj, dict):
            raise WireError("a payload line is not an object")
        yield line, obj


# ---------------------------------------------------------------- feed batches


@dataclass(frozen=True)
class Batch:
    """A verified feed batch: header fields and the transactions it carries, in order."""

    header: dict[str, Any]
    txs: list[dict[str, Any]]

    @property
    def first_seq(self) -> int:
        return int(self.header["first_seq"])

    @property
    def last_seq(self) -> int:
        return int(self.header["last_seq"])

    @property
    def chain(self) -> str:
        return str(self.header["chain"])


def encode_batch(
    *,
    lg_code: str,
    lines: list[bytes],
    first_seq: int,
    prev_chain: str,
    chain: str,
    extra: dict[str, Any],
    signer: Signer,
) -> bytes:
    """Frame change-log lines (canonical tx JSON, in sequence order) as one signed batch."""
    raw = b"".join(line + b"\n" for line in lines)
    payload = compress(raw)
    header = {
        **extra,
        "type": "batch",
        "schema": SCHEMA_VERSION,
        "lg_code": lg_code,
        "first_seq": first_seq,
        "last_seq": first_seq + len(lines) - 1,
        "count": len(lines),
        "prev_chain": prev_chain,
        "chain": chain,
        "raw_size": len(raw),
        "payload_len": len(payload),
        "payload_sha256": sha256_hex(payload),
    }
    return encode_frame(BATCH_MAGIC, sign_header(header, signer), payload)


def decode_batch(data: bytes, *, lg_code: str, cursor: int, chain: str, verifier: Verifier) -> Batch:
    """Verify a batch against our position and return it; raise `WireError` on any mismatch.

    Checks in order: frame, schema, signature, tenant, payload hash, position (the batch must
    start right after `cursor` and continue from `chain`), bounded decompression, and finally
    that re-chaining every transaction ends at the signed chain value.
    """
    header, off = decode_frame_header(BATCH_MAGIC, data)
    check_schema(header)
    verify_header(header, verifier)
    if header.get("type") != "batch":
        raise WireError("frame is not a feed batch")
    if header.get("lg_code") != lg_code:
        raise WireError(f"batch is for municipality {header.get('lg_code')!r}, not {lg_code}")
    payload = data[off:]
    if len(payload) != header.get("payload_len") or sha256_hex(payload) != header.get("payload_sha256"):
        raise WireError("batch payload is truncated or corrupt (SHA-256 mismatch)")
    count = header.get("count")
    first = header.get("first_seq")
    if not isinstance(count, int) or not isinstance(first, int) or count < 0:
        raise WireError("batch header has no valid sequence range")
    if count == 0:
        return Batch(header, [])
    if first != cursor + 1:
        raise WireError(f"batch starts at sequence {first}, expected {cursor + 1} (replayed or out of order)")
    if header.get("prev_chain") != chain:
        raise WireError("batch does not continue this node's change-log chain")
    raw = decompress_bounded(payload, header["raw_size"], MAX_RAW_BATCH)
    txs: list[dict[str, Any]] = []
    running = chain
    for i, (line, tx) in enumerate(iter_ndjson(raw)):
        if tx.get("seq") != first + i:
            raise WireError(f"transaction {i} has sequence {tx.get('seq')!r}, expected {first + i}")
        if not isinstance(tx.get("ops"), list):
            raise WireError(f"transaction {tx.get('seq')} has no ops")
        running = next_chain(running, line)
        txs.append(tx)
    if len(txs) != count or running != header.get("chain"):
        raise WireError("batch transactions do not hash to the signed chain value")
    return Batch(header, txs)


# ---------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Manifest:
    """A verified snapshot manifest: which sequence it holds and the hash of every chunk."""

    header: dict[str, Any]

    @property
    def snap_id(self) -> str:
        return str(self.header["snap_id"])

    @property
    def seq(self) -> int:
        return int(self.header["seq"])

    @property
    def chain(self) -> str:
        return str(self.header["chain"])

    @property
    def chunks(self) -> list[str]:
        return list(self.header["chunks"])

    @property
    def chunk_size(self) -> int:
        return int(self.header["chunk_size"])

    @property
    def total_len(self) -> int:
        return int(self.header["total_len"])

    @property
    def raw_size(self) -> int:
        return int(self.header["raw_size"])


def build_snapshot(
    *,
    lg_code: str,
    rows: Iterable[bytes],
    seq: int,
    chain: str,
    chunk_size: int,
    extra: dict[str, Any],
    signer: Signer,
    sink: Callable[[int, bytes], None],
) -> dict[str, Any]:
    """Compress `rows` (canonical op lines) as one zstd stream cut into `chunk_size` pieces.

    Each piece is handed to `sink(index, bytes)` as it is produced (so a snapshot of millions
    of rows never sits in memory); returns the signed manifest.
    """
    hashes: list[str] = []
    buf = bytearray()
    total = 0
    raw_size = 0
    nrows = 0

    def flush(final: bool) -> None:
        nonlocal buf, total
        while len(buf) >= chunk_size or (final and buf):
            piece = bytes(buf[:chunk_size])
            del buf[:chunk_size]
            sink(len(hashes), piece)
            hashes.append(sha256_hex(piece))
            total += len(piece)

    cctx = zstandard.ZstdCompressor(level=3, threads=0)
    cobj = cctx.compressobj()
    for row in rows:
        line = row + b"\n"
        raw_size += len(line)
        nrows += 1
        buf += cobj.compress(line)
        if len(buf) >= chunk_size:
            flush(False)
    buf += cobj.flush()
    flush(True)
    header = {
        **extra,
        "type": "snapshot",
        "schema": SCHEMA_VERSION,
        "lg_code": lg_code,
        "seq": seq,
        "chain": chain,
        "rows": nrows,
        "raw_size": raw_size,
        "chunk_size": chunk_size,
        "total_len": total,
        "chunks": hashes,
    }
    return sign_header(header, signer)


def verify_manifest(header: Any, *, lg_code: str | None, verifier: Verifier) -> Manifest:
    """Check a manifest's schema, signature, tenant and shape; return it as a `Manifest`."""
    if not isinstance(header, dict):
        raise WireError("snapshot manifest is not an object")
    check_schema(header)
    verify_header(header, verifier)
    if header.get("type") != "snapshot":
        raise WireError("manifest is not a snapshot manifest")
    if lg_code is not None and header.get("lg_code") != lg_code:
        raise WireError(f"snapshot is for municipality {header.get('lg_code')!r}, not {lg_code}")
    chunks = header.get("chunks")
    size = header.get("chunk_size")
    if (
        not isinstance(chunks, list)
        or not all(isinstance(h, str) and len(h) == 64 for h in chunks)
        or not isinstance(size, int)
        or size <= 0
        or not isinstance(header.get("seq"), int)
        or not isinstance(header.get("snap_id"), str)
        or not isinstance(header.get("total_len"), int)
    ):
        raise WireError("snapshot manifest is malformed")
    raw = header.get("raw_size")
    if not isinstance(raw, int) or raw < 0 or raw > MAX_RAW_SNAPSHOT:
        raise WireError("snapshot declares an implausible decompressed size")
    return Manifest(header)


def check_chunk(manifest: Manifest, index: int, data: bytes) -> None:
    """Raise `WireError` unless `data` is chunk `index` of `manifest`."""
    if index < 0 or index >= len(manifest.chunks):
        raise WireError(f"chunk {index} is not part of snapshot {manifest.snap_id}")
    if sha256_hex(data) != manifest.chunks[index]:
        raise WireError(f"snapshot chunk {index} does not match its SHA-256 in the manifest")


def iter_snapshot_lines(manifest: Manifest, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress verified chunks as one stream and yield each row's line, bounded by `raw_size`."""
    dobj = zstandard.ZstdDecompressor().decompressobj()
    produced = 0
    pending = b""
    try:
        for chunk in chunks:
            out = dobj.decompress(chunk)
            produced += len(out)
            if produced > manifest.raw_size:
                raise WireError("snapshot decompresses to more than its manifest declares")
            pending += out
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line:
                    if len(line) > MAX_LINE:
                        raise WireError("a snapshot row exceeds the maximum line length")
                    yield line
    except zstandard.ZstdError as exc:
        raise WireError(f"snapshot does not decompress: {exc}") from exc
    if pending or produced != manifest.raw_size:
        raise WireError("snapshot stream is truncated")


def encode_snapshot_file(manifest: dict[str, Any], chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The bytes of a snapshot file for physical media: magic, manifest, then every chunk."""
    hb = canonical_bytes(manifest)
    yield SNAPSHOT_MAGIC + struct.pack(">I", len(hb)) + hb
    yield from chunks
