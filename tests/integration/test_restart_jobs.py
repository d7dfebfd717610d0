"""Jobs survive the server: a restart (graceful or kill -9) re-adopts running jobs and still
captures their exit codes; queued jobs run after the restart."""

from __future__ import annotations

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
