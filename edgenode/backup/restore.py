"""`edgenode node restore`: rebuild a node's data folder from its backup, prove it, reconcile it.

The restore never writes into the live data folder: it fills a new, empty folder with
``litestream restore`` (latest, or as of a point in time), writes ``replica/CURRENT`` and the
configuration files saved in node.db, then proves the result:

1. every restored database passes SQLite's integrity check, the audit log's hash chain holds and
   the queue's hash chain holds;
2. the hub's ledger is applied to the queue (`reconcile`), so nothing is sent twice and nothing
   the hub holds is forgotten; the 発行番号 counter moves past every number known;
3. the registry replica's bucket digests equal the hub's (no repair: a difference is reported).

Proven means all three passed. Without the hub, 1 passes alone and the restore says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from edgenode import settings as settings_mod
from edgenode.audit import AuditLog
from edgenode.backup import config, reconcile
from edgenode.backup.config import Database
from edgenode.durable import fsync_dir, utcnow
from edgenode.errors import ConfigError, EdgenodeError, HubUnreachable, StoreError
from edgenode.hub.uploads import item_hash
from edgenode.settings import NODE_SETTINGS, Settings
from edgenode.sync.state import NodeState

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def _settings(data: Path, backup_path: str | None) -> Settings:
    flags = {"backup_path": backup_path} if backup_path else {}
    toml = data / "node.toml"
    return settings_mod.load(NODE_SETTINGS, toml if toml.exists() else None, os.environ, flags)


def _check_target_folder(data: Path, to: Path) -> None:
    if to.exists():
        if not to.is_dir():
            raise ConfigError(f"--to {to} exists and is not a folder")
        if any(to.iterdir()):
            raise ConfigError(f"--to {to} is not empty: restore only into a new or empty folder")
    if data.exists() and to.resolve() == data.resolve():
        raise ConfigError("--to must be a new folder, not the live data folder")


def _litestream_restore(
    cfg: Path, db: Database, out: Path, timestamp: str | None, env: dict[str, str], *, optional: bool = False
) -> dict[str, Any] | None:
    args = [str(config.binary()), "restore", "-no-expand-env", "-config", str(cfg), "-json", "-o", str(out)]
    if timestamp:
        args += ["-timestamp", timestamp]
    if optional:
        args += ["-if-replica-exists"]
    p = subprocess.run([*args, str(db.path)], capture_output=True, text=True, timeout=3600, env=env)
    if p.returncode != 0:
        raise StoreError(f"restoring {db.name} failed: {(p.stderr or p.stdout).strip()[-400:]}")
    if not out.exists():
        return None  # optional and not in the backup
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        doc = {}
    return doc if isinstance(doc, dict) else {}


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _queue_chain(path: Path) -> tuple[int, str | None, dict[str, Any]]:
    """(items, first problem, backup point) of the restored queue's hash chain."""
    conn = sqlite3.connect(path)
    try:
        have = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'outbox'").fetchone()
        rows = conn.execute("SELECT seq, item, hash FROM outbox ORDER BY seq").fetchall() if have else []
        audit_at = None
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_log'").fetchone():
            audit_at = conn.execute("SELECT max(at) FROM audit_log").fetchone()[0]
    finally:
        conn.close()
    prev = "0" * 64
    last_at = None
    for i, (seq, raw, digest) in enumerate(rows, start=1):
        item = json.loads(raw)
        if seq != i or item.get("prev") != prev or item_hash(item) != digest or item.get("hash") != digest:
            return len(rows), f"queue item {seq} breaks the hash chain", {}
        prev, last_at = digest, item.get("created_at")
    return len(rows), None, {"last_item": len(rows), "last_item_at": last_at, "last_audit_at": audit_at}


def _restore_files(data: Path, to: Path, settings: Settings, timestamp: str | None) -> dict[str, Any]:
    env = config.child_env(settings)
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edgenode-restore-") as tmp:
        cfg = Path(tmp) / "litestream.json"

        def one(db: Database, out: Path, optional: bool = False) -> dict[str, Any] | None:
            config.write(cfg, config.build(data, settings, [db]))
            return _litestream_restore(cfg, db, out, timestamp, env, optional=optional)

        node = one(Database("node", data / "node.db"), to / "node.db")
        report["node_db_txid"] = (node or {}).get("txid")
        serial = one(Database("serial", data / "serial.db"), to / "serial.db", optional=True)
        report["serial_db_txid"] = (serial or {}).get("txid")
        conn = sqlite3.connect(to / "node.db")
        try:
            files = conn.execute("SELECT name, content FROM backup_file").fetchall()
            state = dict(conn.execute("SELECT k, v FROM state WHERE k LIKE 'backup_replica%'").fetchall())
        except sqlite3.OperationalError:
            files, state = [], {}
        finally:
            conn.close()
        for name, content in files:
            if name in ("node.toml", "certs.toml"):
                fd = os.open(to / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(content)
        if not (to / "node.toml").exists() and (data / "node.toml").exists():
            (to / "node.toml").write_bytes((data / "node.toml").read_bytes())
            os.chmod(to / "node.toml", 0o600)
        report["config_files"] = sorted(p.name for p in to.glob("*.toml"))
        report["replica"] = None
        (to / "replica").mkdir()
        for key in ("backup_replica", "backup_replica_previous"):
            name = json.loads(state[key]) if state.get(key) else None
            if not isinstance(name, str) or not name.startswith("replica/"):
                continue
            file_name = name.removeprefix("replica/") + ".db"
            try:
                done = one(Database(name, data / "replica" / file_name), to / "replica" / file_name, optional=True)
            except StoreError as exc:
                report["replica_error"] = str(exc)
                continue
            if done is None:
                continue
            pointer = to / "replica" / "CURRENT"
            pointer.write_text(file_name + "\n", encoding="ascii")
            fsync_dir(to / "replica")
            report["replica"] = file_name
            report["replica_txid"] = done.get("txid")
            break
    return report


def _forget_the_old_process(to: Path, settings: Settings, timestamp: str | None) -> None:
    """Drop what described the old machine's processes: their pids, and the clerks' sessions."""
    conn = sqlite3.connect(to / "node.db")
    try:
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'auth_session'").fetchone():
            conn.execute("DELETE FROM auth_session")  # a cookie from before the loss opens nothing
        conn.execute("COMMIT")
    finally:
        conn.close()
    tgt = config.target(settings)
    NodeState(to / "node.db").update(
        serving_pid=None,
        bootstrapping=None,
        restored_at=utcnow(),
        restored_from=tgt.where if tgt else None,
        restored_as_of=timestamp or "latest",
    )


def restore(data: Path, to: Path, timestamp: str | None = None, *, backup_path: str | None = None) -> dict[str, Any]:
    """Restore into `to`, prove it and reconcile it with the hub; return the report (`proven`)."""
    from edgenode.sync.nodeconfig import load_node_settings
    from edgenode.sync.syncer import Syncer

    settings = _settings(data, backup_path)
    if config.target(settings) is None:
        raise ConfigError("no backup is configured: give --backup-path or set backup_path / backup_s3_bucket")
    if timestamp and not _TIMESTAMP.match(timestamp):
        raise ConfigError(f"--timestamp must be a UTC time like 2026-11-27T03:00:00Z, got {timestamp!r}")
    _check_target_folder(data, to)
    created = not to.exists()
    to.mkdir(parents=True, exist_ok=True)
    os.chmod(to, 0o700)
    report: dict[str, Any] = {"restored_to": str(to), "timestamp": timestamp, "started_at": utcnow()}
    try:
        report.update(_restore_files(data, to, settings, timestamp))
    except BaseException:
        # nothing half-restored stays behind: the folder is as it was given (new, or empty)
        for p in to.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        if created:
            to.rmdir()
        raise

    # 1. the files themselves
    checks = {p.name: _integrity(p) for p in [to / "node.db", to / "serial.db", *to.glob("replica/*.db")] if p.exists()}
    audit_n, audit_problem = AuditLog(to / "node.db").verify()
    items, queue_problem, point = _queue_chain(to / "node.db")
    report.update(
        integrity=checks,
        audit_entries=audit_n,
        audit_problem=audit_problem.reason if audit_problem else None,
        queue_items=items,
        queue_problem=queue_problem,
        backup_point=point,
    )
    local_ok = all(v == "ok" for v in checks.values()) and audit_problem is None and queue_problem is None
    _forget_the_old_process(to, settings, timestamp)
    report["files_ok"] = local_ok
    node_settings = load_node_settings(to, flags={"backup_path": backup_path} if backup_path else None)
    # numbers printed after the backup point may never have reached the hub: never reuse them
    conn = sqlite3.connect(to / "node.db")
    try:
        known = reconcile.highest_serial(conn)
    except sqlite3.Error:
        known = 0
    finally:
        conn.close()
    before, after = reconcile.advance_serials(to / "serial.db", known, node_settings["restore_serial_skip"])
    report["serial_counter"] = {"restored": before, "now": after}
    report.update(proven=False, hub_unreachable=False, reconcile=None, digest=None)
    if not local_ok:
        return report

    # 2. and 3. against the hub
    syncer = Syncer(to, node_settings)
    try:
        from edgenode.sync.client import HttpFeedClient

        client = syncer.client
        assert isinstance(client, HttpFeedClient)
        rec = reconcile.reconcile(to, client, node_settings["node_id"])
        _, after2 = reconcile.advance_serials(
            to / "serial.db", rec["highest_serial_known"], node_settings["restore_serial_skip"]
        )
        if after2 > after:
            report["serial_counter"] = {"restored": before, "now": after2}
        report["reconcile"] = rec
        syncer.audit.append(
            "restore",
            "edgenode node restore",
            {
                "timestamp": timestamp,
                "backup_last_item": rec["backup_last_item"],
                "possibly_lost": [x["seq"] for x in rec["possibly_lost"]],
                "serial_now": report["serial_counter"]["now"],
            },
        )
        if not syncer.replica.exists():
            report["rebootstrapped"] = True
            syncer.bootstrap()
        result = syncer.verify(repair=False)
        report["digest"] = {"identical": result.identical, "seq": result.seq, "differing": result.differing[:20]}
        report["proven"] = result.identical
    except HubUnreachable as exc:
        report["hub_unreachable"] = True
        report["hub_error"] = str(exc)
    except EdgenodeError as exc:
        report["hub_error"] = f"{type(exc).__name__}: {exc}"
    finally:
        syncer.close()
    report["finished_at"] = utcnow()
    return report
