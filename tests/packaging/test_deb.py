"""The .deb: built by the one documented command, lintian-clean, laid out as the README says."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgenode import __version__
from tests.packaging.debroot import REPO
from tests.packaging.test_units import UNITS, verify_root

pytestmark = pytest.mark.slow


def _field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def unpacked(built_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unpacked")
    subprocess.run(["dpkg-deb", "-x", str(built_deb), str(root)], check=True)
    return root


def test_the_package_is_named_for_its_version_and_architecture(built_deb: Path) -> None:
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    assert built_deb.name == f"edgenode_{__version__}_{arch}.deb"
    assert _field(built_deb, "Version") == __version__


def test_it_depends_on_python_pango_and_the_japanese_fonts(built_deb: Path) -> None:
    depends = [d.strip().split(" ")[0] for d in _field(built_deb, "Depends").split(",")]
    for pkg in (
        "python3.11",
        "python3",
        "adduser",
        "libc6",
        "libpango-1.0-0",
        "libpangoft2-1.0-0",
        "libharfbuzz-subset0",
        "fonts-ipaexfont-mincho",
        "fonts-ipaexfont-gothic",
    ):
        assert pkg in depends, pkg
    assert "python3 (>= 3.11)" in _field(built_deb, "Depends")


def test_lintian_finds_no_error_and_no_warning(built_deb: Path) -> None:
    if shutil.which("lintian") is None:
        pytest.fail("lintian is needed: apt-get install lintian (./dev does)")
    # what is inherent to a virtualenv under /opt is overridden, each with its reason, in
    # packaging/debian/lintian-overrides; anything else fails here
    p = subprocess.run(
        ["lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", str(built_deb)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    tags = [line for line in p.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert p.returncode == 0 and not tags, "\n".join(tags) + p.stderr


def test_config_is_conffiles_in_etc_and_the_units_are_in_lib_systemd(built_deb: Path, unpacked: Path) -> None:
    conffiles = subprocess.run(
        ["dpkg-deb", "-I", str(built_deb), "conffiles"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert conffiles == ["/etc/edgenode/node.env", "/etc/edgenode/hub.env"]
    for c in conffiles:
        assert (unpacked / c.lstrip("/")).is_file()
    assert sorted(p.name for p in (unpacked / "lib/systemd/system").iterdir()) == [u.name for u in UNITS]
    assert (unpacked / "usr/bin/edgenode").readlink() == Path("/opt/edgenode/bin/edgenode")
    assert (unpacked / "usr/share/man/man1/edgenode.1.gz").is_file()


def test_the_virtualenv_is_made_for_opt_edgenode_and_ships_no_bytecode(unpacked: Path) -> None:
    venv = unpacked / "opt" / "edgenode"
    assert (venv / "bin" / "edgenode").read_text().splitlines()[0] == "#!/opt/edgenode/bin/python"
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg and "/opt/edgenode\n" in cfg
    # the interpreter is Debian's python3.11, the minor version the package depends on
    targets = {p.readlink() for p in (venv / "bin").iterdir() if p.is_symlink() and p.readlink().is_absolute()}
    assert targets == {Path("/usr/bin/python3.11")}
    assert not list(venv.rglob("__pycache__")) and not list(venv.rglob("*.pyc"))
    assert not (venv / "bin" / "pip").exists()  # nothing is installed on the appliance at run time


def test_the_venv_holds_exactly_the_pinned_versions(unpacked: Path) -> None:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    installed = {}
    for meta in (unpacked / "opt/edgenode/lib").glob("python3.*/site-packages/*.dist-info/METADATA"):
        fields = dict(line.split(": ", 1) for line in meta.read_text(errors="replace").splitlines()[:5] if ": " in line)
        installed[fields["Name"].lower().replace("_", "-")] = fields["Version"]
    assert installed.pop("edgenode") == __version__
    assert installed, "no distributions found"
    for name, version in installed.items():
        assert pins.get(name) == version, f"{name} {version} is not pinned in constraints.txt (pin: {pins.get(name)})"


def test_the_installed_units_verify_against_the_real_program(unpacked: Path) -> None:
    # the unpacked package is the root: its /opt/edgenode/bin/edgenode is the real script
    installed = sorted((unpacked / "lib/systemd/system").glob("edgenode-*.service"))
    assert len(installed) == len(UNITS)
    p = verify_root(unpacked, installed, program=None)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stdout + p.stderr
