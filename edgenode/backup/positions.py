"""Where each backed-up database is: locally captured vs. in the backup target.

Litestream 0.5 turns each SQLite transaction into an LTX file named ``MINTXID-MAXTXID.ltx``; it
keeps the newest ones beside the database (``.NAME-litestream/ltx/0/``) and copies them to the
target (``TARGET/NAME/ltx/LEVEL/``). Comparing the highest TXID on each side tells whether a
captured change has reached the backup, and the file times say since when it has been waiting.
A file target is read directly; an S3 target is asked through ``litestream ltx``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgenode.backup.config import Database


@dataclass(frozen=True)
class Ltx:
    """One LTX file: its TXID range and modification time (the transaction's time in a file replica)."""

    min_txid: int
    max_txid: int
    mtime: float


def _parse(name: str) -> tuple[int, int] | None:
    stem = name.removesuffix(".ltx")
    if stem == name or "-" not in stem:
        return None
    lo, _, hi = stem.partition("-")
    try:
        return int(lo, 16), int(hi, 16)
    except ValueError:
        return None


def scan(folder: Path) -> list[Ltx]:
    """The LTX files in one folder (missing folder: none)."""
    out = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for e in entries:
        r = _parse(e.name)
        if r is None:
            continue
        try:
            out.append(Ltx(r[0], r[1], e.stat().st_mtime))
        except FileNotFoundError:
            continue  # compacted away while we looked
    return out


def local(db: Database) -> list[Ltx]:
    """LTX files Litestream has captured beside the database (level 0)."""
    return scan(db.path.parent / f".{db.path.name}-litestream" / "ltx" / "0")


def in_file_target(root: Path, db: Database) -> Ltx | None:
    """The newest LTX file of `db` in a file target, over every compaction level."""
    best: Ltx | None = None
    try:
        levels = list(os.scandir(root / db.name / "ltx"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    for level in levels:
        for ltx in scan(Path(level.path)):
            if best is None or ltx.max_txid > best.max_txid:
                best = ltx
    return best


def in_any_target(litestream: Path, config: Path, db: Database, env: dict[str, str]) -> Ltx | None:
    """The newest LTX file of `db` in its target, asked of Litestream (works for S3 too)."""
    p = subprocess.run(
        [str(litestream), "ltx", "-json", "-level", "all", "-no-expand-env", "-config", str(config), str(db.path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    if p.returncode != 0:
        raise OSError((p.stderr or p.stdout).strip()[-300:] or f"litestream ltx exited {p.returncode}")
    best: Ltx | None = None
    for row in json.loads(p.stdout or "[]") or []:
        hi = int(str(row.get("max_txid", "0")), 16)
        lo = int(str(row.get("min_txid", "0")), 16)
        when = iso_seconds(str(row.get("timestamp") or ""))
        if best is None or hi > best.max_txid:
            best = Ltx(lo, hi, when)
    return best


def iso_seconds(ts: str) -> float:
    """A UTC time as Litestream writes it (``2026-11-27T02:50:15.123456789Z``) in epoch seconds; 0 if unreadable."""
    try:
        return _dt.datetime.fromisoformat(ts[:19] + "+00:00").timestamp()
    except ValueError:
        return 0.0
