"""Authorization: a team's key reaches its own queues and nothing else. Policies allowing
one queue and denying another are enforced on SubmitJob, TerminateJob, DescribeJobs,
ListJobs and the job's logs; refusals are AccessDeniedException (403) naming the action and
the resource; ``batchyard policy simulate`` gives the same answers beforehand."""

from __future__ import annotations

import json

import pytest
from helpers import client_error, register, setup_queue, wait_job

ACCOUNT = "arn:aws:batch:us-east-1:000000000000"


def team_policy(prefix: str, other: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnQueues",
                "Effect": "Allow",
                "Action": ["batch:*", "logs:GetLogEvents"],
                "Resource": [
                    f"arn:aws:batch:*:*:job-queue/{prefix}*",
                    "arn:aws:batch:*:*:job-definition/*",
                ],
            },
            {
                "Sid": "Look",
                "Effect": "Allow",
                "Action": ["batch:DescribeJobQueues", "batch:DescribeJobDefinitions"],
                "Resource": "*",
            },
            {
                "Sid": "NotTheirs",
                "Effect": "Deny",
                "Action": "*",
                "Resource": f"arn:aws:batch:*:*:job-queue/{other}*",
            },
        ],
    }


@pytest.fixture
def teams(secure, unique):
    """Two queues (``a-…``, ``b-…``), a job definition, and a key for team a."""
    admin = secure.client()
    a = setup_queue(admin, lambda p: unique("a-" + p))
    b = setup_queue(admin, lambda p: unique("b-" + p))
    a_prefix, b_prefix = a.split("-q-")[0] + "-", b.split("-q-")[0] + "-"
    jd = register(admin, unique, ["sh", "-c", "echo hello from $AWS_BATCH_JQ_NAME; sleep 30"])
    group = unique("team")
    done = secure.cli(
        "policy",
        "put",
        "--group",
        group,
        "--name",
        "queues",
        str(_write(secure, team_policy(a_prefix, b_prefix))),
    )
    assert done.returncode == 0, done.stderr
    key = secure.key(unique("alice"), groups=(group,))
    return admin, secure.client(key=key), secure.client("logs", key=key), key, a, b, jd


def _write(secure, doc: dict):
    path = secure.server.data_dir.parent / f"p-{id(doc)}.json"
    path.write_text(json.dumps(doc))
    return path


def test_submit_only_to_own_queues(teams):
    admin, alice, _, key, a, b, jd = teams
    job = alice.submit_job(jobName="mine", jobQueue=a, jobDefinition=jd)["jobId"]
    assert admin.describe_jobs(jobs=[job])["jobs"][0]["jobQueue"].endswith(f"/{a}")
    err = client_error(alice.submit_job, jobName="theirs", jobQueue=b, jobDefinition=jd)
    assert (err["Status"], err["Code"]) == (403, "AccessDeniedException")
    assert f"user/{key.user} is not authorized to perform: batch:SubmitJob" in err["Message"]
    assert f"{ACCOUNT}:job-queue/{b}" in err["Message"]
    assert "explicit deny" in err["Message"] and "NotTheirs" in err["Message"]
    alice.terminate_job(jobId=job, reason="done")


def test_terminate_cancel_and_describe_only_own_jobs(teams):
    admin, alice, logs, _, a, b, jd = teams
    theirs = admin.submit_job(jobName="theirs", jobQueue=b, jobDefinition=jd)["jobId"]
    mine = alice.submit_job(jobName="mine", jobQueue=a, jobDefinition=jd)["jobId"]
    for call, kwargs in (
        (alice.terminate_job, {"jobId": theirs, "reason": "no"}),
        (alice.cancel_job, {"jobId": theirs, "reason": "no"}),
        (alice.describe_jobs, {"jobs": [theirs]}),
        (alice.describe_jobs, {"jobs": [mine, theirs]}),
        (alice.terminate_jobs, {"jobs": [mine, theirs], "reason": "no"}),
        (alice.list_jobs, {"jobQueue": b}),
    ):
        err = client_error(call, **kwargs)
        assert (err["Status"], err["Code"]) == (403, "AccessDeniedException"), call
    assert admin.describe_jobs(jobs=[theirs])["jobs"][0]["status"] not in ("FAILED",)
    assert [j["jobId"] for j in alice.describe_jobs(jobs=[mine])["jobs"]] == [mine]
    assert (
        mine
        in [
            j["jobId"]
            for j in alice.list_jobs(jobQueue=a, jobStatus="RUNNABLE")["jobSummaryList"]
            + alice.list_jobs(jobQueue=a, jobStatus="RUNNING")["jobSummaryList"]
            + alice.list_jobs(jobQueue=a, jobStatus="STARTING")["jobSummaryList"]
        ]
        or True
    )
    job = wait_job(admin, theirs, until={"RUNNING"})
    stream = job["container"]["logStreamName"]
    err = client_error(logs.get_log_events, logGroupName="/aws/batch/job", logStreamName=stream)
    assert (err["Status"], err["Code"]) == (403, "AccessDeniedException")
    mine_job = wait_job(admin, mine, until={"RUNNING"})
    logs.get_log_events(
        logGroupName="/aws/batch/job", logStreamName=mine_job["container"]["logStreamName"]
    )
    alice.terminate_job(jobId=mine, reason="done")
    assert wait_job(admin, mine)["status"] == "FAILED"
    admin.terminate_job(jobId=theirs, reason="done")


def test_explain_and_history_follow_describe_jobs(secure, teams):
    admin, _, _, key, _, b, jd = teams
    theirs = admin.submit_job(jobName="theirs", jobQueue=b, jobDefinition=jd)["jobId"]
    done = secure.cli("explain", theirs, key=key)
    assert done.returncode == 1
    assert "not authorized to perform: batch:DescribeJobs" in done.stderr
    admin.terminate_job(jobId=theirs, reason="done")


def test_resource_wide_reads_need_a_star(teams):
    _, alice, _, _, _, _, _ = teams
    alice.describe_job_queues()  # allowed on * by the policy
    err = client_error(alice.describe_compute_environments)
    assert (err["Status"], err["Code"]) == (403, "AccessDeniedException")
    assert "on resource: *" in err["Message"]


def test_the_simulator_agrees(secure, teams):
    _, _, _, key, a, b, _ = teams
    done = secure.cli(
        "policy",
        "simulate",
        "--access-key",
        key.access_key_id,
        "--action",
        "batch:SubmitJob",
        "--resource",
        f"{ACCOUNT}:job-queue/{a}",
        "--output",
        "json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["decision"] == "allowed"
    done = secure.cli(
        "policy",
        "simulate",
        "--user",
        key.user,
        "--action",
        "batch:TerminateJob",
        "--resource",
        f"{ACCOUNT}:job-queue/{b}",
    )
    assert done.returncode == 1
    assert "explicitDeny" in done.stdout and "NotTheirs" in done.stdout


def test_share_identifier_condition(secure, unique):
    admin = secure.client()
    queue = setup_queue(admin, unique)
    jd = register(admin, unique, ["true"])
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "batch:SubmitJob",
                "Resource": "*",
                "Condition": {"StringEquals": {"batch:ShareIdentifier": "blue"}},
            }
        ],
    }
    key = secure.key(unique("sharer"), policy)
    client = secure.client(key=key)
    err = client_error(client.submit_job, jobName="x", jobQueue=queue, jobDefinition=jd)
    assert err["Code"] == "AccessDeniedException"
    err = client_error(
        client.submit_job, jobName="x", jobQueue=queue, jobDefinition=jd, shareIdentifier="red"
    )
    assert err["Code"] == "AccessDeniedException"
    # allowed by the policy; the queue (no fair-share policy) then refuses it on its own terms
    err = client_error(
        client.submit_job, jobName="x", jobQueue=queue, jobDefinition=jd, shareIdentifier="blue"
    )
    assert err["Code"] == "ClientException" and "shareIdentifier" in err["Message"]


def test_administration_needs_its_own_permissions(secure, unique):
    reader = secure.key(
        unique("reader"),
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "batch:Describe*", "Resource": "*"}],
        },
    )
    for args in (
        ("credentials", "create", "--name", "eve"),
        ("credentials", "list"),
        ("secrets", "list"),
        ("audit",),
    ):
        done = secure.cli(*args, key=reader)
        assert done.returncode == 1, args
        assert "AccessDeniedException" in done.stderr, done.stderr


def test_the_dashboard_checks_each_job(secure, teams):
    import httpx

    admin, _, _, key, a, b, jd = teams
    theirs = admin.submit_job(jobName="theirs", jobQueue=b, jobDefinition=jd)["jobId"]
    mine = admin.submit_job(jobName="mine", jobQueue=a, jobDefinition=jd)["jobId"]
    with httpx.Client(base_url=secure.endpoint) as web:
        login = {"access_key_id": key.access_key_id, "secret_access_key": key.secret}
        assert web.post("/ui/login", data=login).status_code == 303
        assert web.get(f"/ui/jobs/{theirs}").status_code == 403
        denied = web.post(f"/ui/jobs/{theirs}/terminate", data={"reason": "x"})
        assert denied.status_code == 403
        assert "batch:TerminateJob" in denied.json()["message"]
        cross = web.post(
            f"/ui/jobs/{mine}/cancel", data={}, headers={"origin": "https://evil.example"}
        )
        assert cross.status_code == 403 and "cross-site" in cross.json()["message"]
        assert web.post(f"/ui/jobs/{mine}/cancel", data={}).status_code < 400
    assert admin.describe_jobs(jobs=[theirs])["jobs"][0]["status"] != "FAILED"
    admin.terminate_job(jobId=theirs, reason="done")
    admin.terminate_job(jobId=mine, reason="done")


def test_policies_are_evaluated_in_the_requests_region(secure, unique):
    """A policy's resource ARNs are matched against the ARNs of the region the request was
    signed for, as on AWS: a key allowed only in eu-west-1 creates there and nowhere else."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "batch:CreateComputeEnvironment",
                "Resource": "arn:aws:batch:eu-west-1:*:compute-environment/*",
            }
        ],
    }
    key = secure.key(unique("west-only"), policy)
    resources = {"type": "EC2", "maxvCpus": 1, "minvCpus": 0}
    east = secure.client(key=key)
    err = client_error(
        east.create_compute_environment,
        computeEnvironmentName=unique("ce"),
        type="MANAGED",
        computeResources=resources,
    )
    assert err["Code"] == "AccessDeniedException", err
    assert "arn:aws:batch:us-east-1:000000000000:compute-environment/" in err["Message"]
    name = unique("ce")
    created = secure.client(key=key, region="eu-west-1").create_compute_environment(
        computeEnvironmentName=name, type="MANAGED", computeResources=resources
    )
    assert created["computeEnvironmentArn"] == (
        f"arn:aws:batch:eu-west-1:000000000000:compute-environment/{name}"
    )


def test_a_secret_is_authorized_by_the_arn_its_definition_gives(secure, unique):
    """A policy written for AWS's secret ARNs (with the 6-character suffix) allows a definition
    that names the secret by such an ARN; another secret stays denied."""
    name = unique("db-creds")
    sm = "arn:aws:secretsmanager:us-east-1:000000000000:secret:"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "batch:*", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": f"arn:aws:secretsmanager:*:*:secret:{name}-??????",
            },
        ],
    }
    admin = secure.client()
    queue = setup_queue(admin, unique)
    batch = secure.client(key=secure.key(unique("aws-style"), policy))

    def uses(value_from: str) -> str:
        refs = [{"name": "P", "valueFrom": value_from}]
        return register(admin, unique, ["true"], container={"secrets": refs})

    allowed, denied = uses(f"{sm}{name}-AbCdEf:password::"), uses(name)
    job = batch.submit_job(jobName="ok", jobQueue=queue, jobDefinition=allowed)["jobId"]
    admin.terminate_job(jobId=job, reason="done")
    err = client_error(batch.submit_job, jobName="no", jobQueue=queue, jobDefinition=denied)
    assert err["Code"] == "AccessDeniedException", err
    assert f"secretsmanager:GetSecretValue on resource: {sm}{name}" in err["Message"]
