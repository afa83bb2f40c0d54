"""The package is built once per test session (it takes a minute or two)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.packaging.debroot import build_deb


@pytest.fixture(scope="session")
def built_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_deb(tmp_path_factory.mktemp("deb"))
