"""The systemd units: `systemd-analyze verify` accepts them, and they keep the hardening policy.

`verify` checks that ExecStart= names an executable file, and the units name
/opt/edgenode/bin/edgenode, which exists only where the package is installed. So the units are
verified in a throwaway root (`--root`) holding systemd's own units from this machine, the
edgenode units, and a stand-in executable at that path; `test_deb.py` verifies them again in the
unpacked package, against the real program. `verify` exits 0 even on unknown keys and bad
values (it only prints them), so its output must be empty.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packaging.debroot import REPO

UNITS = sorted((REPO / "systemd").glob("*.service"))
SYSTEMD_UNITS = Path("/lib/systemd/system")


def verify_root(root: Path, units: list[Path], program: Path | None) -> subprocess.CompletedProcess[str]:
    """Run `systemd-analyze verify` on `units` installed into `root` (made if needed).

    `program`: put a stand-in executable at /opt/edgenode/bin/edgenode (None: rely on the root's).
    """
    if shutil.which("systemd-analyze") is None or not (SYSTEMD_UNITS / "sysinit.target").exists():
        pytest.fail("systemd-analyze and systemd's units are needed: apt-get install systemd (./dev does)")
    unit_dir = root / "lib" / "systemd" / "system"
    if not (unit_dir / "sysinit.target").exists():
        shutil.copytree(SYSTEMD_UNITS, unit_dir, symlinks=True, dirs_exist_ok=True)
    for u in units:
        if u.parent != unit_dir:
            shutil.copy(u, unit_dir / u.name)
    if program is not None:
        exe = root / "opt" / "edgenode" / "bin" / "edgenode"
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    # --man=no: the man page belongs to the package, which is not installed on this machine
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", *(u.name for u in units)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def directives(unit: Path) -> dict[str, list[str]]:
    """Key -> values of a unit file (keys may repeat)."""
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            k, _, v = line.partition("=")
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_the_units_are_there() -> None:
    assert [u.name for u in UNITS] == ["edgenode-backup.service", "edgenode-hub.service", "edgenode-node.service"]


def test_systemd_analyze_verify_accepts_every_unit_without_a_word(tmp_path: Path) -> None:
    p = verify_root(tmp_path, UNITS, program=Path("stub"))
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stdout + p.stderr


def test_verify_would_catch_a_misspelt_directive_and_a_bad_value(tmp_path: Path) -> None:
    broken = tmp_path / "edgenode-node.service"
    text = (REPO / "systemd" / "edgenode-node.service").read_text()
    broken.write_text(text.replace("ProtectClock=yes", "ProtectClok=yes").replace("PrivateTmp=yes", "PrivateTmp=maybe"))
    p = verify_root(tmp_path / "root", [broken], program=Path("stub"))
    assert "Unknown key 'ProtectClok'" in p.stderr and "Failed to parse boolean value" in p.stderr


def test_verify_would_catch_a_missing_program(tmp_path: Path) -> None:
    p = verify_root(tmp_path, [REPO / "systemd" / "edgenode-node.service"], program=None)
    assert "/opt/edgenode/bin/edgenode is not executable" in p.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_every_unit_runs_confined_as_the_edgenode_user(unit: Path) -> None:
    d = directives(unit)
    data = "/var/lib/edgenode-hub" if "hub" in unit.name else "/var/lib/edgenode"
    assert d["User"] == ["edgenode"] and d["Group"] == ["edgenode"]
    assert d["ExecStart"][0].startswith("/opt/edgenode/bin/edgenode ")
    assert d["ExecStart"][0].endswith(f" --data {data}")
    assert d["ProtectSystem"] == ["strict"]
    # the data folder is the only writable path (StateDirectory= is that same folder)
    assert d["ReadWritePaths"] == [data]
    assert d["StateDirectory"] == [data.removeprefix("/var/lib/")]
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices", "RestrictNamespaces"):
        assert d[key] == ["yes"], key
    assert d["CapabilityBoundingSet"] == [""]
    assert d["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert d["Restart"] == ["on-failure"] and d["RestartSec"]
    assert d["RestartPreventExitStatus"] == ["2"]  # a configuration error is not retried forever
    assert d["EnvironmentFile"][0].startswith("-/etc/edgenode/")
    assert "MemoryDenyWriteExecute" not in d  # would break cffi callbacks (see the unit's comment)
    # the node starts with no network: nothing may wait for network-online.target
    ordering = " ".join(v for k in ("After", "Wants", "Requires", "BindsTo") for v in d.get(k, []))
    assert "network-online.target" not in ordering


@pytest.mark.parametrize("name", ["edgenode-node.service", "edgenode-hub.service"])
def test_servers_report_readiness_and_are_watched(name: str) -> None:
    d = directives(REPO / "systemd" / name)
    assert d["Type"] == ["notify"] and d["NotifyAccess"] == ["main"]
    assert d["WatchdogSec"]


def test_the_backup_unit_does_not_wait_for_a_readiness_it_was_not_promised() -> None:
    d = directives(REPO / "systemd" / "edgenode-backup.service")
    assert d["Type"] == ["exec"]
    assert d["ExecStart"] == ["/opt/edgenode/bin/edgenode node backup --data /var/lib/edgenode"]
