"""Snapshots at the hub: built at a consistent sequence, cut in chunks, cached on disk.

A snapshot is read inside one SQLite read transaction (WAL gives it a stable view while
writers continue), so it is exactly the registry at its sequence. Chunks and the signed
manifest are written under ``snapshots/<lg_code>/<snap_id>/`` and then the folder is renamed
into place, so a crash never leaves a half-written snapshot that could be served.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgenode import registry, wire
from edgenode.durable import fsync_dir, remove_tree, utcnow
from edgenode.errors import StoreError
from edgenode.hub.store import HubStore, TenantDB
from edgenode.signing import HubKey

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(lg_code: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(lg_code, threading.Lock())


def build(tenant: TenantDB, out_dir: Path, key: HubKey, chunk_size: int) -> dict[str, Any]:
    """Write a new snapshot of `tenant` under `out_dir`; return its signed manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".building-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        conn = tenant.connect()
        try:
            conn.execute("BEGIN")
            meta = TenantDB.meta(conn)
            seq, chain = int(meta["head"]), meta["chain"]
            snap_id = f"{seq}-{secrets.token_hex(6)}"

            def sink(i: int, data: bytes) -> None:
                with open(tmp / f"chunk-{i:06d}", "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())

            manifest = wire.build_snapshot(
                lg_code=tenant.lg_code,
                rows=registry.iter_snapshot_rows(conn),
                seq=seq,
                chain=chain,
                chunk_size=chunk_size,
                extra={"snap_id": snap_id, "created_at": utcnow(), "key_id": key.key_id},
                signer=key.sign,
                sink=sink,
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        (tmp / "manifest.json").write_bytes(wire.canonical_bytes(manifest))
        fsync_dir(tmp)
        os.replace(tmp, out_dir / snap_id)
        fsync_dir(out_dir)
        return manifest
    finally:
        remove_tree(tmp)


class SnapshotCache:
    """Serves the newest snapshot of a tenant, rebuilding it when it is too old."""

    def __init__(
        self, store: HubStore, key: HubKey, chunk_size: int, max_age: float, keep: int, hold: float = 6 * 3600
    ) -> None:
        self.store = store
        self.key = key
        self.chunk_size = chunk_size
        self.max_age = max_age
        self.keep = keep
        self.hold = hold
        self._touched: dict[Path, float] = {}

    def _dir(self, lg_code: str) -> Path:
        return self.store.snapshot_dir / lg_code

    def _existing(self, lg_code: str) -> list[tuple[float, Path]]:
        d = self._dir(lg_code)
        if not d.exists():
            return []
        found = []
        for p in d.iterdir():
            manifest = p / "manifest.json"
            if p.is_dir() and not p.name.startswith(".") and manifest.exists():
                # the manifest's time is the snapshot's: the folder's changes when it is read
                found.append((manifest.stat().st_mtime, p))
        return sorted(found)

    def current(self, lg_code: str) -> dict[str, Any]:
        """The manifest of a fresh-enough snapshot, building one if needed."""
        tenant = self.store.tenant(lg_code)
        with _lock(lg_code):
            existing = self._existing(lg_code)
            if existing:
                mtime, path = existing[-1]
                manifest: dict[str, Any] = json.loads((path / "manifest.json").read_bytes())
                fresh = time.time() - mtime < self.max_age
                if fresh or manifest["seq"] == tenant.head():
                    return manifest
            manifest = build(tenant, self._dir(lg_code), self.key, self.chunk_size)
            self._expire(lg_code)
            return manifest

    def _expire(self, lg_code: str) -> None:
        """Delete snapshots beyond the newest `keep`, except those still being downloaded.

        A node on a 48 KB/s link needs hours for a large town's snapshot; deleting it under
        the node would make it start over, forever.
        """
        for _, old in self._existing(lg_code)[: -self.keep]:
            try:
                last_read = (old / ".last-read").stat().st_mtime
            except FileNotFoundError:
                last_read = 0.0
            if time.time() - last_read > self.hold:
                remove_tree(old)

    def chunk(self, lg_code: str, snap_id: str, index: int) -> bytes:
        """One chunk of a cached snapshot; `StoreError` if it is gone."""
        if not snap_id.replace("-", "").isalnum():
            raise StoreError("invalid snapshot id")
        folder = self._dir(lg_code) / snap_id
        path = folder / f"chunk-{index:06d}"
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(f"snapshot {snap_id} chunk {index} is not available") from exc
        # Remember (on disk, so it survives a restart) that someone is downloading this one;
        # touching at most once a minute keeps chunk reads free of writes.
        if time.monotonic() - self._touched.get(folder, -1e9) > 60:
            (folder / ".last-read").touch()
            self._touched[folder] = time.monotonic()
        return data


def write_file(tenant: TenantDB, key: HubKey, chunk_size: int, out: Path) -> dict[str, Any]:
    """Write a self-contained signed snapshot file (for physical media) to `out`."""
    work = out.parent / f".{out.name}.parts"
    remove_tree(work)
    try:
        manifest = build(tenant, work, key, chunk_size)
        folder = work / manifest["snap_id"]

        def chunks() -> Iterator[bytes]:
            for i in range(len(manifest["chunks"])):
                yield (folder / f"chunk-{i:06d}").read_bytes()

        tmp = out.with_name(out.name + ".tmp")
        with open(tmp, "wb") as f:
            for piece in wire.encode_snapshot_file(manifest, chunks()):
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        return manifest
    finally:
        remove_tree(work)
