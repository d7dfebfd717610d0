"""Placement and ordering: queue priority, jobs that can never fit, time-limit actions, the
queue snapshot, listing and filtering, and limits enforced on the host."""

from __future__ import annotations

import time

import pytest
from helpers import make_ce, make_queue, register, setup_queue, wait_for, wait_job

from batchyard.providers.local.cgroups import detect


def test_high_priority_queue_starts_first_when_capacity_is_short(batch, unique):
    ce = unique("ce")
    make_ce(batch, ce, max_vcpus=1)
    low, high = unique("low"), unique("high")
    make_queue(batch, low, [ce], priority=1)
    make_queue(batch, high, [ce], priority=100)
    blocker = register(batch, unique, ["sleep", "0.5"], vcpus="1")
    quick = register(batch, unique, ["true"], vcpus="1")
    first = batch.submit_job(jobName="blocker", jobQueue=low, jobDefinition=blocker)["jobId"]
    wait_job(batch, first, until={"RUNNING", "SUCCEEDED"})
    lows = [
        batch.submit_job(jobName=f"low{i}", jobQueue=low, jobDefinition=quick)["jobId"]
        for i in range(3)
    ]
    highs = [
        batch.submit_job(jobName=f"high{i}", jobQueue=high, jobDefinition=quick)["jobId"]
        for i in range(3)
    ]
    done = [wait_job(batch, j) for j in lows + highs]
    starts = {j["jobId"]: j["startedAt"] for j in done}
    assert max(starts[h] for h in highs) <= min(starts[lo] for lo in lows)
    # inside a queue: first in, first out
    assert [starts[j] for j in lows] == sorted(starts[j] for j in lows)


def test_job_too_big_is_reported_then_cancelled_by_time_limit(batch, unique):
    ce = unique("ce")
    make_ce(batch, ce, max_vcpus=2)
    queue = unique("q")
    make_queue(
        batch,
        queue,
        [ce],
        jobStateTimeLimitActions=[
            {
                "reason": "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
                "state": "RUNNABLE",
                "maxTimeSeconds": 2,
                "action": "CANCEL",
            }
        ],
    )
    huge = register(batch, unique, ["true"], vcpus="64")
    job_id = batch.submit_job(jobName="huge", jobQueue=queue, jobDefinition=huge)["jobId"]
    stuck = wait_for(
        lambda: (
            (j := batch.describe_jobs(jobs=[job_id])["jobs"][0])
            .get("statusReason", "")
            .startswith("MISCONFIGURATION")
            and j
        ),
        what="the stuck job's reason",
    )
    assert stuck["status"] == "RUNNABLE"
    reason = stuck["statusReason"]
    assert reason.startswith("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - ")
    assert "64 vCPU" in reason and ce in reason and "2 vCPU" in reason
    job = wait_job(batch, job_id, timeout=30)
    assert job["status"] == "FAILED" and job["isCancelled"] is True
    assert "jobStateTimeLimitActions" in job["statusReason"]
    assert not job.get("attempts")


def test_memory_beyond_the_host_is_a_job_resource_requirement(batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"], memory=str(64 * 1024 * 1024))
    job_id = batch.submit_job(jobName="mem", jobQueue=queue, jobDefinition=jd)["jobId"]
    job = wait_for(
        lambda: (j := batch.describe_jobs(jobs=[job_id])["jobs"][0]).get("statusReason") and j,
        what="a reason",
    )
    assert job["statusReason"].startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - ")
    batch.cancel_job(jobId=job_id, reason="cleanup")


def test_waiting_for_capacity_says_so(batch, unique):
    queue = setup_queue(batch, unique, max_vcpus=1)
    sleeper = register(batch, unique, ["sleep", "30"], vcpus="1")
    running = batch.submit_job(jobName="r", jobQueue=queue, jobDefinition=sleeper)["jobId"]
    wait_job(batch, running, until={"RUNNING"})
    waiting = batch.submit_job(jobName="w", jobQueue=queue, jobDefinition=sleeper)["jobId"]
    job = wait_for(
        lambda: (j := batch.describe_jobs(jobs=[waiting])["jobs"][0]).get("statusReason") and j,
        what="a reason",
    )
    assert job["statusReason"].startswith("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - ")
    assert "requests 1 vCPU" in job["statusReason"]
    snapshot = batch.get_job_queue_snapshot(jobQueue=queue)
    assert [j["jobArn"].rsplit("/", 1)[1] for j in snapshot["frontOfQueue"]["jobs"]] == [waiting]
    usage = snapshot["queueUtilization"]["totalCapacityUsage"]
    assert usage == [{"capacityUnit": "VCPU", "quantity": 1.0}]
    batch.terminate_jobs(jobs=[running, waiting], reason="cleanup")
    wait_job(batch, running)


def test_disabled_compute_environment_starts_nothing(batch, unique):
    ce = unique("ce")
    make_ce(batch, ce, max_vcpus=2)
    queue = unique("q")
    make_queue(batch, queue, [ce])
    jd = register(batch, unique, ["true"])
    batch.update_compute_environment(computeEnvironment=ce, state="DISABLED")
    wait_for(
        lambda: (
            batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"][0][
                "status"
            ]
            == "VALID"
        ),
        what="the update",
    )
    job_id = batch.submit_job(jobName="held", jobQueue=queue, jobDefinition=jd)["jobId"]
    job = wait_for(
        lambda: (j := batch.describe_jobs(jobs=[job_id])["jobs"][0]).get("statusReason") and j,
        what="a reason",
    )
    assert job["status"] == "RUNNABLE"
    assert "DISABLED" in job["statusReason"]
    batch.update_compute_environment(computeEnvironment=ce, state="ENABLED")
    assert wait_job(batch, job_id)["status"] == "SUCCEEDED"


def test_list_jobs_filters_and_pages(batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"])
    other = register(batch, unique, ["true"])
    t0 = int(time.time() * 1000) - 1
    ids = [
        batch.submit_job(jobName=f"alpha-{i}", jobQueue=queue, jobDefinition=jd)["jobId"]
        for i in range(5)
    ]
    beta = batch.submit_job(jobName="beta", jobQueue=queue, jobDefinition=other)["jobId"]
    for j in [*ids, beta]:
        wait_job(batch, j)
    succeeded = batch.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert [s["jobId"] for s in succeeded] == [beta, *reversed(ids)]  # newest first
    assert batch.list_jobs(jobQueue=queue)["jobSummaryList"] == []  # RUNNING by default
    by_name = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["ALPHA-*"]}])
    assert len(by_name["jobSummaryList"]) == 5
    by_jd = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_DEFINITION", "values": [other]}])
    assert [s["jobId"] for s in by_jd["jobSummaryList"]] == [beta]
    after = batch.list_jobs(
        jobQueue=queue, filters=[{"name": "AFTER_CREATED_AT", "values": [str(t0)]}]
    )
    assert len(after["jobSummaryList"]) == 6
    before = batch.list_jobs(
        jobQueue=queue, filters=[{"name": "BEFORE_CREATED_AT", "values": [str(t0)]}]
    )
    assert before["jobSummaryList"] == []
    seen, token = [], None
    while True:
        page = batch.list_jobs(
            jobQueue=queue,
            jobStatus="SUCCEEDED",
            maxResults=2,
            **({"nextToken": token} if token else {}),
        )
        seen += [s["jobId"] for s in page["jobSummaryList"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == [beta, *reversed(ids)]
    summary = succeeded[0]
    assert summary["container"]["exitCode"] == 0 and summary["jobDefinition"].endswith(f"{other}:1")


@pytest.mark.skipif(
    detect() is None,
    reason="this host offers no writable memory cgroup (v1, or v2 with memory delegated)",
)
def test_memory_limit_is_enforced(batch, unique):
    queue = setup_queue(batch, unique)
    hog = register(
        batch, unique, ["python3", "-c", "x = b'x' * (300 * 2**20); print(len(x))"], memory="50"
    )
    job = wait_job(
        batch, batch.submit_job(jobName="hog", jobQueue=queue, jobDefinition=hog)["jobId"]
    )
    assert job["status"] == "FAILED"
    assert job["attempts"][0]["container"]["reason"].startswith("OutOfMemoryError")
    assert job["attempts"][0]["container"]["exitCode"] == 137
    fits = register(batch, unique, ["python3", "-c", "x = b'x' * (20 * 2**20)"], memory="200")
    assert (
        wait_job(
            batch, batch.submit_job(jobName="ok", jobQueue=queue, jobDefinition=fits)["jobId"]
        )["status"]
        == "SUCCEEDED"
    )
