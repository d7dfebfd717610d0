"""Fixtures: real servers on both stores, real clients, unique names per test."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from support.postgres import PostgresCluster
from support.server import CLIENT_ENV, FAST, ServerProcess

STORES = ["sqlite", "postgresql"]

os.environ.update(CLIENT_ENV)
# The suite's jobs use this machine's interpreter (under root's private home) and write into
# pytest's private tmp dirs, so its servers run jobs as the server's own user; as root that
# has to be said explicitly (docs/security.md). tests/security runs jobs unprivileged.
os.environ.setdefault("BATCHYARD_RUN_AS", "root")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session", params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url(store: str, request: pytest.FixtureRequest) -> Callable[[], str | None]:
    """A factory of fresh databases for the session's store (None: SQLite in the data dir)."""
    if store == "sqlite":
        return lambda: None
    cluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database


@pytest.fixture(scope="session")
def server(
    store: str, database_url: Callable[[], str | None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One long-lived server per store, shared by tests that use unique resource names."""
    proc = ServerProcess(tmp_path_factory.mktemp(f"server-{store}"), database_url(), **FAST)
    proc.start()
    yield proc
    proc.shutdown()


@pytest.fixture
def new_server(
    database_url: Callable[[], str | None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ServerProcess]]:
    """A factory of servers of their own (for restarts and crashes), stopped after the test."""
    started: list[ServerProcess] = []

    def make(**settings: object) -> ServerProcess:
        proc = ServerProcess(
            tmp_path_factory.mktemp("own-server"), database_url(), **{**FAST, **settings}
        )
        started.append(proc.start())
        return proc

    yield make
    for proc in started:
        proc.shutdown()


@pytest.fixture
def batch(server: ServerProcess):
    return server.client("batch")


_counter = itertools.count()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """``unique("ce")`` -> a name no other test uses (tests share a server)."""
    run = uuid.uuid4().hex[:6]

    def make(prefix: str) -> str:
        return f"{prefix}-{run}-{next(_counter)}"

    return make
