"""The docs list every setting and every command, with help text."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgenode.cli import build_parser
from edgenode.settings import HUB_SETTINGS, NODE_SETTINGS, markdown

ROOT = Path(__file__).resolve().parent.parent


def _commands(parser: argparse.ArgumentParser, prefix: str = "edgenode") -> list[tuple[str, str]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    found += _commands(sub, f"{prefix} {name}")
                else:
                    found.append((f"{prefix} {name}", sub.description or ""))
    return found


def test_settings_doc_is_generated_from_the_declarations() -> None:
    assert (ROOT / "docs" / "settings.md").read_text(encoding="utf-8") == markdown()
    for s in HUB_SETTINGS + NODE_SETTINGS:
        assert s.help, f"setting {s.name} has no help text"


def test_readme_lists_every_command_with_help() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = _commands(build_parser())
    assert len(commands) >= 17
    for cmd, help_text in commands:
        assert f"`{cmd}`" in readme, f"README does not list {cmd}"
        assert help_text, f"{cmd} has no help text"


def test_readme_starts_with_the_two_commands() -> None:
    first = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:2]
    assert "./dev demo" in first[0] and "./dev test" in first[1]
