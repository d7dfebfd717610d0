"""Job output through the CloudWatch Logs–compatible endpoint: boto3's logs client and the
AWS CLI, unchanged."""

from __future__ import annotations

import json
import os
import subprocess

from helpers import client_error, register, setup_queue, wait_job


def _job_with_output(batch, unique, lines: int = 30) -> dict:
    queue = setup_queue(batch, unique)
    jd = register(
        batch,
        unique,
        ["sh", "-c", f'for i in $(seq 1 {lines}); do echo "line $i"; done; echo oops >&2'],
    )
    return wait_job(
        batch, batch.submit_job(jobName="talk", jobQueue=queue, jobDefinition=jd)["jobId"]
    )


def test_get_log_events_pages_both_ways(batch, server, unique):
    job = _job_with_output(batch, unique)
    stream = job["attempts"][0]["container"]["logStreamName"]
    logs = server.client("logs")
    head = logs.get_log_events(
        logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True, limit=10
    )
    assert [e["message"] for e in head["events"]] == [f"line {i}" for i in range(1, 11)]
    nxt = logs.get_log_events(
        logGroupName="/aws/batch/job",
        logStreamName=stream,
        nextToken=head["nextForwardToken"],
        limit=100,
    )
    assert [e["message"] for e in nxt["events"]][-2:] == ["line 30", "oops"]
    end = logs.get_log_events(
        logGroupName="/aws/batch/job", logStreamName=stream, nextToken=nxt["nextForwardToken"]
    )
    assert end["events"] == [] and end["nextForwardToken"] == nxt["nextForwardToken"]
    tail = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream, limit=2)
    assert [e["message"] for e in tail["events"]] == ["line 30", "oops"]
    back = logs.get_log_events(
        logGroupName="/aws/batch/job",
        logStreamName=stream,
        nextToken=tail["nextBackwardToken"],
        limit=3,
    )
    assert [e["message"] for e in back["events"]] == ["line 27", "line 28", "line 29"]
    assert all(e["timestamp"] >= job["startedAt"] - 1000 for e in head["events"])


def test_describe_and_filter(batch, server, unique):
    job = _job_with_output(batch, unique, lines=5)
    stream = job["attempts"][0]["container"]["logStreamName"]
    logs = server.client("logs")
    prefix = stream.rsplit("/", 1)[0]
    streams = logs.describe_log_streams(logGroupName="/aws/batch/job", logStreamNamePrefix=prefix)[
        "logStreams"
    ]
    assert [s["logStreamName"] for s in streams] == [stream]
    assert streams[0]["storedBytes"] > 0
    found = logs.filter_log_events(
        logGroupName="/aws/batch/job", logStreamNames=[stream], filterPattern='"line 3"'
    )
    assert [e["message"] for e in found["events"]] == ["line 3"]
    assert found["events"][0]["logStreamName"] == stream


def test_unknown_stream_and_group(server):
    logs = server.client("logs")
    from botocore.exceptions import ClientError

    for kwargs in (
        {
            "logGroupName": "/aws/batch/job",
            "logStreamName": "nope/default/0123456789abcdef0123456789abcdef",
        },
        {"logGroupName": "/other", "logStreamName": "x"},
    ):
        try:
            logs.get_log_events(**kwargs)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException"
            assert "does not exist" in e.response["Error"]["Message"]
        else:
            raise AssertionError("expected ResourceNotFoundException")


def test_aws_cli_reads_job_output(batch, server, unique):
    job = _job_with_output(batch, unique, lines=3)
    stream = job["attempts"][0]["container"]["logStreamName"]
    out = subprocess.run(
        [
            "aws",
            "logs",
            "get-log-events",
            "--endpoint-url",
            server.endpoint,
            "--log-group-name",
            "/aws/batch/job",
            "--log-stream-name",
            stream,
            "--start-from-head",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
        check=True,
    )
    assert [e["message"] for e in json.loads(out.stdout)["events"]] == [
        "line 1",
        "line 2",
        "line 3",
        "oops",
    ]
    described = subprocess.run(
        [
            "aws",
            "batch",
            "describe-jobs",
            "--endpoint-url",
            server.endpoint,
            "--jobs",
            job["jobId"],
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert (
        json.loads(described.stdout)["jobs"][0]["attempts"][0]["container"]["logStreamName"]
        == stream
    )


def test_bad_token_is_refused(batch, server, unique):
    job = _job_with_output(batch, unique, lines=1)
    stream = job["attempts"][0]["container"]["logStreamName"]
    err = client_error(
        server.client("logs").get_log_events,
        logGroupName="/aws/batch/job",
        logStreamName=stream,
        nextToken="x/12",
    )
    assert err["Code"] == "InvalidParameterException"
