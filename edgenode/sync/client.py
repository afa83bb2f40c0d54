"""How a node reads the hub: one `FeedClient` interface, two implementations.

- `HttpFeedClient` talks to a hub over HTTP (LGWAN), honouring a bandwidth cap.
- `DirectoryFeedClient` reads snapshot files from a folder (physical media: a courier's USB
  stick, as the trials shipped tapes).

Both return raw, *unverified* bytes and manifests: verification (signature, hashes, chain) is
the sync engine's job, identical for both sources. Transport errors become `SyncError`s here.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx

from edgenode import __version__, wire
from edgenode.errors import CursorTooOld, HubRejected, HubUnreachable, SnapshotGone, SyncError, WireError


class FeedClient(Protocol):
    """A source of snapshots and feed batches for one municipality."""

    def manifest(self) -> dict[str, Any]:
        """The newest snapshot manifest (unverified JSON object)."""

    def chunk(self, snap_id: str, index: int) -> bytes:
        """Chunk `index` of snapshot `snap_id` (unverified bytes)."""

    def feed(self, after: int, wait: float, max_bytes: int) -> bytes | None:
        """A batch frame of transactions after `after`, or None if this source has no feed.

        Raises `CursorTooOld` when the source no longer holds the log after `after`.
        """

    def digest(self, buckets: int) -> dict[str, Any]:
        """Bucketed digest of the source's registry at its head."""

    def bucket(self, bucket: int, buckets: int) -> tuple[int, str, list[dict[str, Any]]]:
        """(seq, chain, put ops) of every row in one digest bucket."""

    def heartbeat(self, status: dict[str, Any]) -> dict[str, Any]:
        """Report this node's status; returns the source's answer."""

    def upload(self, node_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send queued items; one verdict per item (accepted, duplicate, rejected) in order."""

    def close(self) -> None:
        """Release connections."""


class RateLimiter:
    """Token bucket limiting bytes per second across every request of one client."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._allowance = float(rate)
        self._last = time.monotonic()

    def consume(self, n: int) -> None:
        """Block until `n` more bytes fit under the cap (no-op when the cap is 0)."""
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._allowance = min(float(self.rate), self._allowance + (now - self._last) * self.rate)
            self._last = now
            self._allowance -= n
            deficit = -self._allowance
        if deficit > 0:
            time.sleep(deficit / self.rate)


class HttpFeedClient:
    """`FeedClient` over the hub's HTTP API."""

    READ_PIECE = 16 * 1024

    def __init__(
        self,
        hub_url: str,
        token: str,
        lg_code: str,
        *,
        bandwidth_limit: int = 0,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = hub_url.rstrip("/")
        self.lg_code = lg_code
        self.timeout = timeout
        self.limiter = RateLimiter(bandwidth_limit)
        self._client = httpx.Client(
            headers={"authorization": f"Bearer {token}", "user-agent": f"edgenode/{__version__}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )

    def _url(self, path: str) -> str:
        return f"{self.base}/v1/tenants/{self.lg_code}/{path}"

    def _get(
        self, url: str, params: dict[str, Any] | None = None, extra_timeout: float = 0.0, limit: int = 512 << 20
    ) -> tuple[httpx.Response, bytes]:
        """GET, reading the body in pieces under the bandwidth cap; errors become SyncErrors."""
        try:
            timeout = httpx.Timeout(self.timeout + extra_timeout, connect=min(self.timeout, 10.0))
            with self._client.stream("GET", url, params=params, timeout=timeout) as r:
                body = bytearray()
                for piece in r.iter_bytes(self.READ_PIECE):
                    self.limiter.consume(len(piece))
                    body += piece
                    if len(body) > limit:
                        raise WireError(f"response from {url} exceeds {limit} bytes")
                _raise_for_status(r, bytes(body))
                return r, bytes(body)
        except httpx.HTTPError as exc:
            raise HubUnreachable(f"hub not reachable ({type(exc).__name__}: {exc})") from exc

    def whoami(self) -> dict[str, Any]:
        """Which tenant and node this token is bound to, and the hub's public key."""
        _, body = self._get(f"{self.base}/v1/whoami")
        return _json(body)

    def manifest(self) -> dict[str, Any]:
        _, body = self._get(self._url("snapshot"), extra_timeout=600.0, limit=64 << 20)
        return _json(body)

    def chunk(self, snap_id: str, index: int) -> bytes:
        try:
            _, body = self._get(self._url(f"snapshot/{snap_id}/chunks/{index}"), limit=256 << 20)
        except HubRejected as exc:
            if exc.status == 404:
                raise SnapshotGone(f"the hub no longer offers snapshot {snap_id}") from exc
            raise
        return body

    def feed(self, after: int, wait: float, max_bytes: int) -> bytes | None:
        _, body = self._get(
            self._url("feed"),
            params={"after": after, "wait": int(wait), "max_bytes": max_bytes},
            extra_timeout=wait,
            limit=wire.MAX_RAW_BATCH,
        )
        return body

    def digest(self, buckets: int) -> dict[str, Any]:
        _, body = self._get(self._url("digest"), params={"buckets": buckets}, extra_timeout=300.0)
        return _json(body)

    def bucket(self, bucket: int, buckets: int) -> tuple[int, str, list[dict[str, Any]]]:
        r, body = self._get(self._url(f"digest/{bucket}"), params={"buckets": buckets}, extra_timeout=300.0)
        try:
            seq = int(r.headers["x-edgenode-seq"])
            raw_size = int(r.headers["x-edgenode-raw-size"])
            chain = r.headers["x-edgenode-chain"]
        except (KeyError, ValueError) as exc:
            raise WireError("digest bucket response lacks its headers") from exc
        raw = wire.decompress_bounded(body, raw_size, wire.MAX_RAW_BATCH)
        return seq, chain, [obj for _, obj in wire.iter_ndjson(raw)]

    def upload(self, node_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raw = json.dumps({"node_id": node_id, "items": items}, ensure_ascii=False).encode()
        # compressed: a day of 交付記録 is mostly repeated keys and 発行番号 (measured ~5x smaller)
        headers = {"content-type": "application/json", "content-encoding": "zstd", "x-edgenode-raw-size": str(len(raw))}
        try:
            r = self._client.post(self._url("uploads"), content=wire.compress(raw), headers=headers)
        except httpx.HTTPError as exc:
            raise HubUnreachable(f"hub not reachable ({type(exc).__name__}: {exc})") from exc
        _raise_for_status(r, r.content)
        results = _json(r.content).get("results")
        if not isinstance(results, list) or len(results) != len(items):
            raise WireError("the hub's upload answer does not have one verdict per item")
        return results

    def ledger(self, node_id: str, after: int, limit: int = 1000) -> dict[str, Any]:
        """The hub's ledger of this node's items after sequence `after` (for a restored node)."""
        _, body = self._get(
            self._url("uploads/ledger"),
            params={"node_id": node_id, "after": after, "limit": limit},
            extra_timeout=60.0,
            limit=64 << 20,
        )
        return _json(body)

    def heartbeat(self, status: dict[str, Any]) -> dict[str, Any]:
        try:
            r = self._client.post(self._url("heartbeat"), content=json.dumps(status).encode())
        except httpx.HTTPError as exc:
            raise HubUnreachable(f"hub not reachable ({type(exc).__name__}: {exc})") from exc
        _raise_for_status(r, r.content)
        return _json(r.content)

    def close(self) -> None:
        self._client.close()


def _raise_for_status(r: httpx.Response, body: bytes) -> None:
    if r.status_code < 300:
        return
    try:
        detail = json.loads(body).get("error", "")
    except (ValueError, AttributeError):
        detail = body[:200].decode("utf-8", "replace")
    if r.status_code == 410:
        raise CursorTooOld(f"hub no longer holds the change log after our cursor ({detail})")
    if r.status_code >= 500 or r.status_code == 429:
        raise SyncError(f"hub error {r.status_code}: {detail}", retryable=True, hint="the hub is unhealthy; retrying")
    raise HubRejected(f"hub refused the request ({r.status_code}): {detail}", r.status_code)


def _json(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError("hub answered with invalid JSON") from exc
    if not isinstance(obj, dict):
        raise WireError("hub answered with a JSON value that is not an object")
    return obj


class DirectoryFeedClient:
    """`FeedClient` over snapshot files (``*.ensnap``) in a folder or one given file."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self._files: dict[str, tuple[Path, int, dict[str, Any]]] = {}

    def _scan(self) -> list[tuple[Path, int, dict[str, Any]]]:
        paths = [self.source] if self.source.is_file() else sorted(self.source.glob("*.ensnap"))
        found = []
        for p in paths:
            with open(p, "rb") as f:
                head = f.read(8)
                if len(head) < 8 or head[:4] != wire.SNAPSHOT_MAGIC:
                    raise WireError(f"{p.name} is not an edgenode snapshot file")
                n = int.from_bytes(head[4:8], "big")
                if n > wire.MAX_HEADER:
                    raise WireError(f"{p.name}: manifest length is implausible")
                header, off = wire.decode_frame_header(wire.SNAPSHOT_MAGIC, head + f.read(n))
            found.append((p, off, header))
            self._files[str(header.get("snap_id"))] = (p, off, header)
        return found

    def manifest(self) -> dict[str, Any]:
        found = self._scan()
        if not found:
            raise SyncError(
                f"no snapshot file in {self.source}",
                retryable=False,
                hint="copy a file written by `edgenode hub snapshot --out` there",
            )
        return max(found, key=lambda x: int(x[2].get("seq", -1)))[2]

    def chunk(self, snap_id: str, index: int) -> bytes:
        if snap_id not in self._files:
            self._scan()
        try:
            path, off, header = self._files[snap_id]
        except KeyError as exc:
            raise SnapshotGone(f"snapshot {snap_id} is not in {self.source}") from exc
        size = int(header["chunk_size"])
        with open(path, "rb") as f:
            f.seek(off + index * size)
            return f.read(size)

    def feed(self, after: int, wait: float, max_bytes: int) -> bytes | None:
        return None

    def digest(self, buckets: int) -> dict[str, Any]:
        raise SyncError(
            "a snapshot file has no digest service",
            retryable=False,
            hint="run `edgenode node verify` when the hub is reachable",
        )

    def bucket(self, bucket: int, buckets: int) -> tuple[int, str, list[dict[str, Any]]]:
        raise SyncError("a snapshot file cannot repair buckets", retryable=False)

    def heartbeat(self, status: dict[str, Any]) -> dict[str, Any]:
        return {}

    def upload(self, node_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise SyncError("a snapshot file cannot take uploads", retryable=True, hint="they go when the hub answers")

    def close(self) -> None:
        self._files.clear()


def backoff_delays(initial: float, maximum: float, rng: random.Random | None = None) -> Iterator[float]:
    """Exponential backoff with full jitter: uniform(0, min(max, initial·2^n))."""
    r = rng or random.Random()
    n = 0
    while True:
        yield r.uniform(0, min(maximum, initial * (2**n))) if initial > 0 else 0.0
        n = min(n + 1, 30)
