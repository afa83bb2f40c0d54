"""The inbox: snapshot files from physical media are waited for, verified whole, then installed or refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgenode.errors import SyncError
from edgenode.hub.hub import Hub
from edgenode.sync.client import DirectoryFeedClient
from edgenode.sync.inbox import Inbox, inbox_folder, is_candidate
from edgenode.sync.nodeconfig import init_node, load_node_settings
from edgenode.sync.syncer import Syncer

LG = "454214"


@dataclass
class Setup:
    hub: Hub
    data: Path
    syncer: Syncer
    inbox: Inbox
    tmp: Path

    def snapshot(self, name: str, lg: str = LG) -> Path:
        out = self.tmp / "media" / name
        out.parent.mkdir(exist_ok=True)
        self.hub.snapshot_file(lg, out)
        return out

    def drop(self, src: Path, name: str | None = None) -> Path:
        dest = self.inbox.folder / (name or src.name)
        dest.write_bytes(src.read_bytes())
        return dest

    def settle(self) -> list[dict[str, Any]]:
        """Two scans a settle period apart: what a file that stopped changing gets."""
        self.inbox.scan(1000.0)
        return self.inbox.scan(1001.0)

    def cursor(self) -> int | None:
        pos = self.syncer.replica.position()
        return None if pos is None else pos[0]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    hub = Hub(tmp_path / "hub")
    hub.init_tenant(LG, "門川町", residents=60, seed=2)
    hub.init_tenant("452017", "延岡市", residents=20, seed=3)
    hub.simulate(LG, 4, 1)
    data = tmp_path / "node"
    init_node(data, "http://127.0.0.1:9", "en1." + "x" * 43, "node1", lg_code=LG, hub_key=hub.store.key().public_b64)
    settings = load_node_settings(data, env={}, flags={"inbox_settle_seconds": 1.0})
    syncer = Syncer(data, settings)
    inbox = Inbox(inbox_folder(data, ""), syncer)
    inbox.ensure()
    yield Setup(hub, data, syncer, inbox, tmp_path)
    syncer.close()


def test_a_file_is_read_only_after_its_size_has_settled(setup: Setup) -> None:
    setup.drop(setup.snapshot("a.ensnap"))
    assert setup.inbox.scan(10.0) == []
    assert setup.inbox.scan(10.5) == [] and setup.cursor() is None
    [result] = setup.inbox.scan(11.0)
    assert result["state"] == "applied" and result["seq"] == 4 == setup.cursor()
    assert (setup.inbox.folder / "done" / "a.ensnap").exists()
    assert not (setup.inbox.folder / "a.ensnap").exists()
    entries = [e for e in setup.syncer.audit.entries() if e["kind"] == "media_import"]
    assert len(entries) == 1 and '"seq":4' in entries[0]["detail"] and '"file":"a.ensnap"' in entries[0]["detail"]
    assert setup.syncer.state.all()["inbox"]["state"] == "applied"


def test_a_file_that_keeps_growing_is_not_read(setup: Setup) -> None:
    whole = setup.snapshot("a.ensnap").read_bytes()
    path = setup.inbox.folder / "a.ensnap"
    path.write_bytes(whole[:100])
    setup.inbox.scan(0.0)
    path.write_bytes(whole[:1000])
    assert setup.inbox.scan(5.0) == []  # changed since the last look: the clock starts again
    assert setup.syncer.state.all().get("inbox") is None


def test_temporary_and_hidden_names_are_not_touched(setup: Setup) -> None:
    snap = setup.snapshot("a.ensnap")
    for name in ("a.ensnap.part", ".a.ensnap", "a.ensnap.tmp", "a.ensnap~", "a.ensnap.crdownload"):
        assert not is_candidate(Path(name))
        setup.drop(snap, name)
    assert setup.settle() == []
    assert setup.cursor() is None and len(list(setup.inbox.folder.iterdir())) == 7  # 5 files + done/ + rejected/


def test_a_short_file_waits_and_installs_once_complete(setup: Setup) -> None:
    whole = setup.snapshot("a.ensnap").read_bytes()
    path = setup.inbox.folder / "a.ensnap"
    for cut in (5, 40, len(whole) // 2):  # inside the magic, inside the manifest, inside the chunks
        path.write_bytes(whole[:cut])
        assert setup.settle() == []
        state = setup.syncer.state.all()["inbox"]
        assert state["state"] == "waiting" and "not complete" in state["reason"], cut
        assert path.exists() and setup.cursor() is None
    path.write_bytes(whole)
    [result] = setup.settle()
    assert result["state"] == "applied" and setup.cursor() == 4


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b, s: b"PK\x03\x04" + b[4:], "not an edgenode snapshot file"),
        (lambda b, s: b[:-40] + bytes([b[-40] ^ 1]) + b[-39:], "does not match its SHA-256"),
        (lambda b, s: b + b"extra", "5 bytes more than its manifest declares"),
        (lambda b, s: s.snapshot("other.ensnap", "452017").read_bytes(), "452017"),
        (lambda b, s: b[:8] + b[8:60].replace(b"{", b"[", 1) + b[60:], "manifest"),
    ],
    ids=["not-a-snapshot", "flipped-bit", "trailing-bytes", "other-town", "broken-manifest"],
)
def test_a_bad_file_is_rejected_with_a_reason_and_kept(setup: Setup, damage: Any, reason: str) -> None:
    good = setup.snapshot("good.ensnap").read_bytes()
    bad = setup.inbox.folder / "bad.ensnap"
    bad.write_bytes(damage(good, setup))
    kept = bad.read_bytes()
    [result] = setup.settle()
    assert result["state"] == "rejected" and reason in result["reason"]
    moved = setup.inbox.folder / "rejected" / "bad.ensnap"
    assert moved.read_bytes() == kept, "a courier's file is never altered or deleted"
    assert reason in (setup.inbox.folder / "rejected" / "bad.ensnap.reason.txt").read_text(encoding="utf-8")
    assert setup.cursor() is None


def test_a_file_not_newer_than_the_replica_is_not_applied(setup: Setup) -> None:
    old = setup.snapshot("old.ensnap")
    setup.hub.simulate(LG, 3, 2)
    setup.syncer.bootstrap(DirectoryFeedClient(setup.snapshot("new.ensnap")))
    assert setup.cursor() == 7
    setup.drop(old)
    setup.drop(setup.snapshot("same.ensnap"))
    results = {r["file"]: r for r in setup.settle()}
    assert results["old.ensnap"]["state"] == "older" and "already at 7" in results["old.ensnap"]["reason"]
    assert results["same.ensnap"]["state"] == "older"
    assert setup.cursor() == 7
    assert (setup.inbox.folder / "done" / "old.ensnap").exists()
    assert "sequence 4" in (setup.inbox.folder / "done" / "old.ensnap.reason.txt").read_text(encoding="utf-8")


def test_the_same_name_brought_twice_keeps_both_files(setup: Setup) -> None:
    snap = setup.snapshot("a.ensnap")
    setup.drop(snap)
    setup.settle()
    setup.drop(snap)
    [result] = setup.settle()
    assert result["state"] == "older"
    assert len(list((setup.inbox.folder / "done").glob("a*.ensnap"))) == 2


def test_an_inbox_on_an_unmounted_stick_is_simply_empty(setup: Setup) -> None:
    away = Inbox(setup.tmp / "media-not-mounted", setup.syncer)
    assert away.scan(0.0) == [] and away.scan(100.0) == []
    assert not (setup.tmp / "media-not-mounted").exists(), "a mount point is not made by the node"


class InterruptedFeed(DirectoryFeedClient):
    """The hub's snapshot over a link that a snapshot file overtakes after the first chunk."""

    def __init__(self, source: Path) -> None:
        super().__init__(source)
        self.syncer: Syncer | None = None
        self.served = 0

    def chunk(self, snap_id: str, index: int) -> bytes:
        self.served += 1
        assert self.syncer is not None
        self.syncer.preempt.set()  # a file arrived in the inbox meanwhile
        return super().chunk(snap_id, index)


def test_a_file_in_the_inbox_takes_over_a_slow_bootstrap_between_chunks(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "hub")
    hub.settings = hub.settings.replace(snapshot_chunk_size=4096)
    hub.init_tenant(LG, "門川町", residents=300, seed=2)
    snap = tmp_path / "s.ensnap"
    hub.snapshot_file(LG, snap)
    data = tmp_path / "node"
    init_node(data, "http://127.0.0.1:9", "en1." + "x" * 43, "node1", lg_code=LG, hub_key=hub.store.key().public_b64)
    feed = InterruptedFeed(snap)
    syncer = Syncer(data, load_node_settings(data, env={}, flags={"inbox_settle_seconds": 0.0}), feed)
    feed.syncer = syncer
    with pytest.raises(SyncError, match="takes over"):
        syncer.bootstrap()
    assert feed.served == 1 and syncer.replica.position() is None
    syncer.preempt.clear()
    inbox = Inbox(inbox_folder(data, ""), syncer)
    (inbox.folder / "s.ensnap").write_bytes(snap.read_bytes())
    inbox.scan(0.0)
    [result] = inbox.scan(0.0)
    assert result["state"] == "applied" and syncer.replica.position() is not None
    assert not syncer.preempt.is_set()


def test_a_file_that_cannot_be_moved_is_handled_once(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    (setup.inbox.folder / "done").rmdir()
    (setup.inbox.folder / "done").write_text("in the way, as a write-protected stick would be\n")
    setup.drop(setup.snapshot("a.ensnap"))
    [result] = setup.settle()
    assert result["state"] == "applied" and setup.cursor() == 4
    assert (setup.inbox.folder / "a.ensnap").exists()
    assert "could not move a.ensnap to done/" in caplog.text
    assert setup.settle() == [] and setup.inbox.scan(2000.0) == []  # not installed or judged again


def test_each_refusal_says_what_to_do(setup: Setup) -> None:
    other_hub = Hub(setup.tmp / "hub2")
    other_hub.init_tenant(LG, "門川町", residents=10, seed=9)
    forged = setup.tmp / "media2" / "forged.ensnap"
    forged.parent.mkdir()
    other_hub.snapshot_file(LG, forged)
    setup.drop(forged)
    good = setup.snapshot("good.ensnap").read_bytes()
    (setup.inbox.folder / "flipped.ensnap").write_bytes(good[:-40] + bytes([good[-40] ^ 1]) + good[-39:])
    setup.drop(setup.snapshot("nobeoka.ensnap", "452017"))
    reasons = {r["file"]: r["reason"] for r in setup.settle()}
    assert "signature" in reasons["forged.ensnap"] and "pinned at `node init`" in reasons["forged.ensnap"]
    assert "copy it again" in reasons["flipped.ensnap"]
    assert "another municipality's nodes" in reasons["nobeoka.ensnap"]
    assert setup.cursor() is None
