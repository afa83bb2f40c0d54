"""Running ``litestream replicate`` as a child and watching that it keeps up.

The supervisor (a thread of `node serve`, or `edgenode node backup` under systemd) writes the
Litestream config from the settings, starts the child, and once a second:

- restarts it with backoff if it died (each restart is counted and the exit is remembered);
- regenerates the config and restarts it when ``replica/CURRENT`` names a new replica file
  (a bootstrap switched files), so the backup always follows the live file;
- asks it over its control socket whether it still answers, and compares, per database, the
  newest transaction captured locally with the newest one in the target;
- writes what it saw to ``DATA/backup/status.json`` (atomically), which `backup_status` reads.

The child dies with its supervisor (PR_SET_PDEATHSIG), and a leftover child of a supervisor
killed with SIGKILL is ended before a new one starts, so two replicators never share a database.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from edgenode.backup import config, positions
from edgenode.backup.config import Database
from edgenode.certs.serial import SerialCounter
from edgenode.durable import open_db, utcnow
from edgenode.errors import ConfigError
from edgenode.settings import Settings
from edgenode.sync.state import NodeState

log = logging.getLogger("edgenode.backup")

#: Files copied into node.db (and so into the backup) so that a restore yields a working node.
CONFIG_FILES = ("node.toml", "certs.toml")
FILES_SQL = (
    "CREATE TABLE IF NOT EXISTS backup_file (name TEXT PRIMARY KEY, content BLOB NOT NULL, sha256 TEXT NOT NULL,"
    " saved_at TEXT NOT NULL)"
)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file (no fsync: it is rewritten every second and only describes the present)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(status, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def save_config_files(data: Path) -> None:
    """Copy node.toml and certs.toml into node.db when they changed (the backup then holds them)."""
    conn = open_db(data / "node.db", FILES_SQL)
    try:
        have = dict(conn.execute("SELECT name, sha256 FROM backup_file").fetchall())
        for name in CONFIG_FILES:
            try:
                content = (data / name).read_bytes()
            except FileNotFoundError:
                continue
            digest = hashlib.sha256(content).hexdigest()
            if have.get(name) != digest:
                conn.execute(
                    "INSERT OR REPLACE INTO backup_file (name, content, sha256, saved_at) VALUES (?, ?, ?, ?)",
                    (name, content, digest, utcnow()),
                )
    finally:
        conn.close()


class Supervisor:
    """Runs and watches one ``litestream replicate`` for a node's data folder."""

    def __init__(self, data: Path, settings: Settings, check_interval: float = 1.0) -> None:
        tgt = config.target(settings)
        if tgt is None:
            raise ConfigError("backup is not configured: set backup_path (or backup_s3_bucket) in node.toml")
        self.data = data
        self.settings = settings
        self.target = tgt
        self.check_interval = check_interval
        self.folder = data / config.FOLDER
        self.config_path = self.folder / config.CONFIG_NAME
        self.status_path = self.folder / config.STATUS_NAME
        self.socket = config.socket_path(data)
        self.proc: subprocess.Popen[bytes] | None = None
        self.dbs: list[Database] = []
        self.restarts = 0
        self.started_at: str | None = None
        self.child_since = 0.0
        self.last_exit: str | None = None
        self.last_exit_at: str | None = None
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self.next_start = 0.0
        self.delay = 1.0
        self.answered_at = 0.0  # monotonic: the control socket last answered
        self.healthy_at = time.time()  # wall: last time everything was in the backup
        self.behind_since: dict[str, float] = {}
        self._remote_cache: dict[str, tuple[float, positions.Ltx | None]] = {}
        self._lock = threading.Lock()
        self._files_saved = time.monotonic()

    # ------------------------------------------------------------ child process

    def _prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.target.kind == "file" and not Path(self.settings["backup_path"]).is_dir():
            raise ConfigError(
                f"backup_path {self.settings['backup_path']} does not exist: is the USB disk / NAS mounted?"
            )
        # both files must exist before Litestream watches them (serial.db appears at the first issuance)
        open_db(self.data / "node.db", FILES_SQL).close()
        SerialCounter(self.data / "serial.db").close()
        save_config_files(self.data)
        self.dbs = config.databases(self.data)
        replica = next((d for d in self.dbs if d.name.startswith("replica/")), None)
        if replica is not None:
            st = NodeState(self.data / "node.db")
            before = st.all().get("backup_replica")
            if before != replica.name:
                st.update(backup_replica=replica.name, backup_replica_previous=before)
        config.write(self.config_path, config.build(self.data, self.settings, self.dbs))
        self._prune()

    def _prune(self) -> None:
        """Drop what replica files that are gone left behind: Litestream's local state, and
        (file target) their backups, except the live one and the one before it (for point-in-time restores)."""
        import shutil

        live = {d.path.name for d in self.dbs}
        for meta in (self.data / "replica").glob(".replica-*.db-litestream"):
            if meta.name[1:].removesuffix("-litestream") not in live:
                shutil.rmtree(meta, ignore_errors=True)
        if self.target.kind != "file":
            return
        st = NodeState(self.data / "node.db").all()
        keep = {st.get("backup_replica"), st.get("backup_replica_previous")}
        for old in (Path(self.settings["backup_path"]) / "replica").glob("replica-*"):
            if f"replica/{old.name}" not in keep:
                shutil.rmtree(old, ignore_errors=True)

    def _end_leftover(self) -> None:
        """End a replicator left running by a supervisor that was killed (same config file)."""
        try:
            old = json.loads(self.status_path.read_text(encoding="utf-8")).get("litestream_pid")
        except (FileNotFoundError, ValueError):
            return
        if not isinstance(old, int) or old <= 0:
            return
        try:
            cmdline = Path(f"/proc/{old}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        if str(self.config_path).encode() in cmdline:
            log.warning("backup: ending the replicator (pid %d) left by an earlier supervisor", old)
            os.kill(old, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{old}").exists():
                    break
                time.sleep(0.1)

    def _start(self) -> None:
        self._prepare()
        binary = config.binary()
        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [str(binary), "replicate", "-no-expand-env", "-config", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=config.child_env(self.settings),
            preexec_fn=_die_with_parent,  # only prctl between fork and exec: no locks taken
        )
        self.started_at = utcnow()
        self.child_since = time.monotonic()
        self.answered_at = time.monotonic()
        threading.Thread(target=self._read_output, args=(self.proc,), name="litestream-log", daemon=True).start()
        log.info("backup: litestream replicating %d database(s) to %s", len(self.dbs), self.target.where)

    def _read_output(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"level": "ERROR" if "error" in line.lower() else "INFO", "msg": line}
            if not isinstance(entry, dict):
                continue
            if str(entry.get("level", "")).upper() in ("ERROR", "WARN"):
                detail = entry.get("error") or entry.get("err") or ""
                msg = f"{entry.get('msg', '')}{': ' + str(detail) if detail else ''}"[:500]
                with self._lock:
                    self.last_error, self.last_error_at = msg, utcnow()
                log.warning("litestream: %s", msg)

    def _stop_child(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # Litestream syncs what it holds on SIGTERM before exiting
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _reap(self) -> bool:
        """True if the child has exited (and remember how)."""
        if self.proc is None:
            return True
        code = self.proc.poll()
        if code is None:
            return False
        self.last_exit = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        self.last_exit_at = utcnow()
        log.error("backup: litestream %s; restarting in %.0fs", self.last_exit, self.delay)
        ran = time.monotonic() - self.child_since
        self.delay = 1.0 if ran > 60 else min(self.delay * 2, 60.0)
        self.next_start = time.monotonic() + (0.0 if ran > 60 else self.delay)
        self.proc = None
        return True

    # ------------------------------------------------------------ watching

    def _answers(self) -> dict[str, dict[str, Any]] | None:
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), timeout=2.0) as c:
                r = c.get("http://litestream/list")
                r.raise_for_status()
                doc = r.json()
        except (httpx.HTTPError, ValueError, OSError):
            return None
        return {str(d.get("path")): d for d in doc.get("databases") or [] if isinstance(d, dict)}

    def _remote(self, db: Database) -> positions.Ltx | None:
        if self.target.kind == "file":
            return positions.in_file_target(Path(self.settings["backup_path"]), db)
        # S3: one listing per database every 10 s at most
        now = time.monotonic()
        cached = self._remote_cache.get(db.name)
        if cached is not None and now - cached[0] < 10:
            return cached[1]
        try:
            pos = positions.in_any_target(config.binary(), self.config_path, db, config.child_env(self.settings))
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            with self._lock:
                self.last_error, self.last_error_at = f"listing the backup failed: {exc}"[:500], utcnow()
            pos = cached[1] if cached else None
        self._remote_cache[db.name] = (now, pos)
        return pos

    def observe(self) -> dict[str, Any]:
        """Look at the child and the databases; return the status (also written to status.json)."""
        now_wall, now = time.time(), time.monotonic()
        alive = self.proc is not None and self.proc.poll() is None
        answers = self._answers() if alive else None
        if answers is not None:
            self.answered_at = now
        stall_after = float(self.settings["backup_stall_after"])
        st: dict[str, Any] = {}
        lag = 0.0
        behind_long = []
        for db in self.dbs:
            key = db.name.split("/")[0] + "_db"
            local = positions.local(db)
            local_txid = max((x.max_txid for x in local), default=0)
            remote = self._remote(db)
            remote_txid = remote.max_txid if remote else 0
            st[f"{key}_local_txid"] = local_txid
            st[f"{key}_backup_txid"] = remote_txid
            st[f"{key}_backup_tx_at"] = (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(remote.mtime)) if remote and remote.mtime else None
            )
            if answers is not None and str(db.path.resolve()) in answers:
                st[f"{key}_last_sync_at"] = answers[str(db.path.resolve())].get("last_sync_at")
            if remote_txid < local_txid:
                waiting = [x.mtime for x in local if x.max_txid > remote_txid]
                since = min(waiting) if waiting else self.behind_since.setdefault(db.name, now_wall)
                self.behind_since.setdefault(db.name, since)
                lag = max(lag, now_wall - since)
                if now_wall - since > stall_after:
                    behind_long.append(db.name)
            else:
                self.behind_since.pop(db.name, None)
        hung = alive and now - self.answered_at > stall_after
        if alive and answers is not None and lag == 0.0:
            self.healthy_at = now_wall
        if not alive or hung or answers is None:
            lag = max(lag, now_wall - self.healthy_at)
        if not alive:
            state, hint = "dead", "the replicator exited; the supervisor restarts it (see last_exit, last_error)"
        elif hung:
            state, hint = "stalled", f"litestream has not answered for {now - self.answered_at:.0f}s (hung?)"
        elif behind_long:
            state = "stalled"
            hint = f"{', '.join(behind_long)}: changes wait more than {stall_after:.0f}s for the backup target"
            if self.target.kind == "file":
                hint += " (is the backup disk full, read-only or gone?)"
        elif answers is None:
            state, hint = "starting", ""
        else:
            state, hint = "running", ""
        with self._lock:
            last_error, last_error_at = self.last_error, self.last_error_at
        return {
            "state": state,
            "hint": hint,
            "target": self.target.where,
            "target_kind": self.target.kind,
            "supervisor_pid": os.getpid(),
            "litestream_pid": self.proc.pid if alive and self.proc else None,
            "litestream_version": config.LITESTREAM_VERSION,
            "litestream_started_at": self.started_at,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_exit_at": self.last_exit_at,
            "last_error": last_error,
            "last_error_at": last_error_at,
            "lag_seconds": round(lag, 3),
            "databases": ", ".join(d.name for d in self.dbs),
            "checked_at": utcnow(),
            "check_interval": self.check_interval,
            "stall_after": stall_after,
            **st,
        }

    # ------------------------------------------------------------ the loop

    def _replica_switched(self) -> bool:
        try:
            now = [d.name for d in config.databases(self.data)]
        except Exception:  # a damaged CURRENT is the sync engine's to report
            return False
        return now != [d.name for d in self.dbs]

    def _lock_folder(self) -> Any:
        """Hold DATA/backup/supervisor.lock: two replicators on one database would fight over it."""
        import fcntl

        f = open(self.folder / "supervisor.lock", "a+")  # held (open) for the supervisor's whole life
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            f.close()
            raise ConfigError(
                f"another backup supervisor runs for {self.data}: with the edgenode-backup unit,"
                " set backup_in_serve = false"
            ) from exc
        return f

    def run(self, stop: threading.Event) -> None:
        """Supervise until `stop` is set; then stop the child (it syncs what it holds first)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = self._lock_folder()
        try:
            self._end_leftover()
            self._loop(stop)
        finally:
            lock.close()

    def _loop(self, stop: threading.Event) -> None:
        first = True
        try:
            while not stop.is_set():
                try:
                    if self._reap() and time.monotonic() >= self.next_start:
                        if not first:
                            self.restarts += 1
                        first = False
                        self._start()
                    elif self.proc is not None and self._replica_switched():
                        log.info("backup: the replica file changed; following it")
                        self._stop_child()
                        self._start()
                    if time.monotonic() - self._files_saved > 10.0:
                        save_config_files(self.data)  # a changed token or 町長名 reaches the backup too
                        self._files_saved = time.monotonic()
                    status = self.observe()
                except (ConfigError, OSError, sqlite3.Error) as exc:
                    log.error("backup: %s", exc)
                    self.next_start = time.monotonic() + 10.0
                    status = {
                        "state": "error",
                        "hint": str(exc),
                        "target": self.target.where,
                        "supervisor_pid": os.getpid(),
                        "restarts": self.restarts,
                        "last_error": str(exc),
                        "last_error_at": utcnow(),
                        "checked_at": utcnow(),
                        "check_interval": self.check_interval,
                        "lag_seconds": round(time.time() - self.healthy_at, 3),
                    }
                write_status(self.status_path, status)
                stop.wait(self.check_interval)
        finally:
            self._stop_child()
            try:
                final = self.observe()
            except (OSError, sqlite3.Error):
                final = {"target": self.target.where}
            final.update(state="stopped", hint="the backup supervisor is not running", litestream_pid=None)
            write_status(self.status_path, final)
