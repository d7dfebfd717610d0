"""Regions and accounts as AWS has them: a request signed for a region acts in it (its ARNs
carry it; an ARN of another region is not found there), an unsigned one in the server's
``region``; the account id is a setting like any other (flag, environment, config file).
One server's resources are visible under every region name (docs/api-compatibility.md)."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import client_error, make_ce, make_queue, register, wait_job

from support.server import FAST, ServerProcess

WEST, EAST = "eu-west-1", "us-east-1"


def prefix(region: str, account: str = "000000000000") -> str:
    return f"arn:aws:batch:{region}:{account}:"


def refused_for_region(err: dict, arn: str, asked: str, used: str) -> None:
    assert err["Code"] == "ClientException" and err["Status"] == 400, err
    message = err["Message"]
    assert arn in message and f"belongs to region {asked}" in message, message
    assert f"this request is for region {used}" in message and "not found" in message, message


def test_a_clients_region_is_the_region_of_its_arns(server, unique):
    east, west = server.client(), server.client(region=WEST)
    ce = unique("ce")
    ce_west = make_ce(west, ce)
    assert ce_west == f"{prefix(WEST)}compute-environment/{ce}"
    # the same resource, seen from another region name
    seen = east.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"]
    assert seen[0]["computeEnvironmentArn"] == f"{prefix(EAST)}compute-environment/{ce}"
    assert (
        west.describe_compute_environments(computeEnvironments=[ce_west])["computeEnvironments"][0][
            "computeEnvironmentName"
        ]
        == ce
    )

    # an ARN of another region is not found, whatever the operation
    err = client_error(
        east.create_job_queue,
        jobQueueName=unique("q"),
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce_west}],
    )
    refused_for_region(err, ce_west, WEST, EAST)
    queue = unique("q")
    queue_west = make_queue(west, queue, [ce_west])
    assert queue_west == f"{prefix(WEST)}job-queue/{queue}"

    jd = register(west, unique, ["true"])
    jd_west = west.describe_job_definitions(jobDefinitionName=jd)["jobDefinitions"][0]
    assert jd_west["jobDefinitionArn"] == f"{prefix(WEST)}job-definition/{jd}:1"
    submitted = west.submit_job(
        jobName="j", jobQueue=queue_west, jobDefinition=jd_west["jobDefinitionArn"]
    )
    job_arn = submitted["jobArn"]
    assert job_arn == f"{prefix(WEST)}job/{submitted['jobId']}"
    job = wait_job(west, job_arn)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert job["jobArn"] == job_arn and job["jobQueue"] == queue_west
    assert job["jobDefinition"] == jd_west["jobDefinitionArn"]
    assert east.describe_jobs(jobs=[submitted["jobId"]])["jobs"][0]["jobArn"] == (
        f"{prefix(EAST)}job/{submitted['jobId']}"
    )
    jd_arn = jd_west["jobDefinitionArn"]
    for arn, call, kwargs in (
        (job_arn, east.describe_jobs, {"jobs": [job_arn]}),
        (jd_arn, east.list_tags_for_resource, {"resourceArn": jd_arn}),
        (
            queue_west,
            east.submit_job,
            {"jobName": "x", "jobQueue": queue_west, "jobDefinition": jd},
        ),
        (
            jd_arn,
            east.list_jobs,
            {"jobQueue": queue, "filters": [{"name": "JOB_DEFINITION", "values": [jd_arn]}]},
        ),
    ):
        refused_for_region(client_error(call, **kwargs), arn, WEST, EAST)
    assert west.list_tags_for_resource(resourceArn=jd_west["jobDefinitionArn"])["tags"] == {}

    # the job's state change events are the server's: its region, whatever the client's
    with server.http() as http:
        query = {"jobId": submitted["jobId"], "limit": 1000}
        events = http.get("/batchyard/v1/events", params=query).json()["events"]
    assert events and {e["region"] for e in events} == {EAST}
    assert {e["resources"][0] for e in events} == {f"{prefix(EAST)}job/{submitted['jobId']}"}

    # the CloudWatch Logs endpoint too: the log group's and streams' ARNs, and ARNs as input
    logs_west = server.client("logs", region=WEST)
    group = logs_west.describe_log_groups(logGroupNamePrefix="/aws/batch/job")["logGroups"][0]
    assert group["logGroupArn"] == "arn:aws:logs:eu-west-1:000000000000:log-group:/aws/batch/job"
    assert group["arn"] == group["logGroupArn"] + ":*"
    stream = job["attempts"][-1]["container"]["logStreamName"]
    streams = logs_west.describe_log_streams(
        logGroupIdentifier=group["logGroupArn"], logStreamNamePrefix=stream
    )["logStreams"]
    assert streams[0]["arn"] == f"{group['logGroupArn']}:log-stream:{stream}"
    err = client_error(
        server.client("logs").get_log_events,
        logGroupIdentifier=group["logGroupArn"],
        logStreamName=stream,
    )
    assert err["Code"] == "ResourceNotFoundException", err
    assert "arn:aws:logs:us-east-1:000000000000:log-group:/aws/batch/job" in err["Message"]


def test_an_unsigned_request_acts_in_the_servers_region(server, unique):
    ce = unique("ce")
    make_ce(server.client(region="ap-southeast-2"), ce)
    with server.http() as http:
        answer = http.post("/v1/describecomputeenvironments", json={"computeEnvironments": [ce]})
    assert answer.status_code == 200, answer.text
    found = answer.json()["computeEnvironments"]
    assert found[0]["computeEnvironmentArn"] == f"{prefix(EAST)}compute-environment/{ce}"


def test_a_region_no_arn_can_carry_is_refused(server):
    batch = server.client(region="Not-A-Region")
    err = client_error(batch.describe_job_queues)
    assert err["Code"] == "ClientException", err
    assert "'Not-A-Region'" in err["Message"] and "us-east-1" in err["Message"]


ACCOUNT, REGION = "123456789012", "ap-south-1"


@pytest.mark.parametrize("way", ["flag", "environment", "config file"])
def test_region_and_account_are_settings(way, database_url, tmp_path):
    proc = ServerProcess(tmp_path / "data", database_url(), **FAST)
    if way == "flag":
        proc.flags = ["--region", REGION, "--account-id", ACCOUNT]
    elif way == "environment":
        proc.settings.update(region=REGION, account_id=ACCOUNT)
    else:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "config.toml").write_text(
            f'region = "{REGION}"\naccount_id = "{ACCOUNT}"\n'
        )
    proc.start()
    try:
        make_ce(proc.client(region="us-west-2"), "ce")
        with proc.http() as http:  # unsigned: the server's own region
            answer = http.post("/v1/describecomputeenvironments", json={})
        assert answer.json()["computeEnvironments"][0]["computeEnvironmentArn"] == (
            f"{prefix(REGION, ACCOUNT)}compute-environment/ce"
        )
        batch = proc.client(region="us-west-2")
        found = batch.describe_compute_environments()["computeEnvironments"]
        assert (
            found[0]["computeEnvironmentArn"]
            == f"{prefix('us-west-2', ACCOUNT)}compute-environment/ce"
        )
        other = f"{prefix('us-west-2')}compute-environment/ce"
        err = client_error(batch.describe_compute_environments, computeEnvironments=[other])
        assert (
            f"belongs to account 000000000000, but this server is account {ACCOUNT}"
            in (err["Message"])
        )
    finally:
        proc.shutdown()


def test_the_aws_cli_acts_in_its_region(server, unique):
    from test_aws_cli import AWS, ENV

    if AWS is None:
        pytest.skip("the AWS CLI is not installed")
    ce = unique("ce")
    make_ce(server.client(), ce)
    cmd = [AWS, "batch", "describe-compute-environments", "--compute-environments", ce]
    done = subprocess.run(
        [*cmd, "--region", WEST, "--endpoint-url", server.endpoint, "--output", "json"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)["computeEnvironments"]
    assert found[0]["computeEnvironmentArn"] == f"{prefix(WEST)}compute-environment/{ce}"


def test_a_presigned_url_acts_in_its_region(server, unique):
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    ce = unique("ce")
    make_ce(server.client(), ce)
    body = json.dumps({"computeEnvironments": [ce]}).encode()
    url = f"{server.endpoint}/v1/describecomputeenvironments"
    req = AWSRequest(method="POST", url=url, data=body)
    SigV4QueryAuth(Credentials("testing", "testing"), "batch", "ap-northeast-1", 60).add_auth(req)
    prepared = req.prepare()
    assert "X-Amz-Credential=" in prepared.url and "Authorization" not in prepared.headers
    with server.http() as http:
        answer = http.post(prepared.url, content=body)
    assert answer.status_code == 200, answer.text
    found = answer.json()["computeEnvironments"]
    assert (
        found[0]["computeEnvironmentArn"] == f"{prefix('ap-northeast-1')}compute-environment/{ce}"
    )
