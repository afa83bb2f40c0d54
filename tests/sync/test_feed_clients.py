"""One contract, every FeedClient: HTTP to a real hub, and snapshot files on media."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from edgenode import wire
from edgenode.errors import CursorTooOld, HubRejected, HubUnreachable, SchemaTooNew, SyncError, WireError
from edgenode.signing import HubKey
from edgenode.sync.client import DirectoryFeedClient, FeedClient, HttpFeedClient
from edgenode.sync.nodeconfig import load_node_settings
from edgenode.sync.syncer import Syncer
from tests.integration.conftest import LG, HubProc, make_node, node_export, run


def _http(hub: HubProc, node: Path, tmp_path: Path) -> FeedClient:
    s = load_node_settings(node)
    return HttpFeedClient(hub.url, s["token"], LG)


def _directory(hub: HubProc, node: Path, tmp_path: Path) -> FeedClient:
    media = tmp_path / "usb"
    media.mkdir()
    run("hub", "snapshot", "--data", str(hub.data), "--lg-code", LG, "--out", str(media / "kadogawa.ensnap"))
    return DirectoryFeedClient(media)


@pytest.mark.parametrize("make_client", [_http, _directory], ids=["http", "directory"])
def test_every_feed_client_bootstraps_an_identical_replica(
    make_client: Callable[[HubProc, Path, Path], FeedClient], hub: HubProc, tmp_path: Path
) -> None:
    hub.simulate(15, seed=2)
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    client = make_client(hub, node, tmp_path)
    syncer = Syncer(node, load_node_settings(node), client)
    manifest = wire.verify_manifest(client.manifest(), lg_code=LG, verifier=syncer.verifier)
    for i in range(len(manifest.chunks)):
        wire.check_chunk(manifest, i, client.chunk(manifest.snap_id, i))
    seq = syncer.bootstrap()
    assert seq == manifest.seq > 0
    assert node_export(node) == hub.export()
    client.close()


def _mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> HttpFeedClient:
    return HttpFeedClient("http://hub.invalid", "en1.x", LG, transport=httpx.MockTransport(handler), timeout=2)


def test_http_faults_become_sync_errors_with_the_right_retry_advice() -> None:
    def server_error(r: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": "boom"})

    with pytest.raises(SyncError) as e:
        _mock_client(server_error).feed(0, 0, 4096)
    assert e.value.retryable

    def timeout(r: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow link", request=r)

    with pytest.raises(HubUnreachable):
        _mock_client(timeout).feed(0, 0, 4096)

    def gone(r: httpx.Request) -> httpx.Response:
        return httpx.Response(410, json={"error": "cursor_too_old"})

    with pytest.raises(CursorTooOld):
        _mock_client(gone).feed(0, 0, 4096)

    def forbidden(r: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "this token belongs to another municipality"})

    with pytest.raises(HubRejected) as e2:
        _mock_client(forbidden).manifest()
    assert not e2.value.retryable and "another municipality" in e2.value.hint


class _SchemaTwoFeed:
    """A fake feed (the one test double at this seam) that speaks a future schema."""

    def __init__(self, key: HubKey) -> None:
        self.key = key

    def feed(self, after: int, wait: float, max_bytes: int) -> bytes:
        header = {"type": "batch", "schema": wire.SCHEMA_VERSION + 1, "lg_code": LG}
        return wire.encode_frame(wire.BATCH_MAGIC, wire.sign_header(header, self.key.sign), b"")

    def close(self) -> None:
        pass


def test_a_newer_schema_stops_following_and_keeps_the_old_data(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    run("node", "sync", "--data", str(node), "--once")
    before = node_export(node)
    key = HubKey.load_or_create(hub.data / "keys" / "hub_ed25519.pem")
    syncer = Syncer(node, load_node_settings(node), _SchemaTwoFeed(key))  # type: ignore[arg-type]
    with pytest.raises(SchemaTooNew) as e:
        syncer.pull_once()
    syncer.record_error(e.value)
    status = syncer.status()
    assert "upgrade edgenode" in status["last_error"] and f"schema {wire.SCHEMA_VERSION + 1}" in status["last_error"]
    assert node_export(node) == before


def test_a_snapshot_from_another_hub_key_is_refused(hub: HubProc, tmp_path: Path) -> None:
    node = make_node(tmp_path, hub.url, hub.token("node1"))
    forger = HubKey.load_or_create(tmp_path / "forger.pem")
    client = HttpFeedClient(hub.url, load_node_settings(node)["token"], LG)
    manifest = client.manifest()
    forged = wire.sign_header({**manifest, "seq": manifest["seq"]}, forger.sign)
    syncer = Syncer(node, load_node_settings(node), client)
    with pytest.raises(WireError, match="signature"):
        wire.verify_manifest(forged, lg_code=LG, verifier=syncer.verifier)
    client.close()
