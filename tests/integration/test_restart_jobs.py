"""Jobs survive the server: a restart (graceful or kill -9) re-adopts running jobs and still
captures their exit codes; queued jobs run after the restart."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
from helpers import log_lines, register, setup_queue, wait_job


@pytest.mark.parametrize("how", ["graceful", "kill -9"])
def test_running_job_is_adopted_across_a_restart(new_server, unique, how):
    server = new_server()
    batch = server.client()
    queue = setup_queue(batch, unique, max_vcpus=1)
    jd = register(
        batch, unique, ["sh", "-c", "echo before; sleep 1.5; echo after; exit 4"], vcpus="1"
    )
    running = batch.submit_job(jobName="long", jobQueue=queue, jobDefinition=jd)["jobId"]
    wait_job(batch, running, until={"RUNNING"})
    queued = batch.submit_job(jobName="next", jobQueue=queue, jobDefinition=jd)["jobId"]
    if how == "graceful":
        server.stop()
    else:
        server.kill()
    server.start()
    batch = server.client()
    job = wait_job(batch, running, timeout=30)
    assert job["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [4]
    assert log_lines(server, job) == ["before", "after"]
    nxt = wait_job(batch, queued, timeout=30)
    assert [a["container"]["exitCode"] for a in nxt["attempts"]] == [4]


def _agent_pid(server) -> int:
    return int((server.data_dir / "local" / "agent.pid").read_text())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_one_agent_per_data_dir(new_server, unique, store):
    """A second agent for the same data dir exits at once (the first keeps serving and keeps
    its exit records); an agent whose socket was removed listens again; an agent whose data
    dir is gone exits."""
    if store != "sqlite":
        pytest.skip("the agent is the same whatever the store: tested once")
    server = new_server()
    batch = server.client()
    queue = setup_queue(batch, unique, max_vcpus=1)
    jd = register(batch, unique, ["true"], vcpus="1")
    job = batch.submit_job(jobName="a", jobQueue=queue, jobDefinition=jd)["jobId"]
    assert wait_job(batch, job)["status"] == "SUCCEEDED"
    first = _agent_pid(server)
    local = server.data_dir / "local"
    second = subprocess.run(
        [sys.executable, "-m", "batchyard.providers.local.agent", "--dir", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0
    assert "another agent serves" in second.stderr
    assert _alive(first) and _agent_pid(server) == first
    (local / "agent.sock").unlink()
    deadline = time.monotonic() + 10
    while not (local / "agent.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (local / "agent.sock").exists(), "the agent did not listen again"
    job = batch.submit_job(jobName="b", jobQueue=queue, jobDefinition=jd)["jobId"]
    assert wait_job(batch, job)["status"] == "SUCCEEDED"
    assert _agent_pid(server) == first
    server.kill()  # leaves the agent behind, holding exit records nobody acknowledged
    shutil.rmtree(server.data_dir)
    deadline = time.monotonic() + 10
    while _alive(first) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(first), "the agent outlived its data dir"
