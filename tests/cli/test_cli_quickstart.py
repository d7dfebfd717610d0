"""The README's first command: batchyard quickstart, on a fresh data dir."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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


def test_a_taken_port_says_what_to_do_and_another_port_says_how_to_reach_it(
    cli, cli_server, data_dir, tmp_path
):
    """As on a fresh machine: no AWS configuration, an empty home."""
    env = {k: v for k, v in client_env(None).items() if not k.startswith("AWS_")}
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()

    # a port another program holds
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        for command in ("quickstart", "server"):
            r = cli(command, "--data-dir", str(data_dir), "--port", str(port), env=env)
            assert r.code == 3, r
            assert r.stderr.splitlines() == [
                f"error: port {port} of 127.0.0.1 is in use by another program; start this "
                "one on another port: --port N, or --port 0 for any free port"
            ], r
    # the port of another batchyard server
    taken = cli_server.endpoint.rsplit(":", 1)[1]
    for command in ("quickstart", "server"):
        r = cli(command, "--data-dir", str(data_dir), "--port", taken, env=env)
        assert r.code == 3, r
        assert len(r.stderr.splitlines()) == 1, r
        assert f"a batchyard server already answers at {cli_server.endpoint}" in r.stderr, r
        assert "`batchyard server stop`" in r.stderr and "--port 0" in r.stderr, r
    assert not (data_dir / "server.pid").exists()

    # any free port: the output says where the server, its dashboard and the setting are
    r = cli("quickstart", "--data-dir", str(data_dir), "--port", "0", "--no-workload", env=env)
    assert r.code == 0, r
    endpoint = json.loads((data_dir / "server.json").read_text())["endpoint"]
    assert f"The dashboard: {endpoint}/ui" in r.lines
    page = httpx.get(f"{endpoint}/ui", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    setting = f"  export BATCHYARD_ENDPOINT={endpoint}"
    assert setting in r.lines, r
    # pasted, it points the other commands at the server
    name, _, value = setting.split()[1].partition("=")
    r2 = cli("status", "-o", "json", env={**env, name: value})
    assert r2.code == 0 and json.loads(r2.stdout)["endpoint"] == endpoint, r2
    if shutil.which("aws"):  # and its AWS CLI line works as pasted in such a shell
        line = next(x.strip() for x in r.lines if "aws batch describe-job-queues" in x)
        assert line.startswith("AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=any "), line
        fresh = {"PATH": env["PATH"], "HOME": env["HOME"]}
        done = subprocess.run(["sh", "-c", line], env=fresh, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "quickstart" in [q["jobQueueName"] for q in json.loads(done.stdout)["jobQueues"]]

    # batchyard server --detach says the same
    assert cli("server", "stop", "--data-dir", str(data_dir), env=env).code == 0
    r = cli("server", "--detach", "--data-dir", str(data_dir), "--port", "0", env=env)
    assert r.code == 0, r
    endpoint = json.loads((data_dir / "server.json").read_text())["endpoint"]
    assert f"  dashboard: {endpoint}/ui" in r.lines, r
    assert any(f"export BATCHYARD_ENDPOINT={endpoint}" in line for line in r.lines), r
