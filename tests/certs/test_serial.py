"""発行番号: format, one number per copy, no number ever handed out twice (even after kill -9)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgenode.certs.config import CertConfig
from edgenode.certs.serial import SerialCounter, format_serial
from tests.certs.conftest import config_for

ROOT = Path(__file__).resolve().parents[2]
RESERVE_FOREVER = """
import sys
from edgenode.certs.serial import SerialCounter
counter = SerialCounter(sys.argv[1])
while True:
    print(*counter.reserve(int(sys.argv[2])), flush=True)
"""


def test_serial_has_the_standard_parts_in_order(config: CertConfig) -> None:
    text = format_serial(config, dt.date(2026, 11, 27), 123, 1, 2)
    assert text == "20261127 門川町 kadogawa-honcho-1 プリンタ001 000123 1/2"


def test_serial_names_the_configured_printer_and_grows_past_its_width(tmp_path: Path) -> None:
    cfg = config_for(tmp_path, printer_no=12, serial_digits=3)
    assert (
        format_serial(cfg, dt.date(2026, 1, 5), 1234, 3, 3) == "20260105 門川町 kadogawa-honcho-1 プリンタ012 1234 3/3"
    )


def test_reserve_hands_out_consecutive_numbers_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "serial.db"
    with SerialCounter(path) as c:
        assert c.reserve(1) == [1]
        assert c.reserve(3) == [2, 3, 4]
    with SerialCounter(path) as c:
        assert c.last() == 4
        assert c.reserve(2) == [5, 6]
    with pytest.raises(ValueError):
        SerialCounter(path).reserve(0)


def test_counter_commits_with_synchronous_full_in_table_cert_serial(tmp_path: Path) -> None:
    c = SerialCounter(tmp_path / "serial.db")
    assert c._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert c._db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall() == [("cert_serial",)]


def _spawn(path: Path, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RESERVE_FOREVER, str(path), str(n)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _numbers_seen(proc: subprocess.Popen[str], at_least: int) -> list[int]:
    """Read numbers the process printed until `at_least`, SIGKILL it, then read what is left."""
    assert proc.stdout is not None
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while len(seen) < at_least and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += [int(x) for x in line.split()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # Read the rest through the same buffered reader as above (communicate() with a timeout would
    # read the raw pipe and skip what is buffered here), and drop a line the kill cut short.
    rest = proc.stdout.read()
    proc.stdout.close()
    complete, _, _cut = rest.rpartition("\n")
    for line in complete.splitlines():
        seen += [int(x) for x in line.split()]
    assert proc.returncode == -signal.SIGKILL
    return seen


def test_killed_process_never_causes_a_number_to_be_handed_out_twice(tmp_path: Path) -> None:
    path = tmp_path / "serial.db"
    seen = _numbers_seen(_spawn(path, 3), at_least=150)
    assert len(seen) >= 150
    assert len(seen) == len(set(seen))
    with SerialCounter(path) as c:
        after = c.reserve(5)
    assert min(after) > max(seen)


def test_two_processes_on_one_counter_never_share_a_number(tmp_path: Path) -> None:
    path = tmp_path / "serial.db"
    SerialCounter(path).close()  # create the table before both start
    a, b = _spawn(path, 2), _spawn(path, 5)
    seen = _numbers_seen(a, at_least=100) + _numbers_seen(b, at_least=100)
    assert len(seen) == len(set(seen))
