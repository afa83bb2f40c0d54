"""The install test reads the machine's mirror from apt's sources in either format."""

from __future__ import annotations

from tests.packaging.debroot import mirror_from_sources

DEB822 = """Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb deb-src
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


def test_deb822_sources_give_the_archive_not_the_security_suite() -> None:
    assert mirror_from_sources([("debian.sources", DEB822)]) == "http://mirror.example/debian"


def test_a_disabled_stanza_is_skipped() -> None:
    text = "Enabled: no\n" + DEB822.split("\n\n")[1] + "\nTypes: deb\nURIs: http://other.example/d\nSuites: bookworm\n"
    assert mirror_from_sources([("x.sources", text)]) == "http://other.example/d"


def test_one_line_sources_with_options_and_comments() -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://list.example/debian bookworm main contrib\n"
    )
    assert mirror_from_sources([("sources.list", text)]) == "http://list.example/debian"


def test_no_source_for_the_suite_gives_none() -> None:
    assert mirror_from_sources([("sources.list", "deb http://x.example/debian trixie main\n")]) is None
