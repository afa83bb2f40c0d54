"""Install the built .deb into a fresh Debian (debootstrap, minbase) and run the program there.

The throwaway root is made from the mirror this machine's apt uses (read from
/etc/apt/sources.list*), gets the package with apt-get (which resolves its Depends from that
mirror), and is deleted afterwards; nothing is cached between runs. Needs root (chroot) and
access to the Debian mirror; no mounts are made, so removing the folder is all the clean-up.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgenode import __version__
from tests.packaging.debroot import machine_mirror

pytestmark = pytest.mark.slow

ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "HOME": "/root",
    # a proxy the machine needs for its mirror is needed by debootstrap and apt-get too
    **{k: v for k, v in os.environ.items() if k.lower() in ("http_proxy", "https_proxy", "no_proxy")},
}


def _run(cmd: list[str], timeout: float = 1200, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def in_root(root: Path, *cmd: str, user: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `cmd` inside the chroot (as `user` if given)."""
    spec = [f"--userspec={user}:{user}"] if user else []
    home = [] if user is None else ["env", f"HOME={in_root_home(root, user)}"]
    return _run(["chroot", *spec, str(root), *home, *cmd], check=check)


def in_root_home(root: Path, user: str) -> str:
    """`user`'s home folder in the chroot's passwd."""
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields[5]
    raise AssertionError(f"no user {user} in the chroot")


@pytest.fixture(scope="module")
def installed_root(built_deb: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("the install test needs root (chroot); CI runs ./dev test as root")
    for tool in ("debootstrap", "chroot"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed: apt-get install debootstrap (./dev does)")
    mirror = machine_mirror("bookworm")
    with tempfile.TemporaryDirectory(prefix="edgenode-debootstrap-") as tmp:
        root = Path(tmp) / "root"
        t0 = time.monotonic()
        _run(["debootstrap", "--variant=minbase", "bookworm", str(root), mirror], timeout=1800)
        t1 = time.monotonic()
        shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
        shutil.copy(built_deb, root / "tmp" / built_deb.name)
        # apt-get resolves the Depends from the same mirror debootstrap wrote to sources.list
        in_root(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", f"/tmp/{built_deb.name}")
        t2 = time.monotonic()
        print(f"\ndebootstrap {t1 - t0:.0f} s, apt-get install of the .deb and its Depends {t2 - t1:.0f} s")
        yield root


def test_the_program_runs_and_reports_its_version(installed_root: Path) -> None:
    p = in_root(installed_root, "/opt/edgenode/bin/edgenode", "--version")
    assert p.stdout.strip() == f"edgenode {__version__}"
    assert in_root(installed_root, "edgenode", "--version").stdout.strip() == f"edgenode {__version__}"  # /usr/bin


def test_postinst_made_the_user_and_its_state_folder(installed_root: Path) -> None:
    entry = in_root(installed_root, "getent", "passwd", "edgenode").stdout.strip().split(":")
    assert entry[5] == "/var/lib/edgenode" and entry[6] == "/usr/sbin/nologin"
    assert int(entry[2]) < 1000  # a system user
    st = in_root(installed_root, "stat", "-c", "%U:%G %a", "/var/lib/edgenode").stdout.split()
    assert st == ["edgenode:edgenode", "750"]
    conffiles = in_root(installed_root, "dpkg-query", "-W", "-f=${Conffiles}", "edgenode").stdout
    assert "/etc/edgenode/node.env" in conffiles and "/etc/edgenode/hub.env" in conffiles
    # bytecode compiled at the final path (the services cannot write it under /opt)
    assert list((installed_root / "opt/edgenode/lib").glob("python3.*/site-packages/edgenode/__pycache__/*.pyc"))


def test_node_status_on_an_empty_folder_says_to_init_first(installed_root: Path) -> None:
    p = in_root(
        installed_root, "/opt/edgenode/bin/edgenode", "node", "status", "--data", "/var/lib/edgenode",
        user="edgenode", check=False,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert "run `edgenode node init` first" in p.stderr


def test_a_node_initialised_offline_reports_its_status(installed_root: Path) -> None:
    key = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
    edgenode = "/opt/edgenode/bin/edgenode"
    in_root(
        installed_root, edgenode, "node", "init", "--data", "/var/lib/edgenode", "--hub", "http://127.0.0.1:9",
        "--token", "en1." + "t" * 43, "--node", "honcho-1", "--lg-code", "454214", "--hub-key", key,
        user="edgenode",
    )  # fmt: skip
    p = in_root(installed_root, edgenode, "node", "status", "--data", "/var/lib/edgenode", "--json", user="edgenode")
    st = json.loads(p.stdout)
    # never bootstrapped: no replica yet, nothing queued, no error
    assert st["mode"] == "bootstrapping" and st["cursor"] is None
    assert st["node_id"] == "honcho-1" and st["lg_code"] == "454214"
    assert st["queue_depth"] == 0 and st["last_error"] is None
    assert "t" * 43 not in p.stdout + p.stderr
    mode = in_root(installed_root, "stat", "-c", "%U %a", "/var/lib/edgenode/node.toml").stdout.split()
    assert mode == ["edgenode", "600"]


def test_weasyprint_renders_japanese_with_the_ipaex_fonts_from_the_depends(installed_root: Path) -> None:
    script = (
        "from weasyprint import HTML\n"
        "HTML(string='<p style=\"font-family: IPAexMincho\">住民票の写し</p>').write_pdf('/tmp/check.pdf')\n"
    )
    in_root(installed_root, "/opt/edgenode/bin/python", "-c", script, user="edgenode")
    pdf = installed_root / "tmp" / "check.pdf"
    fonts = _run(["pdffonts", str(pdf)]).stdout
    assert "IPAexMincho" in fonts and " yes yes " in fonts  # embedded, subset
    assert _run(["pdftotext", str(pdf), "-"]).stdout.strip() == "住民票の写し"


def test_purge_removes_the_program_and_keeps_the_registry(installed_root: Path) -> None:
    in_root(installed_root, "dpkg", "--purge", "edgenode")
    assert not (installed_root / "opt" / "edgenode").exists()  # prerm removed the compiled bytecode too
    assert not (installed_root / "etc" / "edgenode").exists()
    assert (installed_root / "var/lib/edgenode/node.toml").exists()
