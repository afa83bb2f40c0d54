"""Helpers for the packaging tests: the machine's Debian mirror, running the build."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def mirror_from_sources(texts: list[tuple[str, str]], suite: str = "bookworm") -> str | None:
    """The first archive URI that serves `suite` (not -security, -updates) in (file name, text) pairs.

    Reads both formats: one-line ``deb URI SUITE COMPONENTS`` (``*.list``) and deb822 stanzas
    (``*.sources``: ``Types:``, ``URIs:``, ``Suites:``, ``Enabled:``).
    """
    for name, text in texts:
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split():
                    uris = fields.get("uris", "").split()
                    if uris:
                        return uris[0]
        elif name.endswith(".list") or name == "sources.list":
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                    return words[1]
    return None


def machine_mirror(suite: str = "bookworm") -> str:
    """The Debian mirror this machine's apt uses for `suite` (read now, never hard-coded)."""
    texts: list[tuple[str, str]] = []
    for p in APT_SOURCES:
        files = sorted(p.iterdir()) if p.is_dir() else [p] if p.exists() else []
        texts += [(f.name, f.read_text(encoding="utf-8", errors="replace")) for f in files if f.is_file()]
    uri = mirror_from_sources(texts, suite)
    if uri is None:
        raise AssertionError(f"no apt source for {suite} in {', '.join(map(str, APT_SOURCES))}")
    return uri


def build_deb(out: Path) -> Path:
    """Run the one documented build command; return the .deb it made."""
    p = subprocess.run([str(REPO / "packaging" / "build-deb"), str(out)], capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise AssertionError(f"packaging/build-deb exited {p.returncode}:\n{p.stderr[-5000:]}")
    deb = Path(p.stdout.strip().splitlines()[-1])
    assert deb.parent == out and deb.is_file(), p.stdout
    return deb
