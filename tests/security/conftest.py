"""Servers that require authentication, on both stores, each with an administrator's key.

Their data dirs sit in a directory every user may traverse (as ``/srv/batchyard`` would),
not in pytest's private tmp dirs: what keeps jobs out is then the data dir's own protection.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from secure_helpers import SECURE, Secure, bootstrap

from support.server import FAST, ServerProcess


def _cleanup(proc: ServerProcess, base: Path) -> None:
    """The data dir, and the (empty) root of its jobs' working directories."""
    digest = hashlib.sha256(str(proc.data_dir.absolute()).encode()).hexdigest()[:12]
    with contextlib.suppress(OSError):
        (Path("/var/tmp") / f"batchyard-{os.geteuid()}" / digest).rmdir()
    shutil.rmtree(base, ignore_errors=True)


def _open_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"batchyard-{prefix}-"))
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="session")
def secure(store: str, database_url: Callable[[], str | None]) -> Iterator[Secure]:
    """One long-lived server per store that requires authentication."""
    base = _open_dir(f"secure-{store}")
    proc = ServerProcess(base / "data", database_url(), **FAST, **SECURE)
    proc.start()
    yield Secure(proc, bootstrap(proc))
    proc.shutdown()
    _cleanup(proc, base)


@pytest.fixture
def new_secure(database_url: Callable[[], str | None]) -> Iterator[Callable[..., Secure]]:
    """A factory of authenticated servers with settings of their own."""
    started: list[tuple[ServerProcess, Path]] = []

    def make(**settings: Any) -> Secure:
        base = _open_dir("own-secure")
        proc = ServerProcess(base / "data", database_url(), **{**FAST, **SECURE, **settings})
        started.append((proc, base))
        proc.start()
        return Secure(proc, bootstrap(proc))

    yield make
    for proc, base in started:
        proc.shutdown()
        _cleanup(proc, base)
