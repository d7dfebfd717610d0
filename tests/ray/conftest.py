"""Fixtures for the Ray tests: a real multi-node Ray cluster on loopback and a batchyard server
that runs a Ray-backed compute environment on it.

The tests carry the ``ray`` marker, which the default run deselects. ``python3 -m pytest -m
ray -n 0`` runs them: when they are selected outside a private network namespace, the session
re-executes itself inside one (tests/ray/netns.py), where the cluster, the server and its Ray
bridge all run and from which nothing can leak.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.server import ServerProcess

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import netns  # noqa: E402
from raycluster import RayCluster, ray_ce, ray_server_settings  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/ray is a Ray test, whether or not its module says so."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.ray)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Selected Ray tests outside the namespace: run the whole session again inside one."""
    if os.environ.get(netns.INSIDE) == "1" or session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("ray") for item in session.items):
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker cannot move the session elsewhere
        skip = pytest.mark.skip(
            reason="the Ray tests run in one process inside a private network namespace: "
            "use `python3 -m pytest -m ray -n 0`"
        )
        for item in session.items:
            if item.get_closest_marker("ray"):
                item.add_marker(skip)
        return
    if shutil.which("unshare") is None:
        raise pytest.UsageError("the Ray tests need util-linux's unshare")
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise pytest.UsageError("the Ray tests need Ray: pip install -e '.[ray]'")
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(session.config.invocation_params.dir)
    netns.enter([sys.executable, "-m", "pytest", *session.config.invocation_params.args])


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    if os.environ.get(netns.INSIDE) != "1":
        pytest.fail("the Ray tests must run inside their network namespace (see conftest)")
    tmp = tempfile.mkdtemp(prefix="byray-", dir="/tmp")  # short: Ray's socket paths
    os.environ["RAY_TMPDIR"] = tmp
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    started = time.monotonic()
    cluster = RayCluster()
    print(f"Ray cluster up in {time.monotonic() - started:.1f} s at {cluster.address}")
    yield cluster
    cluster.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_server(
    ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("ray-server"), **ray_server_settings(ray_cluster))
    proc.start()
    yield proc
    proc.shutdown()


@pytest.fixture
def batch(ray_server: ServerProcess) -> Any:
    return ray_server.client("batch")


@pytest.fixture
def ray_queue(batch: Any, unique: Any) -> str:
    """A fresh Ray-backed compute environment (2 vCPUs) and a queue on it."""
    from helpers import make_queue

    ce = unique("rayce")
    ray_ce(batch, ce)
    queue = unique("rayq")
    make_queue(batch, queue, [ce])
    return queue
