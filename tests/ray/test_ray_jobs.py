"""The job semantics on a Ray-backed compute environment: the same boto3 calls, the same
statuses, exit codes and log streams as with the local provider — with the jobs running as
Ray tasks on a real multi-node cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import all_log_events, describe_ce, log_lines, make_queue, register, wait_for, wait_job
from raycluster import ray_ce

pytestmark = pytest.mark.ray


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_compute_environment_reports_the_clusters_capacity(batch, unique, ray_cluster):
    name = unique("rayce")
    ray_ce(batch, name, max_vcpus=8)
    reason = describe_ce(batch, name)["statusReason"]
    assert reason.startswith("ComputeEnvironment Healthy: Ray cluster 127.0.0.1:")
    assert "3 nodes alive" in reason
    assert "usable capacity 2 vCPUs" in reason  # the workers' CPUs, below maxvCpus
    assert "maxvCpus 8 capped at the cluster's 2 CPUs" in reason


def test_an_unreachable_cluster_makes_the_environment_invalid(batch, unique):
    name = unique("raybad")
    batch.create_compute_environment(
        computeEnvironmentName=name,
        type="UNMANAGED",
        tags={"batchyard:provider": "ray", "batchyard:ray-address": "127.0.0.1:1"},
    )
    ce = wait_for(
        lambda: (c := describe_ce(batch, name)) and c["status"] != "CREATING" and c,
        timeout=60,
        what="the compute environment to settle",
    )
    assert ce["status"] == "INVALID"
    assert "the Ray cluster at 127.0.0.1:1 cannot be used: nothing answers" in ce["statusReason"]


def test_single_job_lifecycle_environment_and_logs(batch, ray_server, ray_queue, unique):
    jd = register(
        batch,
        unique,
        [
            "sh",
            "-c",
            'echo "arg=$1"; echo "node=$BATCHYARD_RAY_NODE_ID"; '
            'env | grep -E "^(AWS_BATCH|GREETING)" | sort; sleep 0.3; echo done; exit 3',
            "sh",
            "Ref::word",
        ],
        parameters={"word": "it's; $(rm -rf /)"},
    )
    job_id = batch.submit_job(
        jobName="one",
        jobQueue=ray_queue,
        jobDefinition=jd,
        containerOverrides={"environment": [{"name": "GREETING", "value": "hi"}]},
    )["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "FAILED", job.get("statusReason")
    assert job["statusReason"] == "Essential container in task exited"
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [3]
    assert job["createdAt"] <= job["startedAt"] <= job["stoppedAt"]
    assert job["stoppedAt"] - job["startedAt"] >= 300
    assert "RUNNING" in job["_seen"] or job["_seen"][-1] == "FAILED"
    lines = log_lines(ray_server, job)
    assert lines[0] == "arg=it's; $(rm -rf /)"
    assert lines[1].startswith("node=") and len(lines[1]) > 20
    env = dict(line.split("=", 1) for line in lines[2:-1])
    assert env["AWS_BATCH_JOB_ID"] == job_id
    assert env["AWS_BATCH_JQ_NAME"] == ray_queue
    assert env["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert env["GREETING"] == "hi"
    assert lines[-1] == "done"


def test_logs_keep_order_timestamps_and_long_output(batch, ray_server, ray_queue, unique):
    jd = register(
        batch,
        unique,
        [
            "sh",
            "-c",
            "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo line $i; done; echo oops >&2",
        ],
    )
    job_id = batch.submit_job(jobName="many", jobQueue=ray_queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    stream = job["attempts"][0]["container"]["logStreamName"]
    events = all_log_events(ray_server, stream)
    messages = [e["message"] for e in events]
    stamps = [e["timestamp"] for e in events]
    assert messages == [f"line {i}" for i in range(1, 3001)] + ["oops"]
    assert stamps == sorted(stamps)
    assert job["startedAt"] - 1000 <= stamps[0] <= stamps[-1] <= job["stoppedAt"]
    # the AWS CLI reads the same stream
    out = subprocess.run(
        [
            "aws", "logs", "get-log-events", "--endpoint-url", ray_server.endpoint,
            "--log-group-name", "/aws/batch/job", "--log-stream-name", stream,
            "--start-from-head", "--limit", "2", "--output", "json",
        ],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert [e["message"] for e in json.loads(out.stdout)["events"]] == ["line 1", "line 2"]


def test_a_line_longer_than_an_event_arrives_whole(batch, ray_server, ray_queue, unique):
    """The Ray task frames output as the local agent does (the framing travels to the cluster
    with the task's code): a long line is split into events, no byte lost."""
    from batchyard.providers.logframe import MAX_EVENT_BYTES

    size = 2 * MAX_EVENT_BYTES + 12_345
    program = (
        "import os, sys; n = int(sys.argv[1]); line = bytes(i % 251 % 94 + 33 for i in range(n))"
        "\nfor i in range(0, n, 100_003): os.write(1, line[i : i + 100_003])\nprint()"
    )
    jd = register(batch, unique, [sys.executable, "-c", program, str(size)])
    job = wait_job(
        batch, batch.submit_job(jobName="long", jobQueue=ray_queue, jobDefinition=jd)["jobId"]
    )
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    expected = bytes(i % 251 % 94 + 33 for i in range(size)).decode()
    got = log_lines(ray_server, job)
    assert [len(m) for m in got] == [MAX_EVENT_BYTES, MAX_EVENT_BYTES, 12_345]
    assert "".join(got) == expected


def test_array_job(batch, ray_server, ray_queue, unique):
    jd = register(
        batch,
        unique,
        ["sh", "-c", 'echo "$AWS_BATCH_JOB_ARRAY_INDEX/$AWS_BATCH_JOB_ARRAY_SIZE"'],
    )
    parent = batch.submit_job(
        jobName="arr", jobQueue=ray_queue, jobDefinition=jd, arrayProperties={"size": 4}
    )["jobId"]
    job = wait_job(batch, parent, timeout=90)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert job["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 4
    children = batch.describe_jobs(jobs=[f"{parent}:{i}" for i in range(4)])["jobs"]
    for child in children:
        i = child["arrayProperties"]["index"]
        assert log_lines(ray_server, child) == [f"{i}/4"]


def test_dependencies_run_in_order_and_failures_propagate(batch, ray_queue, unique):
    ok = register(batch, unique, ["sh", "-c", "sleep 0.5"])
    bad = register(batch, unique, ["false"])
    first = batch.submit_job(jobName="a", jobQueue=ray_queue, jobDefinition=ok)["jobId"]
    second = batch.submit_job(
        jobName="b", jobQueue=ray_queue, jobDefinition=ok, dependsOn=[{"jobId": first}]
    )["jobId"]
    failing = batch.submit_job(jobName="c", jobQueue=ray_queue, jobDefinition=bad)["jobId"]
    after_failure = batch.submit_job(
        jobName="d", jobQueue=ray_queue, jobDefinition=ok, dependsOn=[{"jobId": failing}]
    )["jobId"]
    a, b = wait_job(batch, first), wait_job(batch, second)
    assert a["status"] == b["status"] == "SUCCEEDED"
    assert b["startedAt"] >= a["stoppedAt"]
    d = wait_job(batch, after_failure)
    assert d["status"] == "FAILED"
    assert "attempts" not in d or d["attempts"] == []
    assert failing in d["statusReason"]


def test_retry_strategy(batch, ray_queue, unique):
    jd = register(
        batch,
        unique,
        ["sh", "-c", 'echo "attempt $AWS_BATCH_JOB_ATTEMPT"; [ "$AWS_BATCH_JOB_ATTEMPT" -ge 2 ]'],
        retryStrategy={"attempts": 3},
    )
    job_id = batch.submit_job(jobName="retry", jobQueue=ray_queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [1, 0]


def test_attempt_timeout_stops_the_job(batch, ray_queue, unique):
    jd = register(batch, unique, ["sleep", "60"], timeout={"attemptDurationSeconds": 1})
    job_id = batch.submit_job(jobName="slow", jobQueue=ray_queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id, timeout=30)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Job attempt duration exceeded timeout"
    assert job["stoppedAt"] - job["startedAt"] < 10_000


def test_command_that_cannot_start(batch, ray_queue, unique):
    jd = register(batch, unique, ["no-such-command-anywhere"])
    job_id = batch.submit_job(jobName="nocmd", jobQueue=ray_queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith(
        "CannotStartContainerError: command 'no-such-command-anywhere' was not found on PATH ("
    )
    # an absolute path: the same reason as the local provider gives
    jd = register(batch, unique, ["/no/such/dir/run.sh"])
    job_id = batch.submit_job(jobName="nopath", jobQueue=ray_queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id)
    assert job["statusReason"] == "CannotStartContainerError: '/no/such/dir/run.sh' does not exist"


def test_a_job_bigger_than_any_node_fails_with_the_reason(batch, ray_queue, unique):
    jd = register(batch, unique, ["true"], vcpus="2")  # fits the cluster (2), no node (1 each)
    job_id = batch.submit_job(jobName="big", jobQueue=ray_queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "FAILED"
    assert "no node of the Ray cluster" in job["statusReason"], job["statusReason"]


def test_terminate_kills_the_process_tree(batch, ray_server, ray_queue, unique):
    jd = register(
        batch,
        unique,
        ["sh", "-c", "trap '' TERM; sleep 300 & echo child=$!; echo main=$$; wait"],
    )
    job_id = batch.submit_job(jobName="tree", jobQueue=ray_queue, jobDefinition=jd)["jobId"]
    wait_job(batch, job_id, until={"RUNNING"})

    def pids() -> dict[str, int] | None:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        found = dict(line.split("=", 1) for line in log_lines(ray_server, job) if "=" in line)
        return {k: int(v) for k, v in found.items()} if len(found) == 2 else None

    found = wait_for(pids, timeout=30, what="the job's pids in its log")
    assert not gone(found["child"]) and not gone(found["main"])
    batch.terminate_job(jobId=job_id, reason="stop it")
    job = wait_job(batch, job_id, timeout=30)
    assert job["status"] == "FAILED"
    assert job["isTerminated"] is True
    assert job["statusReason"] == "stop it"
    # both ignore SIGTERM: they got SIGKILL after the grace (2 s in the tests)
    assert job["attempts"][0]["container"]["exitCode"] == 137
    wait_for(
        lambda: gone(found["child"]) and gone(found["main"]),
        timeout=10,
        what="the job's processes to be gone",
    )


def test_two_environments_share_the_cluster(batch, ray_server, unique):
    """Two compute environments on one cluster share its capacity (one pool)."""
    ces = [unique("rayce"), unique("rayce")]
    for ce in ces:
        ray_ce(batch, ce, max_vcpus=2)
    queue = unique("rayq")
    make_queue(batch, queue, ces)
    jd = register(batch, unique, ["sh", "-c", "sleep 1"], vcpus="1")
    ids = [
        batch.submit_job(jobName=f"s{i}", jobQueue=queue, jobDefinition=jd)["jobId"]
        for i in range(4)
    ]
    jobs = [wait_job(batch, i, timeout=60) for i in ids]
    assert all(j["status"] == "SUCCEEDED" for j in jobs)
    # never more than the cluster's 2 CPUs at once
    events = sorted([(j["startedAt"], 1) for j in jobs] + [(j["stoppedAt"], -1) for j in jobs])
    level, peak = 0, 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak <= 2


def test_a_ray_client_address_works_the_same(batch, ray_server, unique):
    """ray://host:10001 (Ray Client, for a server that is not on a Ray node)."""
    name = unique("rayclient")
    batch.create_compute_environment(
        computeEnvironmentName=name,
        type="UNMANAGED",
        tags={"batchyard:provider": "ray", "batchyard:ray-address": "ray://127.0.0.1:10001"},
    )
    ce = wait_for(
        lambda: (c := describe_ce(batch, name)) and c["status"] != "CREATING" and c,
        timeout=120,
        what="the compute environment to settle",
    )
    assert ce["status"] == "VALID", ce["statusReason"]
    assert ce["statusReason"].startswith("ComputeEnvironment Healthy: Ray cluster ray://")
    queue = unique("rayq")
    make_queue(batch, queue, [name])
    jd = register(batch, unique, ["sh", "-c", "echo through the client; exit 5"])
    job_id = batch.submit_job(jobName="client", jobQueue=queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id, timeout=60)
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [5]
    assert log_lines(ray_server, job) == ["through the client"]
