"""The node's inbox folder: snapshot files brought on physical media (a courier's USB stick).

A file dropped into the inbox is handled in four steps, and nothing changes before the last:

1. **Wait** until it is whole: hidden and temporary names (``.x``, ``*.part``, ``*.tmp``, ...)
   are ignored, and a file is only read once its size and mtime have not moved for
   `inbox_settle_seconds`. A file shorter than its manifest says is still being copied (or
   the copy broke off): it stays where it is and the status says how much has arrived.
2. **Verify** it as a whole: magic, manifest schema, signature against the pinned hub key,
   municipality, every chunk's SHA-256, and no trailing bytes.
3. **Decide**: a snapshot newer than the replica (or any snapshot on a node without one) is
   installed through `Syncer.bootstrap`, the same code as ``node bootstrap --from``, which
   builds a new replica file and switches to it atomically; an older or equal one is not
   applied.
4. **File it away**: the file moves to ``done/`` or ``rejected/`` (with ``NAME.reason.txt``
   beside it). A courier's file is never deleted.

The outcome is kept in ``node.db`` (``inbox`` in `node status`) and every installed file is
written to the audit log (kind ``media_import``). After an install the sync loop simply
continues from the snapshot's sequence once the hub answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgenode import wire
from edgenode.durable import atomic_write, fsync_dir, utcnow
from edgenode.errors import EdgenodeError, SchemaTooNew, WireError
from edgenode.sync.client import DirectoryFeedClient
from edgenode.sync.syncer import Syncer

log = logging.getLogger("edgenode.inbox")

DONE = "done"
REJECTED = "rejected"
#: Names that copy tools, browsers and editors use while a file is still being written.
TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".swp", "~")


DAMAGED = "the file is damaged: copy it again, or write a new one with `edgenode hub snapshot --out`"


def _advice(problem: str) -> str:
    if "municipality" in problem:
        return "this file is for another municipality's nodes"
    if "signature" in problem or "not signed" in problem:
        return "it was not signed by the hub whose key this node pinned at `node init`"
    return DAMAGED


def inbox_folder(data: Path, setting: str) -> Path:
    """The inbox folder: the `inbox_dir` setting, or DATA/inbox when it is empty."""
    return Path(setting) if setting else data / "inbox"


def is_candidate(path: Path) -> bool:
    """True for a name worth looking at (not hidden, not a copy still in progress)."""
    name = path.name
    return not name.startswith(".") and not name.lower().endswith(TEMP_SUFFIXES) and name not in (DONE, REJECTED)


class Incomplete(Exception):
    """The file is shorter than its manifest says: still being copied."""


@dataclass(frozen=True)
class Checked:
    """A snapshot file that passed every check."""

    manifest: wire.Manifest
    sha256: str
    size: int


def check_file(path: Path, *, lg_code: str, verifier: Any) -> Checked:
    """Verify a snapshot file as a whole; `WireError` with a reason, `Incomplete` if short."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        head = f.read(8)
        if not head:
            raise Incomplete("the file is still empty")
        if head[:4] != wire.SNAPSHOT_MAGIC[: len(head[:4])]:
            raise WireError("not an edgenode snapshot file (expected a file written by `edgenode hub snapshot --out`)")
        if len(head) < 8:
            raise Incomplete(f"{size} bytes so far")
        n = int.from_bytes(head[4:8], "big")
        if n > wire.MAX_HEADER:
            raise WireError(f"the manifest length is implausible; {DAMAGED}")
        rest = f.read(n)
        if len(rest) < n:
            raise Incomplete(f"{size} bytes so far, the manifest alone needs {8 + n}")
        h.update(head + rest)
        try:
            header, off = wire.decode_frame_header(wire.SNAPSHOT_MAGIC, head + rest)
        except WireError as exc:
            raise WireError(f"the manifest is damaged ({exc}); {DAMAGED}") from exc
        try:
            manifest = wire.verify_manifest(header, lg_code=lg_code, verifier=verifier)
        except SchemaTooNew:
            raise  # its message already says to upgrade
        except WireError as exc:
            raise WireError(f"{exc}; {_advice(str(exc))}") from exc
        expected = off + manifest.total_len
        if size < expected:
            raise Incomplete(f"{size} of {expected} bytes ({100 * size // max(expected, 1)} %)")
        if size > expected:
            raise WireError(f"the file has {size - expected} bytes more than its manifest declares; {DAMAGED}")
        for i in range(len(manifest.chunks)):
            data = f.read(manifest.chunk_size)
            h.update(data)
            try:
                wire.check_chunk(manifest, i, data)
            except WireError as exc:
                raise WireError(f"{exc}; {DAMAGED}") from exc
    return Checked(manifest, h.hexdigest(), size)


class Inbox:
    """Scans one inbox folder and hands whole, verified snapshot files to a `Syncer`."""

    def __init__(self, folder: Path, syncer: Syncer) -> None:
        self.folder = folder
        self.syncer = syncer
        # path -> (size, mtime_ns, monotonic time first seen with that size and mtime)
        self._seen: dict[str, tuple[int, int, float]] = {}
        self._waiting: dict[str, str] = {}
        # files dealt with that could not be moved (a read-only stick): left alone while unchanged
        self._stuck: dict[str, tuple[int, int]] = {}

    def ensure(self) -> None:
        """Create the inbox and its two sub-folders (fine if they exist)."""
        for sub in (self.folder, self.folder / DONE, self.folder / REJECTED):
            sub.mkdir(parents=True, exist_ok=True)

    def scan(self, now: float) -> list[dict[str, Any]]:
        """Handle every file that has settled; return the results (empty if nothing was ready)."""
        try:
            entries = sorted(p for p in self.folder.iterdir() if p.is_file() and is_candidate(p))
        except FileNotFoundError:
            return []  # a USB mount point not mounted (yet)
        results = []
        present = {str(p) for p in entries}
        for gone in (set(self._seen) | set(self._stuck)) - present:
            self._seen.pop(gone, None)
            self._waiting.pop(gone, None)
            self._stuck.pop(gone, None)
        for path in entries:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            key = str(path)
            if self._stuck.get(key) == (st.st_size, st.st_mtime_ns):
                continue
            self._stuck.pop(key, None)
            prev = self._seen.get(key)
            if prev is None or prev[:2] != (st.st_size, st.st_mtime_ns):
                self._seen[key] = (st.st_size, st.st_mtime_ns, now)
                continue
            if now - prev[2] < float(self.syncer.settings["inbox_settle_seconds"]):
                continue
            result = self.process(path)
            if result is not None:
                results.append(result)
        return results

    def process(self, path: Path) -> dict[str, Any] | None:
        """Verify one settled file and act on it; None while it is still incomplete."""
        syncer = self.syncer
        try:
            checked = check_file(path, lg_code=syncer.lg_code, verifier=syncer.verifier)
        except Incomplete as exc:
            note = f"{path.name} is not complete yet: {exc}; waiting (copy it again if the copy broke off)"
            if self._waiting.get(str(path)) != note:
                self._waiting[str(path)] = note
                log.warning("inbox: %s", note)
                self._record("waiting", path.name, reason=note)
            return None
        except WireError as exc:
            return self._reject(path, str(exc))
        except OSError as exc:
            return self._reject(path, f"the file cannot be read ({exc.strerror or exc})")
        m = checked.manifest
        syncer.preempt.set()  # an HTTP bootstrap holding the lock stops at its next chunk
        try:
            with syncer.lock:
                # compared under the lock: the sync loop may have moved the replica meanwhile
                pos = syncer.replica.position()
                if pos is not None and m.seq <= pos[0]:
                    why = (
                        f"not applied: the file holds sequence {m.seq}, this node is already at {pos[0]}"
                        " (a newer file or the hub's feed got here first)"
                    )
                    log.warning("inbox: %s %s", path.name, why)
                    self._file_away(path, DONE, why)
                    return self._record("older", path.name, seq=m.seq, cursor=pos[0], reason=why)
                log.info(
                    "inbox: %s verified (sequence %d, %s rows): installing", path.name, m.seq, m.header.get("rows")
                )
                try:
                    seq = syncer.bootstrap(DirectoryFeedClient(path))
                except (EdgenodeError, OSError) as exc:
                    # verified a moment ago: the file changed under us or the disk is failing
                    return self._reject(path, f"the install failed ({exc}); the replica was not changed")
        finally:
            syncer.preempt.clear()
        syncer.audit.append(
            "media_import",
            None,
            {
                "file": path.name,
                "sha256": checked.sha256,
                "bytes": checked.size,
                "snap_id": m.snap_id,
                "seq": seq,
                "rows": m.header.get("rows"),
                "previous_cursor": None if pos is None else pos[0],
            },
        )
        self._file_away(path, DONE, None)
        log.info("inbox: %s installed at sequence %d; following the hub from there", path.name, seq)
        return self._record("applied", path.name, seq=seq, previous_cursor=None if pos is None else pos[0])

    def _reject(self, path: Path, reason: str) -> dict[str, Any]:
        log.error("inbox: %s rejected: %s (moved to %s/)", path.name, reason, REJECTED)
        self._file_away(path, REJECTED, reason)
        return self._record("rejected", path.name, reason=reason)

    def _file_away(self, path: Path, sub: str, reason: str | None) -> None:
        key = str(path)
        self._seen.pop(key, None)
        self._waiting.pop(key, None)
        dest_dir = self.folder / sub
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
            dest = dest_dir / path.name
            if dest.exists():  # the same name brought twice: keep both
                dest = dest_dir / f"{path.stem}-{utcnow().replace(':', '')}{path.suffix}"
            if reason is not None:
                atomic_write(dest.with_name(dest.name + ".reason.txt"), (reason + "\n").encode("utf-8"))
            os.replace(path, dest)
            fsync_dir(dest_dir)
            fsync_dir(self.folder)
        except OSError as exc:
            # e.g. a write-protected stick: the outcome stands, the file stays where it is
            log.warning("inbox: could not move %s to %s/ (%s); leaving it in place", path.name, sub, exc)
            with contextlib.suppress(OSError):
                st = path.stat()
                self._stuck[key] = (st.st_size, st.st_mtime_ns)

    def _record(self, state: str, name: str, **detail: Any) -> dict[str, Any]:
        result = {"state": state, "file": name, "at": utcnow(), **detail}
        self.syncer.state.update(inbox=result)
        return result
