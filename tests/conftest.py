"""Fixtures shared by every test folder: the hub's two storage backends.

`hub_db` is the hub's ``db`` setting, once per backend: ``""`` (SQLite files under the data
folder) and the URL of a fresh database in a PostgreSQL cluster that this test session starts
and stops itself (Debian's ``postgresql`` package). Without PostgreSQL installed the PostgreSQL
cases fail with the reason; they are skipped only if ``EDGENODE_TEST_SKIP_PG=1`` says so.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from edgenode.hub.pg import close_pools
from edgenode.hub.pgtemp import TempCluster

BACKENDS = ["sqlite", "postgresql"]
_dbs = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[TempCluster]:
    """A PostgreSQL server for the whole test session, deleted at the end."""
    if os.environ.get("EDGENODE_TEST_SKIP_PG") == "1":
        pytest.skip("EDGENODE_TEST_SKIP_PG=1: PostgreSQL cases not run")
    with TempCluster() as cluster:
        yield cluster


@pytest.fixture()
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh, empty database for one test (its connections closed afterwards)."""
    cluster: TempCluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database(f"t{os.getpid()}_{next(_dbs)}")
    yield url
    close_pools(url)


@pytest.fixture(params=BACKENDS)
def hub_db(request: pytest.FixtureRequest) -> str:
    """The hub's ``db`` setting for each backend in turn (contract tests run over both)."""
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("pg_url"))
