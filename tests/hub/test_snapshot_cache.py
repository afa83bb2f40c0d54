"""The hub keeps a snapshot that a slow node is still downloading."""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgenode.hub.snapshot import SnapshotCache
from edgenode.hub.store import HubStore
from tests.hub.test_store import LG, _commit_people


def test_snapshots_being_downloaded_outlive_newer_ones(tmp_path: Path, hub_db: str) -> None:
    store = HubStore(tmp_path / "hub", hub_db)
    store.create()
    tenant = store.add_tenant(LG, "門川町")
    cache = SnapshotCache(store, store.key(), chunk_size=4096, max_age=0, keep=1, hold=3600)
    _commit_people(tenant, 1, 20)
    first = cache.current(LG)
    cache.chunk(LG, first["snap_id"], 0)  # a node is downloading it
    _commit_people(tenant, 100, 5)
    second = cache.current(LG)
    assert second["snap_id"] != first["snap_id"]
    assert cache.chunk(LG, first["snap_id"], 0)  # still there for the slow node
    _commit_people(tenant, 200, 5)
    # a snapshot nobody read for longer than the hold is deleted once superseded
    old = store.snapshot_dir / LG / second["snap_id"]
    past = time.time() - 7200
    os.utime(old / "manifest.json", (past, past))
    third = cache.current(LG)
    assert third["seq"] == tenant.head()
    assert not old.exists()
    assert (store.snapshot_dir / LG / first["snap_id"]).exists()
