"""The Litestream configuration generated from the node's settings, checked by the real binary.

No S3 service runs here, so the S3 target is tested as far as the configuration goes: what we
write, that Litestream accepts it, and that the credentials travel in the child's environment only.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from edgenode import settings as settings_mod
from edgenode.backup import config
from edgenode.backup.status import backup_status
from edgenode.errors import ConfigError
from edgenode.settings import NODE_SETTINGS, Settings

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def _settings(**values: object) -> Settings:
    return settings_mod.load(NODE_SETTINGS, None, {}, values)


def _databases(binary: Path, cfg: Path) -> list[dict[str, str]]:
    p = subprocess.run(
        [str(binary), "databases", "-json", "-no-expand-env", "-config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return list(json.loads(p.stdout))


def test_a_file_target_config_is_private_and_accepted_by_litestream(tmp_path: Path) -> None:
    s = _settings(backup_path=str(tmp_path / "usb"), backup_sync_interval=0.5)
    dbs = [config.Database("node", tmp_path / "node.db"), config.Database("replica/replica-3-ab", tmp_path / "r.db")]
    cfg = tmp_path / "backup" / "litestream.json"
    config.write(cfg, config.build(tmp_path, s, dbs))
    assert cfg.stat().st_mode & 0o777 == 0o600
    doc = json.loads(cfg.read_text())
    assert doc["dbs"][1]["replica"] == {
        "type": "file",
        "path": str(tmp_path / "usb" / "replica" / "replica-3-ab"),
        "sync-interval": "500ms",
    }
    listed = _databases(config.binary(), cfg)
    assert [d["path"] for d in listed] == [str(tmp_path / "node.db"), str(tmp_path / "r.db")]


def test_an_s3_target_config_names_bucket_endpoint_region_and_holds_no_secret(tmp_path: Path) -> None:
    s = _settings(
        backup_s3_bucket="edgenode-backups",
        backup_s3_path="/454214/honcho-1/",
        backup_s3_endpoint="https://s3.dc.example.lg.jp",
        backup_s3_region="jp-west-1",
        backup_s3_access_key_id="AKIAEXAMPLE",
        backup_s3_secret_access_key=SECRET,
    )
    cfg = tmp_path / "litestream.json"
    config.write(cfg, config.build(tmp_path, s, [config.Database("node", tmp_path / "node.db")]))
    text = cfg.read_text()
    assert SECRET not in text and "AKIAEXAMPLE" not in text
    assert json.loads(text)["dbs"][0]["replica"] == {
        "type": "s3",
        "bucket": "edgenode-backups",
        "path": "454214/honcho-1/node",
        "endpoint": "https://s3.dc.example.lg.jp",
        "force-path-style": True,
        "region": "jp-west-1",
        "sync-interval": "1000ms",
    }
    env = config.child_env(s)
    assert env["LITESTREAM_ACCESS_KEY_ID"] == "AKIAEXAMPLE" and env["LITESTREAM_SECRET_ACCESS_KEY"] == SECRET
    assert SECRET not in repr(s)  # settings never show it
    listed = _databases(config.binary(), cfg)
    assert listed[0]["path"] == str(tmp_path / "node.db")
    assert config.target(s) is not None and config.target(s).where == "s3://edgenode-backups/454214/honcho-1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backup_path": "/mnt/usb", "backup_s3_bucket": "b"}, "not both"),
        ({"backup_path": "relative/dir"}, "absolute"),
        ({"backup_s3_bucket": "b/c"}, "bucket name"),
        ({"backup_s3_bucket": "b", "backup_s3_access_key_id": "AKIA"}, "both"),
    ],
)
def test_a_contradictory_or_malformed_target_is_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.target(_settings(**values))


def test_status_says_not_configured_then_not_running_until_a_supervisor_writes(tmp_path: Path) -> None:
    assert backup_status(tmp_path, _settings())["state"] == "not_configured"
    st = backup_status(tmp_path, _settings(backup_path=str(tmp_path / "usb")))
    assert st["state"] == "not_running" and "node serve" in st["hint"]
    st = backup_status(tmp_path, _settings(backup_path=str(tmp_path / "usb"), backup_in_serve=False))
    assert "edgenode-backup" in st["hint"]
    assert backup_status(tmp_path, _settings(backup_path="x"))["state"] == "error"


def test_a_long_data_folder_gets_a_short_control_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    assert len(str(config.socket_path(deep))) < 108
    assert config.socket_path(tmp_path) == tmp_path.resolve() / "backup" / "litestream.sock"


def test_litestream_lists_the_same_newest_transaction_as_the_folder_shows(tmp_path: Path) -> None:
    # the S3 path asks `litestream ltx`; a file target lets us check it against the folder itself
    import sqlite3

    from edgenode.backup import positions

    db_path = tmp_path / "node.db"
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    s = _settings(backup_path=str(tmp_path / "usb"))
    db = config.Database("node", db_path)
    cfg = tmp_path / "litestream.json"
    config.write(cfg, config.build(tmp_path, s, [db]))
    p = subprocess.run(
        [str(config.binary()), "replicate", "-once", "-no-expand-env", "-config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    on_disk = positions.in_file_target(tmp_path / "usb", db)
    listed = positions.in_any_target(config.binary(), cfg, db, config.child_env(s))
    assert on_disk is not None and listed is not None
    assert listed.max_txid == on_disk.max_txid >= 1
    assert abs(listed.mtime - on_disk.mtime) < 2.0
