"""Array jobs: children, indexes, N_TO_N and SEQUENTIAL dependencies, the parent's summary."""

from __future__ import annotations

import itertools
import time

from helpers import client_error, register, setup_queue, wait_job


def test_every_index_runs_exactly_once(batch, unique, tmp_path):
    queue = setup_queue(batch, unique)
    out = tmp_path / "indexes"
    jd = register(
        batch,
        unique,
        [
            "sh",
            "-c",
            'echo "$AWS_BATCH_JOB_ARRAY_INDEX $AWS_BATCH_JOB_ARRAY_SIZE" >> "$1"',
            "sh",
            str(out),
        ],
        vcpus="0.25",
    )
    started = time.monotonic()
    parent = batch.submit_job(
        jobName="many", jobQueue=queue, jobDefinition=jd, arrayProperties={"size": 1000}
    )
    assert time.monotonic() - started < 5
    job = wait_job(batch, parent["jobId"], timeout=240)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert set(job["_seen"]) <= {"SUBMITTED", "PENDING", "SUCCEEDED"}
    summary = job["arrayProperties"]["statusSummary"]
    assert summary["SUCCEEDED"] == 1000 and summary["FAILED"] == 0
    lines = out.read_text().split("\n")[:-1]
    assert sorted(int(line.split()[0]) for line in lines) == list(range(1000))
    assert {line.split()[1] for line in lines} == {"1000"}


def test_children_are_jobs_of_their_own(batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", 'test "$AWS_BATCH_JOB_ARRAY_INDEX" != 2'])
    parent = batch.submit_job(
        jobName="kids", jobQueue=queue, jobDefinition=jd, arrayProperties={"size": 4}
    )["jobId"]
    job = wait_job(batch, parent)
    assert job["status"] == "FAILED"
    assert job["arrayProperties"]["statusSummary"]["FAILED"] == 1
    assert job["arrayProperties"]["size"] == 4
    child = batch.describe_jobs(jobs=[f"{parent}:2"])["jobs"][0]
    assert child["status"] == "FAILED"
    assert child["arrayProperties"] == {"index": 2}
    assert child["jobId"] == f"{parent}:2"
    succeeded = batch.list_jobs(arrayJobId=parent, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert sorted(s["arrayProperties"]["index"] for s in succeeded) == [0, 1, 3]
    page1 = batch.list_jobs(arrayJobId=parent, jobStatus="SUCCEEDED", maxResults=2)
    page2 = batch.list_jobs(
        arrayJobId=parent, jobStatus="SUCCEEDED", maxResults=2, nextToken=page1["nextToken"]
    )
    assert [s["jobId"] for s in page1["jobSummaryList"] + page2["jobSummaryList"]] == [
        f"{parent}:0",
        f"{parent}:1",
        f"{parent}:3",
    ]


def test_sequential_children_run_in_order(batch, unique, tmp_path):
    queue = setup_queue(batch, unique)
    out = tmp_path / "order"
    jd = register(
        batch,
        unique,
        ["sh", "-c", 'sleep 0.05; echo "$AWS_BATCH_JOB_ARRAY_INDEX" >> "$1"', "sh", str(out)],
        vcpus="0.25",
    )
    parent = batch.submit_job(
        jobName="seq",
        jobQueue=queue,
        jobDefinition=jd,
        arrayProperties={"size": 6},
        dependsOn=[{"type": "SEQUENTIAL"}],
    )["jobId"]
    job = wait_job(batch, parent)
    assert job["status"] == "SUCCEEDED"
    assert out.read_text().split() == [str(i) for i in range(6)]
    kids = batch.describe_jobs(jobs=[f"{parent}:{i}" for i in range(6)])["jobs"]
    kids.sort(key=lambda k: k["arrayProperties"]["index"])
    for a, b in itertools.pairwise(kids):
        assert a["stoppedAt"] <= b["startedAt"]


def test_sequential_failure_stops_the_rest(batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", 'test "$AWS_BATCH_JOB_ARRAY_INDEX" != 1'])
    parent = batch.submit_job(
        jobName="seqfail",
        jobQueue=queue,
        jobDefinition=jd,
        arrayProperties={"size": 4},
        dependsOn=[{"type": "SEQUENTIAL"}],
    )["jobId"]
    job = wait_job(batch, parent)
    assert job["status"] == "FAILED"
    kids = {
        k["arrayProperties"]["index"]: k
        for k in batch.describe_jobs(jobs=[f"{parent}:{i}" for i in range(4)])["jobs"]
    }
    assert kids[0]["status"] == "SUCCEEDED"
    assert kids[1]["status"] == "FAILED" and kids[1]["attempts"]
    assert kids[2]["status"] == "FAILED" and not kids[2].get("attempts")
    assert f"{parent}:1" in kids[2]["statusReason"]


def test_n_to_n_between_arrays(batch, unique, tmp_path):
    queue = setup_queue(batch, unique)
    stage = tmp_path / "stage"
    stage.mkdir()
    first = register(
        batch,
        unique,
        [
            "sh",
            "-c",
            'sleep 0.$((AWS_BATCH_JOB_ARRAY_INDEX % 3)); touch "$1/$AWS_BATCH_JOB_ARRAY_INDEX"',
            "sh",
            str(stage),
        ],
        vcpus="0.25",
    )
    second = register(
        batch,
        unique,
        ["sh", "-c", 'test -e "$1/$AWS_BATCH_JOB_ARRAY_INDEX"', "sh", str(stage)],
        vcpus="0.25",
    )
    a = batch.submit_job(
        jobName="a", jobQueue=queue, jobDefinition=first, arrayProperties={"size": 5}
    )["jobId"]
    b = batch.submit_job(
        jobName="b",
        jobQueue=queue,
        jobDefinition=second,
        arrayProperties={"size": 5},
        dependsOn=[{"jobId": a, "type": "N_TO_N"}],
    )["jobId"]
    assert wait_job(batch, b)["status"] == "SUCCEEDED"
    for i in range(5):
        x, y = batch.describe_jobs(jobs=[f"{a}:{i}", f"{b}:{i}"])["jobs"]
        assert x["stoppedAt"] <= y["startedAt"]
    err = client_error(
        batch.submit_job,
        jobName="c",
        jobQueue=queue,
        jobDefinition=second,
        arrayProperties={"size": 4},
        dependsOn=[{"jobId": a, "type": "N_TO_N"}],
    )
    assert "same size" in err["Message"]


def test_array_after_a_single_job_and_cancel(batch, unique):
    queue = setup_queue(batch, unique)
    slow = register(batch, unique, ["sleep", "30"], vcpus="0.25")
    gate = batch.submit_job(jobName="gate", jobQueue=queue, jobDefinition=slow)["jobId"]
    parent = batch.submit_job(
        jobName="after",
        jobQueue=queue,
        jobDefinition=slow,
        arrayProperties={"size": 3},
        dependsOn=[{"jobId": gate}],
    )["jobId"]
    job = batch.describe_jobs(jobs=[parent])["jobs"][0]
    assert job["status"] == "PENDING"
    assert job["arrayProperties"]["statusSummary"]["PENDING"] == 3
    batch.cancel_job(jobId=parent, reason="changed my mind")
    job = wait_job(batch, parent)
    assert job["status"] == "FAILED" and job["isCancelled"] is True
    assert job["statusReason"] == "changed my mind"
    assert job["arrayProperties"]["statusSummary"]["FAILED"] == 3
    batch.terminate_job(jobId=gate, reason="cleanup")
    wait_job(batch, gate)
