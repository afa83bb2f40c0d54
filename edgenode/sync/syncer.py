"""The node's sync engine: bootstrap, follow the feed, verify, report.

`Syncer` is the one entry object of the node's sync role; the CLI and `node serve` call its
methods. Everything it receives is verified before it touches the replica: manifests and
batches against the pinned hub key, chunks against the manifest, batches against the
replica's own cursor and chain.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgenode import __version__, registry, wire
from edgenode.audit import AuditLog
from edgenode.backup.status import backup_status
from edgenode.durable import atomic_write, parse_time, pid_alive, remove_tree, utcnow
from edgenode.errors import (
    ConfigError,
    CursorTooOld,
    EdgenodeError,
    HubUnreachable,
    SchemaTooNew,
    SnapshotGone,
    SyncError,
    WireError,
)
from edgenode.outbox import Outbox
from edgenode.settings import Settings
from edgenode.signing import PinnedVerifier
from edgenode.sync import watchdog
from edgenode.sync.client import FeedClient, HttpFeedClient, backoff_delays
from edgenode.sync.laghistory import LagHistory, sample_from_status
from edgenode.sync.mode import ModeMachine
from edgenode.sync.replica import Replica, read_json
from edgenode.sync.state import NodeState

log = logging.getLogger("edgenode.sync")

#: After this long without a successful exchange, the node reports itself offline.
OFFLINE_AFTER = 10.0
#: Heartbeats go at least this often, whatever heartbeat_interval says (the fleet view counts on it).
HEARTBEAT_MAX = 60.0


@dataclass
class VerifyResult:
    """Outcome of `Syncer.verify`."""

    identical: bool
    seq: int
    differing: list[int] = field(default_factory=list)
    repaired_rows: int = 0
    rebootstrapped: bool = False


class Syncer:
    """Bootstraps and follows one municipality's registry into the node's replica."""

    def __init__(
        self, data: Path, settings: Settings, client: FeedClient | None = None, mode: ModeMachine | None = None
    ) -> None:
        if not settings["lg_code"] or not settings["hub_public_key"]:
            raise ConfigError("this node is not initialised: run `edgenode node init` first")
        self.data = data
        self.settings = settings
        self.lg_code: str = settings["lg_code"]
        self.verifier = PinnedVerifier(settings["hub_public_key"])
        self.replica = Replica(data / "replica")
        self.state = NodeState(data / "node.db")
        self.staging = data / "bootstrap"
        self._client = client
        self.audit = AuditLog(data / "node.db", settings["node_id"])
        self.outbox = Outbox(data / "node.db")
        self.mode = mode or ModeMachine(self.state, self.audit, offline_after=settings["offline_after"])
        # Held while the replica is replaced or a feed batch is fetched and applied, so that a
        # bootstrap from the inbox and the sync loop never interleave.
        self.lock = threading.RLock()
        # Set while a snapshot file waits for the lock: an HTTP bootstrap then stops between
        # chunks (they stay staged) instead of holding the lock for hours on a slow link.
        self.preempt = threading.Event()
        self.lag = LagHistory(data / "node.db")
        #: set to wake the running loop at once (the admin page's "sync now")
        self.wake = threading.Event()
        self._applied_since_sample = 0
        self._last_sample = 0.0
        #: Called on every loop iteration and snapshot chunk (node serve: the systemd watchdog ping).
        self.alive: Callable[[], object] = lambda: None

    @property
    def client(self) -> FeedClient:
        """The feed source (HTTP to the configured hub unless one was given)."""
        if self._client is None:
            if not self.settings["hub_url"] or not self.settings["token"]:
                raise ConfigError("no hub configured: set hub_url and token (edgenode node init)")
            self._client = HttpFeedClient(
                self.settings["hub_url"],
                self.settings["token"],
                self.lg_code,
                bandwidth_limit=self.settings["bandwidth_limit"],
                timeout=self.settings["request_timeout"],
            )
        return self._client

    def retune(self) -> None:
        """Hand reloaded run-time settings to the parts that copied them when they were built."""
        self.mode.offline_after = self.settings["offline_after"]
        if isinstance(self._client, HttpFeedClient):
            self._client.limiter.rate = self.settings["bandwidth_limit"]
            self._client.timeout = self.settings["request_timeout"]

    def close(self) -> None:
        """Release the client's connections."""
        if self._client is not None:
            self._client.close()

    # ------------------------------------------------------------ bootstrap

    def bootstrap(self, client: FeedClient | None = None, *, allow_older: bool = False) -> int:
        """Fetch (or resume fetching) a snapshot, verify every chunk, install it; return its seq.

        Chunks already on disk from an interrupted attempt are re-checked against the manifest
        and kept, so a bootstrap resumes at the first missing chunk.
        """
        with self.lock:
            self.state.update(bootstrapping=os.getpid())
            try:
                return self._bootstrap(client, allow_older)
            finally:
                self.state.update(bootstrapping=None)

    def _bootstrap(self, client: FeedClient | None, allow_older: bool, attempt: int = 0) -> int:
        src = client or self.client
        self.staging.mkdir(parents=True, exist_ok=True)
        manifest = self._staged_manifest(src)
        if manifest is None:
            manifest = wire.verify_manifest(src.manifest(), lg_code=self.lg_code, verifier=self.verifier)
            remove_tree(self.staging)
            self.staging.mkdir(parents=True)
            atomic_write(self.staging / "manifest.json", wire.canonical_bytes(manifest.header))
        pos = self.replica.position()
        if pos is not None and manifest.seq < pos[0] and not allow_older:
            remove_tree(self.staging)
            raise SyncError(
                f"snapshot is at sequence {manifest.seq}, older than this node's replica at {pos[0]}",
                retryable=False,
                hint="use a newer snapshot file",
            )
        log.info("bootstrap: snapshot %s at seq %d, %d chunks", manifest.snap_id, manifest.seq, len(manifest.chunks))
        for i, expected in enumerate(manifest.chunks):
            self.alive()
            path = self.staging / f"chunk-{i:06d}"
            if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == expected:
                continue
            if client is None and self.preempt.is_set():
                raise SyncError("a snapshot file in the inbox takes over this bootstrap", retryable=True)
            try:
                data = src.chunk(manifest.snap_id, i)
            except SnapshotGone:
                # the source replaced that snapshot (or the staged one came from another source,
                # e.g. an interrupted download before a USB stick arrived): start over, once
                if attempt >= 1:
                    raise
                remove_tree(self.staging)
                return self._bootstrap(client, allow_older, attempt + 1)
            wire.check_chunk(manifest, i, data)
            atomic_write(path, data)
        self.replica.install_snapshot(
            manifest, wire.iter_snapshot_lines(manifest, self._staged_chunks(manifest)), self.verifier.key_id
        )
        remove_tree(self.staging)
        self.state.update(
            last_bootstrap_at=utcnow(),
            hub_head=max(manifest.seq, int(self.state.all().get("hub_head") or 0)),
        )
        log.info("bootstrap: replica installed at seq %d", manifest.seq)
        return manifest.seq

    def _staged_manifest(self, src: FeedClient) -> wire.Manifest | None:
        saved = read_json(self.staging / "manifest.json")
        if saved is None:
            return None
        try:
            return wire.verify_manifest(saved, lg_code=self.lg_code, verifier=self.verifier)
        except WireError:
            return None

    def _staged_chunks(self, manifest: wire.Manifest) -> Iterator[bytes]:
        for i, _expected in enumerate(manifest.chunks):
            data = (self.staging / f"chunk-{i:06d}").read_bytes()
            wire.check_chunk(manifest, i, data)  # re-check: the disk may have been tampered with
            yield data

    # ------------------------------------------------------------ following

    def pull_once(self, wait: float = 0.0) -> int:
        """Fetch one batch after the cursor, verify and apply it; return how many txs applied."""
        with self.lock:
            return self._pull_once(wait)

    def _pull_once(self, wait: float) -> int:
        pos = self.replica.position()
        if pos is None:
            raise SyncError("no replica yet", retryable=True, hint="bootstrap first")
        cursor, chain = pos
        frame = self.client.feed(cursor, wait, self.settings["feed_max_bytes"])
        if frame is None:
            return 0
        batch = wire.decode_batch(frame, lg_code=self.lg_code, cursor=cursor, chain=chain, verifier=self.verifier)
        if batch.txs:
            self.replica.apply_batch(batch)
        now = utcnow()
        self.state.update(
            hub_head=int(batch.header.get("head_seq", 0)),
            next_age=float(batch.header.get("next_age") or 0.0),
            fetched_at=now,
            last_sync_at=now,
            last_contact_at=now,
            last_error=None,
            last_error_hint=None,
        )
        self.mode.hub_answered()
        if batch.last_seq >= int(batch.header.get("head_seq", 0)):
            self.mode.caught_up()
        return len(batch.txs)

    def catch_up(self) -> int:
        """Pull until the replica reaches the hub's head; re-bootstrap on 410. Returns txs applied."""
        total = 0
        while True:
            try:
                n = self.pull_once(0.0)
            except CursorTooOld:
                log.warning("hub no longer holds our position: re-bootstrapping")
                self.bootstrap()
                continue
            total += n
            pos = self.replica.position()
            head = int(self.state.all().get("hub_head") or 0)
            if n == 0 or (pos is not None and pos[0] >= head):
                return total

    def sync_once(self) -> dict[str, Any]:
        """Bootstrap if needed, pull until caught up, send a heartbeat; return the status."""
        try:
            if not self.replica.exists():
                self.bootstrap()
            self.catch_up()
            self.drain()
            self.send_heartbeat()
        except EdgenodeError as exc:
            self.record_error(exc)
            raise
        return self.status()

    def upload_once(self, limit: int = 200) -> int:
        """Send the oldest queued items; return how many got a verdict (0: queue empty)."""
        items = self.outbox.pending(limit)
        if not items:
            return 0
        self.outbox.mark_sent([str(i["key"]) for i in items])
        results = self.client.upload(self.settings["node_id"], items)
        counts = self.outbox.record(results)
        if counts.get("rejected"):
            log.error("upload: %d item(s) rejected by the hub (quarantined, see node status)", counts["rejected"])
        return len(results)

    def drain(self) -> int:
        """Upload until the queue is empty (or the hub stops answering); return items handled."""
        total = 0
        while n := self.upload_once():
            total += n
        return total

    def send_heartbeat(self) -> None:
        """Tell the hub where this node is (best effort is the caller's choice)."""
        st = self.status()
        st.pop("last_error_hint", None)
        st.pop("recent_errors", None)
        self.client.heartbeat({**st, "version": __version__})
        self.state.update(last_heartbeat_at=utcnow(), last_contact_at=utcnow())

    def record_error(self, exc: BaseException) -> None:
        """Remember the last error and its hint for `status`."""
        hint = getattr(exc, "hint", "")
        at, error = utcnow(), f"{type(exc).__name__}: {exc}"
        self.state.push_error(
            {"at": at, "error": error, "hint": hint}, last_error=error, last_error_hint=hint, last_error_at=at
        )

    def observe(self, force: bool = False) -> None:
        """Every lag_sample_interval: record a lag sample and run the staleness watchdog."""
        if not force and time.monotonic() - self._last_sample < self.settings["lag_sample_interval"]:
            return
        self._last_sample = time.monotonic()
        try:
            st = self.status()
            self.lag.record(sample_from_status(st, self._applied_since_sample))
            self._applied_since_sample = 0
            watchdog.observe(self.state, st["cursor"], st["hub_head"], self.settings["stale_alarm_after"])
        except (sqlite3.Error, OSError) as exc:
            log.warning("lag sample not recorded: %s", exc)

    def _pause(self, stop: threading.Event, seconds: float) -> None:
        """Wait `seconds`, or less if told to stop or woken up."""
        end = time.monotonic() + seconds
        while not stop.is_set() and not self.wake.is_set() and (left := end - time.monotonic()) > 0:
            stop.wait(min(left, 0.5))

    def run(self, stop: threading.Event) -> None:
        """Follow the hub until `stop` is set: long-poll, back off with jitter on errors."""
        delays = backoff_delays(self.settings["backoff_initial"], self.settings["backoff_max"])
        last_hb = 0.0
        schema_blocked = False
        while not stop.is_set():
            self.observe()
            woken = self.wake.is_set()
            self.wake.clear()
            self.alive()
            try:
                if schema_blocked:
                    stop.wait(60.0)
                    schema_blocked = False
                if not self.replica.exists():
                    self.bootstrap()
                pos = self.replica.position()
                head = int(self.state.all().get("hub_head") or 0)
                behind = pos is not None and pos[0] < head
                try:
                    applied = self.pull_once(0.0 if behind or woken else self.settings["feed_wait"])
                except CursorTooOld:
                    self.bootstrap()
                    applied = 1
                self._applied_since_sample += applied
                if not applied and not behind and self.settings["feed_wait"] < 1.0:
                    # without a long-poll an idle node would ask again at once, in a busy loop
                    self._pause(stop, 1.0)
                if not behind:
                    # uploads go between feed requests: a stuck upload never holds up the feed,
                    # and an item the hub rejects is quarantined instead of blocking the rest
                    try:
                        self.upload_once()
                    except EdgenodeError as exc:
                        log.warning("upload: %s", exc)
                        self.record_error(exc)
                if woken or time.monotonic() - last_hb >= min(HEARTBEAT_MAX, self.settings["heartbeat_interval"]):
                    self.send_heartbeat()
                    last_hb = time.monotonic()
                delays = backoff_delays(self.settings["backoff_initial"], self.settings["backoff_max"])
            except SchemaTooNew as exc:
                # Keep serving the data we have; do not apply what we cannot understand.
                log.error("%s", exc)
                self.record_error(exc)
                schema_blocked = True
            except EdgenodeError as exc:
                self.record_error(exc)
                if isinstance(exc, HubUnreachable) or (isinstance(exc, SyncError) and exc.retryable):
                    self.mode.hub_failed(type(exc).__name__)
                delay = next(delays)
                log.warning("sync: %s (retry in %.1fs)", exc, delay)
                self._pause(stop, delay)

    # ------------------------------------------------------------ verify

    def verify(self, repair: bool = True) -> VerifyResult:
        """Compare bucket digests with the hub at the same sequence; repair what differs."""
        buckets = self.settings["digest_buckets"]
        result: VerifyResult | None = None
        for _ in range(5):
            self.catch_up()
            theirs = self.client.digest(buckets)
            pos = self.replica.position()
            assert pos is not None
            if theirs.get("seq") != pos[0]:
                continue  # the hub moved on meanwhile: catch up and compare again
            with self.replica.session() as conn:
                conn.execute("BEGIN")
                ours = registry.compute_digest(conn, buckets)
                conn.execute("COMMIT")
            hub_digests = theirs.get("digests")
            if not isinstance(hub_digests, list) or len(hub_digests) != buckets:
                raise WireError("hub digest has the wrong number of buckets")
            differing = [i for i in range(buckets) if ours[i] != hub_digests[i]]
            if result is None:
                result = VerifyResult(identical=not differing, seq=pos[0], differing=differing)
            if not differing:
                self.state.update(last_verify_at=utcnow(), last_verify_ok=result.identical, last_verify_seq=pos[0])
                return result
            if not repair:
                break
            if len(differing) > self.settings["rebootstrap_fraction"] * buckets:
                log.warning("verify: %d of %d buckets differ: re-bootstrapping", len(differing), buckets)
                remove_tree(self.staging)
                self.bootstrap(allow_older=True)
                result.rebootstrapped = True
                continue
            for b in differing:
                seq, chain, rows = self.client.bucket(b, buckets)
                if seq != pos[0]:
                    break
                result.repaired_rows += self.replica.replace_bucket(b, buckets, seq, chain, rows)
            log.warning("verify: repaired %d bucket(s)", len(differing))
        if result is None:
            raise SyncError("the hub kept moving; could not compare at one sequence", retryable=True)
        self.state.update(last_verify_at=utcnow(), last_verify_ok=False)
        return result

    # ------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """Mode, cursor, hub head, lag, queue depth, last sync and error, backup state."""
        return node_status(self.data, self.settings)


def node_status(data: Path, settings: Settings) -> dict[str, Any]:
    """The status JSON of the node in `data` (what `node status --json` prints)."""
    st = NodeState(data / "node.db").all()
    queue = Outbox(data / "node.db").summary()
    replica = Replica(data / "replica")
    meta: dict[str, str] = {}
    if replica.exists():
        with replica.session() as conn:
            meta = Replica.meta(conn)
    cursor = int(meta["cursor"]) if meta else None
    hub_head = st.get("hub_head")
    lag_changes = max(0, (hub_head or 0) - (cursor or 0)) if cursor is not None else None
    lag_seconds: float | None = None
    if lag_changes == 0:
        lag_seconds = 0.0
    elif lag_changes and st.get("fetched_at"):
        age = (_dt.datetime.now(_dt.UTC) - parse_time(st["fetched_at"])).total_seconds()
        lag_seconds = round(float(st.get("next_age") or 0.0) + age, 3)
    mode = st.get("mode") or "online"
    if cursor is None or pid_alive(st.get("bootstrapping")):
        # a re-bootstrap in progress (the flag holds the pid doing it; a killed one does not count)
        mode = "bootstrapping"
    elif mode != "offline" and not pid_alive(st.get("serving_pid")) and st.get("last_contact_at"):
        # no `node serve` is watching the link: judge by the last successful contact
        silent = (_dt.datetime.now(_dt.UTC) - parse_time(st["last_contact_at"])).total_seconds()
        if silent > max(OFFLINE_AFTER, settings["feed_wait"] + settings["request_timeout"]):
            mode = "offline"
    return {
        "mode": mode,
        "node_id": settings["node_id"],
        "lg_code": settings["lg_code"],
        "cursor": cursor,
        "hub_head": hub_head,
        "lag_changes": lag_changes,
        "lag_seconds": lag_seconds,
        "queue_depth": queue["by_state"]["pending"] + queue["by_state"]["sent"],
        "queue": queue,
        "last_sync_at": st.get("last_sync_at"),
        "last_error": st.get("last_error"),
        "last_error_hint": st.get("last_error_hint"),
        "snapshot_seq": int(meta["snapshot_seq"]) if meta else None,
        "last_verify_at": st.get("last_verify_at"),
        "last_verify_ok": st.get("last_verify_ok"),
        "schema": wire.SCHEMA_VERSION,
        "backup": backup_status(data, settings),
        "serving_pid": st.get("serving_pid"),
        "mode_since": st.get("mode_since"),
        "mode_reason": st.get("mode_reason"),
        "forced_offline": bool(st.get("forced_offline")),
        "data_as_of": meta.get("last_tx_at") or meta.get("bootstrapped_at") if meta else None,
        "inbox": st.get("inbox"),
        "config": st.get("config"),
        "version": __version__,
        **watchdog.health(st, queue, cursor, hub_head, settings["stale_alarm_after"]),
    }
