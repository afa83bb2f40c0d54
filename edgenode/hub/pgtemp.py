"""A throwaway PostgreSQL cluster for tests and benchmarks, owned by the run that starts it.

Uses the Debian ``postgresql`` package's binaries (``/usr/lib/postgresql/<ver>/bin``) without
touching any system cluster: ``initdb`` into a fresh temporary folder, ``postgres`` on a free
loopback port with its socket in that folder, stopped and deleted at the end. PostgreSQL
refuses to run as root, so as root the cluster belongs to the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from edgenode.errors import ConfigError, StoreError


def find_bindir() -> Path:
    """The newest installed PostgreSQL server's bin folder; `ConfigError` if there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise ConfigError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): apt-get install postgresql"
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempCluster:
    """One PostgreSQL server on 127.0.0.1 for the life of this object (use as a context manager)."""

    def __init__(self, max_connections: int = 200) -> None:
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="edgenode-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.max_connections = max_connections
        self.proc: subprocess.Popen[bytes] | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        """URL of the ``postgres`` database (superuser ``postgres``, trust on loopback)."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        """URL of one database of this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> TempCluster:
        """initdb and start the server; return once it accepts connections."""
        subprocess.run(
            [
                *self._as,
                *(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"),
                *("-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"),
            ],
            check=True,
            capture_output=True,
        )
        log = open(self.root / "server.log", "wb")
        self.proc = subprocess.Popen(
            [
                *self._as,
                *(str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.root), "-p", str(self.port)),
                *("-c", "listen_addresses=127.0.0.1", "-c", f"max_connections={self.max_connections}"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
            )
            if ready.returncode == 0:
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.root / "server.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise StoreError(f"the temporary PostgreSQL did not start:\n{tail}")
            time.sleep(0.1)

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL.

        Its default collation is ICU's root locale, as a datacenter's databases typically sort
        by language rules rather than by bytes: anything that relied on byte order without
        saying so would show up here.
        """
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C.UTF-8'"
                ).format(sql.Identifier(name))
            )
        return self.url_for(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if self.proc is not None:
            if self.proc.poll() is None:
                subprocess.run(
                    [*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                    capture_output=True,
                    timeout=60,
                )
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
