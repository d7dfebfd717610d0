"""Fixtures of the CLI tests: the real ``batchyard`` executable against a real server.

The CLI is a client of the AWS API, which the integration tests already run on both stores;
these tests use one SQLite server per worker (``cli_server``) so that they stay fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import Result, client_env

from support.server import FAST, ServerProcess


@pytest.fixture(scope="session")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("cli-server"), None, **FAST)
    proc.start()
    yield proc
    proc.shutdown()


@pytest.fixture
def cli(cli_server: ServerProcess) -> Callable[..., Result]:
    """``cli("jobs", "--queue", q)`` runs ``python -m batchyard jobs --queue q`` against the
    test server and returns its exit code and output."""

    def run(
        *args: str,
        timeout: float = 90,
        input: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "batchyard", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=env or client_env(cli_server.endpoint),
            cwd=cwd,
        )
        return Result(list(args), proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a ``batchyard`` script running this interpreter's batchyard, for
    shell scripts and tmux (put it first on PATH)."""
    path = tmp_path_factory.mktemp("bin")
    script = path / "batchyard"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m batchyard "$@"\n')
    script.chmod(0o755)
    return path


@pytest.fixture
def tmux(bin_dir: Path, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """A private tmux server (its own socket); yields ``tmux(*args)`` -> stdout."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed (scripts/setup-test-env installs it)")
        pytest.skip("tmux is not installed (scripts/setup-test-env installs it)")
    socket = tmp_path / "tmux.sock"

    def run(*args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", str(socket), *args], capture_output=True, text=True, timeout=30
        ).stdout

    yield run
    subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, timeout=30)
