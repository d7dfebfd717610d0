"""batchyard explain: one test per reason a job can be where it is, read from the terminal
output a person sees (plus --output json, which is the endpoint's document)."""

from __future__ import annotations

import json

from helpers import make_ce, make_queue, setup_queue, wait_for, wait_job


def flat(text: str) -> str:
    return " ".join(text.split())


def test_explain_each_waiting_reason(cli, cli_server, unique):
    batch = cli_server.client("batch")
    ce, queue = unique("ce"), unique("q")
    make_ce(batch, ce, max_vcpus=1)
    make_queue(batch, queue, [ce])

    def submit(*args: str) -> str:
        r = cli("submit", "-q", queue, *args)
        assert r.code == 0, r
        return r.lines[0]

    running = submit("--name", "running", "--vcpus", "1", "--", "sleep", "600")
    wait_job(batch, running, until={"RUNNING"})
    waiting = submit("--name", "waiting", "--vcpus", "1", "--", "true")
    stuck = submit("--name", "stuck", "--vcpus", "8", "--memory", "64", "--", "true")
    after = submit("--name", "after", "--depends-on", waiting, "--", "true")

    r = cli("explain", running)
    assert r.code == 0, r
    assert f"RUNNING on {ce}" in r.stdout and f"batchyard logs --follow {running}" in r.stdout

    # capacity: it fits, but not now; the numbers of the compute environment
    out = flat(cli("explain", waiting).stdout)
    assert "RUNNABLE, waiting for capacity: it requests 1 vCPU" in out
    assert f"queue {queue} ENABLED VALID priority 1 position 1 (first in line)" in out
    assert (
        f"{ce} ENABLED VALID 1 vCPU" in out
        and "busy: 0 of 1 vCPUs free, 1 attempt(s) running" in out
    )
    assert f"batchyard jobs --queue {queue} --status RUNNING" in out

    # never: more than any compute environment of the queue can give, with the numbers;
    # and what is ahead of it in the queue
    out = flat(cli("explain", stuck).stdout)
    assert "RUNNABLE and stuck: it requests 8 vCPU, 64 MiB" in out
    assert "can never run it: 1 vCPUs at most (requested 8)" in out
    assert f"position 2 (1 ahead: {waiting})" in out
    assert "resubmit with a smaller request (at most 1 vCPUs here)" in out
    assert f"batchyard explain {waiting}" in out

    # a dependency
    out = flat(cli("explain", after).stdout)
    assert f"PENDING: waiting for 1 of 1 dependencies: {waiting} (waiting, RUNNABLE)" in out
    assert f"{waiting} waiting - RUNNABLE CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY" in out
    assert f"batchyard explain {waiting} (the job it waits for)" in out

    # a disabled compute environment
    batch.update_compute_environment(computeEnvironment=ce, state="DISABLED")
    with cli_server.http() as http:
        wait_for(
            lambda: (
                "DISABLED" in http.get(f"/batchyard/v1/jobs/{waiting}/explain").json()["summary"]
            ),
            what="DISABLED in explain",
        )
    out = flat(cli("explain", waiting).stdout)
    assert f"no compute environment of queue {queue} is ENABLED and VALID ({ce} is DISABLED)" in out
    assert f"--compute-environment {ce} --state ENABLED" in out

    # --output json is the endpoint's document
    doc = json.loads(cli("explain", stuck, "--output", "json").stdout)
    assert doc["jobId"] == stuck and doc["queue"]["aheadCount"] == 1
    assert doc["computeEnvironments"][0]["canEverFit"] is False

    # a dependency that failed (alone: terminating `after` too would race the scheduler's
    # failing it for its dependency)
    cli("terminate", waiting)
    wait_job(batch, after)
    cli("terminate", running, stuck)
    out = flat(cli("explain", after).stdout)
    assert "FAILED" in out and f"batchyard explain {waiting} (the dependency that failed)" in out


def test_explain_retries_and_failures(cli, cli_server, unique):
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)
    r = cli(
        "submit",
        "-q",
        queue,
        "--retries",
        "2",
        "--vcpus",
        "0.5",
        "--wait",
        "--",
        "sh",
        "-c",
        "echo broken; exit 3",
    )
    assert r.code == 1, r
    failed = r.lines[0]
    out = flat(cli("explain", failed).stdout)
    assert (
        "FAILED after 3 attempt(s): Essential container in task exited; the last exited with code 3"
        in out
    )
    assert "retrying: attempt 1 of 3 failed and no evaluateOnExit rule said EXIT" in out
    assert "the retry strategy allows 3 attempt(s)" in out
    for n in (1, 2, 3):
        assert f"{n} " in out
    assert f"batchyard logs {failed} --attempt 3" in out
    assert "RUNNING → RUNNABLE" in out and "RUNNING → FAILED" in out  # the history

    # the retry rule that fired, on a job that succeeded on its second attempt
    batch.register_job_definition(
        jobDefinitionName=(jd := unique("jd")),
        type="container",
        containerProperties={
            "command": ["sh", "-c", '[ "$AWS_BATCH_JOB_ATTEMPT" = 2 ] || exit 75'],
            "resourceRequirements": [
                {"type": "VCPU", "value": "0.5"},
                {"type": "MEMORY", "value": "32"},
            ],
        },
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [
                {"onExitCode": "75", "action": "RETRY"},
                {"onExitCode": "*", "action": "EXIT"},
            ],
        },
    )
    r = cli("submit", "-q", queue, "-d", jd, "--wait")
    assert r.code == 0, r
    out = flat(cli("explain", r.lines[0]).stdout)
    assert "SUCCEEDED" in out and "(attempt 2)" in out
    assert "evaluateOnExit rule 1 matched and says RETRY" in out

    # an array: its children's progress and where to look
    r = cli(
        "submit",
        "-q",
        queue,
        "--array-size",
        "2",
        "--vcpus",
        "0.25",
        "--wait",
        "--",
        "sh",
        "-c",
        "exit $AWS_BATCH_JOB_ARRAY_INDEX",
    )
    assert r.code == 1, r
    out = flat(cli("explain", r.lines[0]).stdout)
    assert (
        "FAILED: array of 2 finished (1 SUCCEEDED, 1 FAILED)" in out or "array of 2 finished" in out
    )
    assert f"batchyard jobs --array {r.lines[0]} --status FAILED" in out
    missing = cli("explain", "no-such-job")
    assert missing.code == 1 and "does not exist" in missing.stderr


def test_a_failed_start_says_what_is_wrong_once(cli, cli_server, unique, tmp_path):
    """A command that cannot start: one reason saying what is wrong (a long PATH shortened,
    a path that does not exist or is not executable said as such), through DescribeJobs
    and explain, each shown once, and never Python's None."""
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)
    long_path = ":".join(f"/opt/tool-{i:02d}/versions/3.11.7/bin" for i in range(12)) + ":/bin"
    plain = tmp_path / "run.sh"
    plain.write_text("echo never\n")
    plain.chmod(0o644)
    cases = {
        "no-such-command-xyz": "CannotStartContainerError: command 'no-such-command-xyz' was "
        "not found on PATH (/opt/tool-00/versions/3.11.7/bin:/opt/tool-01/versions/3.11.7/bin:"
        "…8 more…:/opt/tool-10/versions/3.11.7/bin:/opt/tool-11/versions/3.11.7/bin:/bin)",
        "/no/such/dir/run.sh": "CannotStartContainerError: '/no/such/dir/run.sh' does not exist",
        str(plain): f"CannotStartContainerError: '{plain}' is not executable (chmod +x {plain})",
        str(tmp_path): f"CannotStartContainerError: '{tmp_path}' is a directory, not a command",
        "./run.sh": "CannotStartContainerError: './run.sh' does not exist: a relative path is "
        "looked up in the job's working directory, which starts empty; give an absolute path",
    }
    for command, reason in cases.items():
        jd = unique("jd")
        batch.register_job_definition(
            jobDefinitionName=jd,
            type="container",
            containerProperties={
                "command": [command],
                "environment": [{"name": "PATH", "value": long_path}],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "0.25"},
                    {"type": "MEMORY", "value": "32"},
                ],
            },
        )
        job_id = batch.submit_job(jobName="nostart", jobQueue=queue, jobDefinition=jd)["jobId"]
        job = wait_job(batch, job_id)
        assert job["status"] == "FAILED"
        assert job["statusReason"] == reason  # DescribeJobs, as boto3 reads it
        assert job["attempts"][0]["container"]["reason"] == reason

        r = cli("explain", job_id)
        assert r.code == 0, r
        out = flat(r.stdout.translate({ord(c): " " for c in "│╭╮╰╯"}))
        assert f"FAILED after 1 attempt(s): {reason}." in out, out
        assert out.count(reason) == 1, out  # summary only: the attempt and history refer to it
        assert "None" not in out and "exited with code" not in out
        assert long_path not in out and out.count("/opt/tool-00/") <= 1
        assert "batchyard logs" not in out  # it wrote nothing
        doc = json.loads(cli("explain", job_id, "--output", "json").stdout)
        assert doc["summary"] == f"FAILED after 1 attempt(s): {reason}."
        assert doc["attempts"][0]["why"] == reason and doc["attempts"][0]["exitCode"] is None
