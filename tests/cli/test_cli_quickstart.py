"""The README's first command: batchyard quickstart, on a fresh data dir."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import client_env


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh data dir; whatever server and agent the test started there are stopped."""
    path = tmp_path / "batchyard"
    yield path
    for name in ("server.pid", "local/agent.pid"):
        try:
            pid = int((path / name).read_text())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            continue
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


def test_quickstart_runs_a_real_workload_and_leaves_the_server_running(cli, data_dir):
    env = client_env(None)
    r = cli("quickstart", "--data-dir", str(data_dir), "--port", "0", env=env, timeout=120)
    assert r.code == 0, r
    out = r.stdout
    assert "started the batchyard server" in out
    assert "job queue quickstart: VALID" in out
    assert "job definitions: quickstart-count:1, quickstart-merge:1" in out
    # the result of the merge job, printed from its log
    assert "standard library, counted in 8 shards:" in out
    assert "most imported modules" in out and "sys" in out and "largest modules:" in out
    # progress while it ran (one line per change when not on a terminal)
    assert "count, 8 shards" in out and "SUCCEEDED" in out
    # how to look at the jobs and the logs, and how to stop the server
    for hint in (
        "batchyard jobs --queue quickstart",
        "batchyard logs ",
        "batchyard explain ",
        f"batchyard server stop --data-dir {data_dir}",
    ):
        assert hint in out, hint
    endpoint = json.loads((data_dir / "server.json").read_text())["endpoint"]
    assert f"export BATCHYARD_ENDPOINT={endpoint}" in out

    # the server keeps running; the CLI finds it through the data dir
    local = client_env(None, BATCHYARD_DATA_DIR=str(data_dir))
    jobs = json.loads(cli("jobs", "--queue", "quickstart", "-o", "json", env=local).stdout)
    assert {j["jobName"]: j["status"] for j in jobs} == {
        "count-stdlib": "SUCCEEDED",
        "merge-counts": "SUCCEEDED",
    }
    files = Path(out.split("The shards' files are in ")[1].split()[0])
    assert len(list(files.glob("shard-*.json"))) == 8 and (files / "result.txt").exists()

    # a second run reuses the server and the job definitions (no new revision)
    r = cli("quickstart", "--data-dir", str(data_dir), "--no-workload", env=env)
    assert r.code == 0, r
    assert "using the running batchyard server" in r.stdout

    r = cli("server", "stop", "--data-dir", str(data_dir), env=env)
    assert r.code == 0 and "stopped the batchyard server" in r.stdout, r
    r = cli("status", env=local)
    assert r.code == 3, r
    shutil.rmtree(files, ignore_errors=True)
