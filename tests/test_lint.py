"""ruff and mypy (strict) are part of the test suite, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    p = _run("ruff", "check", "edgenode", "tests", "bench")
    assert p.returncode == 0, p.stdout + p.stderr
    p = _run("ruff", "format", "--check", "edgenode", "tests", "bench")
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy_strict_finds_nothing() -> None:
    p = _run("mypy")
    assert p.returncode == 0, p.stdout + p.stderr
