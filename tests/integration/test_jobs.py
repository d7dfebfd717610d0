"""Single jobs end to end through boto3: lifecycle, parameters and environment, retries,
timeouts, dependencies, cancel and terminate — on both stores."""

from __future__ import annotations

import os

from helpers import client_error, log_lines, register, setup_queue, wait_for, wait_job


def test_lifecycle_timestamps_and_history(batch, server, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", "echo started; sleep 0.3; echo done"])
    job_id = batch.submit_job(jobName="life", jobQueue=queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert job["createdAt"] <= job["startedAt"] <= job["stoppedAt"]
    assert job["stoppedAt"] - job["startedAt"] >= 300
    assert job["jobQueue"].endswith(f":job-queue/{queue}")
    assert job["jobDefinition"].endswith(f":job-definition/{jd}:1")
    assert job["isCancelled"] is False and job["isTerminated"] is False
    (attempt,) = job["attempts"]
    assert attempt["container"]["exitCode"] == 0
    assert attempt["container"]["logStreamName"].startswith(f"{jd}/default/")
    assert job["container"]["exitCode"] == 0
    assert job["container"]["command"] == ["sh", "-c", "echo started; sleep 0.3; echo done"]
    assert log_lines(server, job) == ["started", "done"]
    assert job["_seen"][-1] == "SUCCEEDED"


def test_parameters_and_environment_reach_the_job(batch, server, unique):
    queue = setup_queue(batch, unique)
    jd = register(
        batch,
        unique,
        [
            "sh",
            "-c",
            'echo "arg=$1"; env | grep -E "^(AWS_BATCH|GREETING|FROM_JD)" | sort',
            "sh",
            "Ref::word",
        ],
        parameters={"word": "default-word"},
    )
    batch.register_job_definition(
        jobDefinitionName=jd,
        type="container",
        parameters={"word": "default-word"},
        containerProperties={
            "command": [
                "sh",
                "-c",
                'echo "arg=$1"; env | grep -E "^(AWS_BATCH|GREETING|FROM_JD)" | sort',
                "sh",
                "Ref::word",
            ],
            "environment": [
                {"name": "FROM_JD", "value": "jd"},
                {"name": "GREETING", "value": "hi"},
            ],
            "resourceRequirements": [
                {"type": "VCPU", "value": "0.5"},
                {"type": "MEMORY", "value": "64"},
            ],
        },
    )
    job_id = batch.submit_job(
        jobName="params",
        jobQueue=queue,
        jobDefinition=jd,  # the newest ACTIVE revision: 2
        parameters={"word": "it's; $(rm -rf /) `x`"},
        containerOverrides={"environment": [{"name": "GREETING", "value": "hello"}]},
    )["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert job["jobDefinition"].endswith(f"{jd}:2")
    lines = log_lines(server, job)
    # the parameter is one argv element, never interpreted by a shell
    assert lines[0] == "arg=it's; $(rm -rf /) `x`"
    env = dict(line.split("=", 1) for line in lines[1:])
    assert env["AWS_BATCH_JOB_ID"] == job_id
    assert env["AWS_BATCH_JQ_NAME"] == queue
    assert env["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert env["AWS_BATCH_CE_NAME"]
    assert env["GREETING"] == "hello" and env["FROM_JD"] == "jd"
    assert "AWS_BATCH_JOB_ARRAY_INDEX" not in env


def test_retry_driven_by_exit_code(batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", 'test "$AWS_BATCH_JOB_ATTEMPT" = 2 || exit 3'])
    job_id = batch.submit_job(
        jobName="retry",
        jobQueue=queue,
        jobDefinition=jd,
        retryStrategy={"attempts": 3, "evaluateOnExit": [{"onExitCode": "3", "action": "RETRY"}]},
    )["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "SUCCEEDED"
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [3, 0]
    assert "RUNNABLE" in job["_seen"][1:] or len(job["attempts"]) == 2


def test_evaluate_on_exit_can_stop_retries(batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", "exit 7"])
    job_id = batch.submit_job(
        jobName="noretry",
        jobQueue=queue,
        jobDefinition=jd,
        retryStrategy={"attempts": 5, "evaluateOnExit": [{"onExitCode": "7", "action": "EXIT"}]},
    )["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "FAILED"
    assert len(job["attempts"]) == 1
    assert job["attempts"][0]["container"]["exitCode"] == 7


def test_timeout_fails_the_attempt_without_retry(batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sleep", "30"])
    job_id = batch.submit_job(
        jobName="slow",
        jobQueue=queue,
        jobDefinition=jd,
        timeout={"attemptDurationSeconds": 1},
        retryStrategy={"attempts": 3},
    )["jobId"]
    job = wait_job(batch, job_id, timeout=30)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(job["attempts"]) == 1
    assert job["stoppedAt"] - job["startedAt"] < 10_000


def test_failed_dependency_fails_its_dependents(batch, unique):
    queue = setup_queue(batch, unique)
    bad = register(batch, unique, ["false"])
    good = register(batch, unique, ["true"])
    first = batch.submit_job(jobName="first", jobQueue=queue, jobDefinition=bad)["jobId"]
    second = batch.submit_job(
        jobName="second", jobQueue=queue, jobDefinition=good, dependsOn=[{"jobId": first}]
    )["jobId"]
    third = batch.submit_job(
        jobName="third", jobQueue=queue, jobDefinition=good, dependsOn=[{"jobId": second}]
    )["jobId"]
    assert wait_job(batch, first)["status"] == "FAILED"
    job2 = wait_job(batch, second)
    assert job2["status"] == "FAILED" and first in job2["statusReason"]
    assert not job2.get("attempts")
    job3 = wait_job(batch, third)
    assert job3["status"] == "FAILED" and second in job3["statusReason"]


def test_dependency_waits_then_runs(batch, unique):
    queue = setup_queue(batch, unique)
    slow = register(batch, unique, ["sleep", "0.5"])
    quick = register(batch, unique, ["true"])
    first = batch.submit_job(jobName="first", jobQueue=queue, jobDefinition=slow)["jobId"]
    second = batch.submit_job(
        jobName="second", jobQueue=queue, jobDefinition=quick, dependsOn=[{"jobId": first}]
    )["jobId"]
    pending = batch.describe_jobs(jobs=[second])["jobs"][0]
    assert pending["status"] == "PENDING"
    assert first in pending["statusReason"]
    assert pending["dependsOn"] == [{"jobId": first}]
    done = wait_job(batch, second)
    assert done["status"] == "SUCCEEDED"
    assert done["startedAt"] >= wait_job(batch, first)["stoppedAt"]


def test_cancel_before_start_and_after(batch, unique):
    queue = setup_queue(batch, unique, max_vcpus=1)
    sleeper = register(batch, unique, ["sleep", "30"], vcpus="1")
    running = batch.submit_job(jobName="busy", jobQueue=queue, jobDefinition=sleeper)["jobId"]
    wait_job(batch, running, until={"RUNNING"})
    waiting = batch.submit_job(jobName="waits", jobQueue=queue, jobDefinition=sleeper)["jobId"]
    assert wait_job(batch, waiting, until={"RUNNABLE"})["status"] == "RUNNABLE"
    batch.cancel_job(jobId=waiting, reason="not needed")
    job = batch.describe_jobs(jobs=[waiting])["jobs"][0]
    assert job["status"] == "FAILED" and job["statusReason"] == "not needed"
    assert job["isCancelled"] is True
    # CancelJob on a running job succeeds and changes nothing (AWS's rule)
    batch.cancel_job(jobId=running, reason="too late")
    assert batch.describe_jobs(jobs=[running])["jobs"][0]["status"] == "RUNNING"
    batch.terminate_job(jobId=running, reason="stop it")
    job = wait_job(batch, running, timeout=30)
    assert job["status"] == "FAILED" and job["statusReason"] == "stop it"
    assert job["isTerminated"] is True
    assert job["attempts"][0]["container"]["exitCode"] == 143  # SIGTERM
    # of an unknown job both succeed, as on AWS ("still succeeds, even if no job is cancelled")
    assert_ok(batch.cancel_job(jobId="no-such-job", reason="x"))
    assert_ok(batch.terminate_job(jobId="no-such-job", reason="x"))
    assert batch.describe_jobs(jobs=["no-such-job"])["jobs"] == []


def assert_ok(answer: dict) -> None:
    """A 200 with AWS's empty body."""
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert {k: v for k, v in answer.items() if k != "ResponseMetadata"} == {}


def test_terminate_kills_the_process_tree(batch, unique, tmp_path):
    queue = setup_queue(batch, unique)
    marker = tmp_path / "grandchild.pid"
    jd = register(batch, unique, ["sh", "-c", f"sleep 60 & echo $! > {marker}; trap '' TERM; wait"])
    job_id = batch.submit_job(jobName="tree", jobQueue=queue, jobDefinition=jd)["jobId"]
    wait_job(batch, job_id, until={"RUNNING"})
    pid = int(wait_for(lambda: marker.exists() and marker.read_text().strip(), what="child pid"))
    batch.terminate_job(jobId=job_id, reason="tree")
    job = wait_job(batch, job_id, timeout=30)
    assert job["status"] == "FAILED"
    import os

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] == "Z"

    wait_for(gone, timeout=10, what="the job's background child to be killed")


def test_bulk_cancel_and_terminate(batch, unique):
    queue = setup_queue(batch, unique, max_vcpus=1)
    sleeper = register(batch, unique, ["sleep", "30"], vcpus="1")
    running = batch.submit_job(jobName="r", jobQueue=queue, jobDefinition=sleeper)["jobId"]
    wait_job(batch, running, until={"RUNNING"})
    queued = [
        batch.submit_job(jobName=f"q{i}", jobQueue=queue, jobDefinition=sleeper)["jobId"]
        for i in range(3)
    ]
    result = batch.cancel_jobs(jobs=[*queued[:2], "unknown-id"], reason="bulk cancel")
    assert set(result["successful"]) == {*queued[:2], "unknown-id"}
    assert result["errors"] == []
    for j in batch.describe_jobs(jobs=queued[:2])["jobs"]:
        assert j["status"] == "FAILED" and j["statusReason"] == "bulk cancel"
    result = batch.terminate_jobs(jobs=[running, queued[2]], reason="bulk terminate")
    assert set(result["successful"]) == {running, queued[2]}
    assert wait_job(batch, running)["statusReason"] == "bulk terminate"
    assert wait_job(batch, queued[2])["status"] == "FAILED"
    err = client_error(batch.cancel_jobs, jobs=[f"j{i}" for i in range(51)], reason="x")
    assert "at most 50" in err["Message"]


def test_submit_refusals_change_nothing(batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"])
    before = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["*"]}])[
        "jobSummaryList"
    ]
    cases = [
        ({"jobName": "-bad"}, "jobName"),
        ({"jobQueue": "missing-queue"}, "does not exist"),
        ({"jobDefinition": "missing-jd"}, "ACTIVE revision"),
        ({"jobDefinition": f"{jd}:9"}, "does not exist"),
        ({"arrayProperties": {"size": 1}}, "between 2 and 10000"),
        ({"arrayProperties": {"size": 10_001}}, "between 2 and 10000"),
        ({"dependsOn": [{"jobId": "nope"}]}, "does not exist"),
        ({"dependsOn": [{"type": "SEQUENTIAL"}]}, "only for array jobs"),
        ({"dependsOn": [{"jobId": "nope", "type": "SEQUENTIAL"}]}, "job nope does not exist"),
        ({"timeout": {"attemptDurationSeconds": 0}}, "minimum"),
        ({"retryStrategy": {"attempts": 11}}, "between 1 and 10"),
        (
            {"containerOverrides": {"environment": [{"name": "AWS_BATCH_X", "value": "1"}]}},
            "reserved",
        ),
        ({"containerOverrides": {"command": []}}, "no command"),
        ({"shareIdentifier": "a"}, "fair-share"),
    ]
    for extra, message in cases:
        req = {"jobName": "ok", "jobQueue": queue, "jobDefinition": jd, **extra}
        err = client_error(batch.submit_job, **req)
        assert err["Code"] == "ClientException" and err["Status"] == 400, (extra, err)
        assert message in err["Message"], (extra, err["Message"])
    after = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["*"]}])[
        "jobSummaryList"
    ]
    assert after == before == []


def test_disabled_queue_refuses_submissions(batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"])
    batch.update_job_queue(jobQueue=queue, state="DISABLED")
    err = client_error(batch.submit_job, jobName="x", jobQueue=queue, jobDefinition=jd)
    assert "DISABLED" in err["Message"]


def test_each_attempt_starts_in_an_empty_directory_of_its_own(batch, server, unique):
    """Working directories are reused once empty (docs/execution.md): whatever an earlier
    attempt left behind, the next one starts in an empty directory, and never one in use."""
    queue = setup_queue(batch, unique, max_vcpus=1)
    probe = 'pwd; ls -A | wc -l; if [ "$1" = litter ]; then touch litter; mkdir -p sub/dir; fi'
    jd = register(batch, unique, ["sh", "-c", probe, "sh", "Ref::mode"], vcpus="1")
    modes = ["clean", "litter", "clean", "clean", "litter", "clean"]
    jobs = []
    for i, mode in enumerate(modes):
        job_id = batch.submit_job(
            jobName=f"dir{i}", jobQueue=queue, jobDefinition=jd, parameters={"mode": mode}
        )["jobId"]
        jobs.append(wait_job(batch, job_id))
    dirs = []
    for job in jobs:
        assert job["status"] == "SUCCEEDED", job.get("statusReason")
        cwd, count = log_lines(server, job)
        assert count.strip() == "0", (cwd, count)  # empty when it started
        dirs.append(cwd)
    assert all(os.path.isabs(d) for d in dirs)
    # a directory left empty is handed to the next attempt; a littered one is not
    assert dirs[1] == dirs[0] and dirs[2] != dirs[1]


def test_run_as_another_user(new_server, unique):
    import pwd

    nobody = pwd.getpwnam("nobody")
    server = new_server(run_as="nobody")
    batch = server.client()
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", 'id -u; echo "$HOME"; touch here && echo wrote'])
    job = wait_job(
        batch, batch.submit_job(jobName="who", jobQueue=queue, jobDefinition=jd)["jobId"]
    )
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert log_lines(server, job) == [str(nobody.pw_uid), nobody.pw_dir, "wrote"]


def test_finished_jobs_expire_after_the_retention(new_server, unique):
    server = new_server(job_retention_days=2 / 86_400)  # two seconds
    batch = server.client()
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"])
    old = batch.submit_job(jobName="old", jobQueue=queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, old)
    stream = job["attempts"][0]["container"]["logStreamName"]
    wait_for(
        lambda: not batch.describe_jobs(jobs=[old])["jobs"], timeout=30, what="the job to expire"
    )
    logs = server.client("logs")
    err = client_error(logs.get_log_events, logGroupName="/aws/batch/job", logStreamName=stream)
    assert err["Code"] == "ResourceNotFoundException"
