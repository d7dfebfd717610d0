"""Jobs that misbehave: gigabytes of output, a full disk for logs, a hundred children,
processes that escape their session, SIGTERM ignored. The server stays responsive, limits
hold, and terminate really ends everything."""

from __future__ import annotations

import subprocess
import time

import pytest
from helpers import register, setup_queue, wait_for, wait_job

from batchyard.providers.local.cgroups import detect


def _alive(pattern: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return out.stdout.split()


def test_gigabytes_of_output_are_capped(new_server, unique):
    server = new_server(log_limit_bytes=1 << 20)
    batch = server.client()
    queue = setup_queue(batch, unique)
    jd = register(
        batch,
        unique,
        ["sh", "-c", "yes 'batchyard output line' | head -c 300000000; echo done >&2"],
    )
    job_id = batch.submit_job(jobName="loud", jobQueue=queue, jobDefinition=jd)["jobId"]
    while batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] not in ("SUCCEEDED", "FAILED"):
        assert batch.describe_job_queues(jobQueues=[queue])["jobQueues"]  # still answers
        time.sleep(0.05)
    job = wait_job(batch, job_id)
    assert job["status"] == "SUCCEEDED"
    stream = job["attempts"][0]["container"]["logStreamName"]
    size = server.client("logs").describe_log_streams(
        logGroupName="/aws/batch/job", logStreamNamePrefix=stream
    )["logStreams"][0]["storedBytes"]
    assert size <= (1 << 20) + 200
    last = server.client("logs").get_log_events(
        logGroupName="/aws/batch/job", logStreamName=stream, limit=1
    )
    assert "output truncated" in last["events"][0]["message"]


def test_full_disk_for_logs(new_server, unique, tmp_path):
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(data / "logs")],
        capture_output=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mount.stderr.decode().strip()}")
    try:
        from support.server import FAST, ServerProcess

        server = ServerProcess(data, None, **FAST).start()
        try:
            batch = server.client()
            queue = setup_queue(batch, unique)
            jd = register(
                batch, unique, ["sh", "-c", "yes 'fill the disk' | head -c 2000000; exit 0"]
            )
            job = wait_job(
                batch, batch.submit_job(jobName="fill", jobQueue=queue, jobDefinition=jd)["jobId"]
            )
            assert job["status"] == "SUCCEEDED"
            assert "No space left on device" in job["attempts"][0]["container"]["reason"]
            quick = register(batch, unique, ["true"])
            assert (
                wait_job(
                    batch,
                    batch.submit_job(jobName="after", jobQueue=queue, jobDefinition=quick)["jobId"],
                )["status"]
                == "SUCCEEDED"
            )
        finally:
            server.shutdown()
    finally:
        subprocess.run(["umount", "-l", str(data / "logs")], check=False)


def test_a_hundred_children_and_ignored_sigterm_are_all_killed(batch, unique):
    queue = setup_queue(batch, unique)
    marker = f"sleep 31.{int(time.time() * 1000) % 100000}"
    jd = register(
        batch,
        unique,
        [
            "sh",
            "-c",
            f"trap '' TERM; for i in $(seq 100); do sh -c 'trap \"\" TERM; exec {marker}' & done; wait",
        ],
    )
    job_id = batch.submit_job(jobName="forky", jobQueue=queue, jobDefinition=jd)["jobId"]
    wait_job(batch, job_id, until={"RUNNING"})
    wait_for(lambda: len(_alive(marker)) >= 100, timeout=30, what="100 children")
    started = time.monotonic()
    batch.terminate_job(jobId=job_id, reason="enough")
    job = wait_job(batch, job_id, timeout=60)
    assert job["status"] == "FAILED" and job["statusReason"] == "enough"
    assert job["attempts"][0]["container"]["exitCode"] == 137  # SIGKILL after the grace
    wait_for(lambda: not _alive(marker), timeout=15, what="every child to be gone")
    assert time.monotonic() - started < 30


@pytest.mark.skipif(
    detect() is None, reason="needs a memory cgroup to find processes that left the job's session"
)
def test_processes_that_leave_the_session_are_killed_too(batch, unique):
    queue = setup_queue(batch, unique)
    marker = f"sleep 32.{int(time.time() * 1000) % 100000}"
    jd = register(batch, unique, ["sh", "-c", f"setsid {marker} & sleep 1; exit 0"])
    job = wait_job(
        batch, batch.submit_job(jobName="escape", jobQueue=queue, jobDefinition=jd)["jobId"]
    )
    assert job["status"] == "SUCCEEDED"
    wait_for(lambda: not _alive(marker), timeout=15, what="the escaped process to be killed")
