"""The audit log: every mutating call (and every refusal) with who, what, which resource,
from where and how it ended; read back with ``batchyard audit``."""

from __future__ import annotations

import json

from helpers import client_error, register, setup_queue
from secure_helpers import Key

ACCOUNT = "arn:aws:batch:us-east-1:000000000000"


def audit(secure, *args: str, since: str | None = "10m") -> list[dict]:
    window = ("--since", since) if since else ()
    done = secure.cli("audit", "--output", "json", "--limit", "1000", *window, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["events"]


def test_mutating_calls_are_recorded(secure, unique):
    batch = secure.client()
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"])
    job = batch.submit_job(jobName="audited", jobQueue=queue, jobDefinition=jd)["jobId"]
    batch.describe_jobs(jobs=[job])  # reads are not recorded
    events = audit(secure, "--principal", "admin", "--action", "batch:SubmitJob")
    mine = [e for e in events if f"{ACCOUNT}:job-queue/{queue}" in e["resources"]]
    assert mine, events
    e = mine[0]
    assert e["principal"] == "admin" and e["accessKeyId"] == secure.admin.access_key_id
    assert e["outcome"] == "Success" and e["status"] == 200
    assert e["source"] == "127.0.0.1"
    assert any(r.startswith(f"{ACCOUNT}:job-definition/{jd}") for r in e["resources"])
    assert not audit(secure, "--action", "batch:DescribeJobs", "--principal", "admin")


def test_refusals_are_recorded(secure, unique):
    reader = secure.key(
        unique("reader"),
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "batch:Describe*", "Resource": "*"}],
        },
    )
    err = client_error(
        secure.client(key=reader).create_job_queue,
        jobQueueName=unique("q"),
        priority=1,
        computeEnvironmentOrder=[],
    )
    assert err["Code"] == "AccessDeniedException"
    denied = audit(secure, "--principal", reader.user)
    assert [e["outcome"] for e in denied] == ["AccessDeniedException"]
    assert denied[0]["action"] == "batch:CreateJobQueue"
    wrong = Key(reader.access_key_id, "not-it", reader.user)
    client_error(secure.client(key=wrong).delete_job_queue, jobQueue="x")
    refused = audit(secure, "--principal", f"unauthenticated:{reader.access_key_id}")
    assert refused and refused[0]["outcome"] == "InvalidSignatureException"
    assert refused[0]["action"] == "batch:DeleteJobQueue"


def test_key_management_is_recorded(secure, unique):
    key = secure.key(unique("temp"))
    assert secure.cli("credentials", "revoke", key.access_key_id).returncode == 0
    actions = {e["action"] for e in audit(secure, "--principal", "admin")}
    assert {"iam:CreateAccessKey", "iam:DeleteAccessKey"} <= actions
    created = audit(secure, "--action", "iam:CreateAccessKey", since=None)
    local = [e for e in created if e["principal"].startswith("local:")]
    assert local and local[-1]["action"] == "iam:CreateAccessKey"  # the bootstrap key
