"""Hostile requests: deep nesting, huge lists, odd unicode, path tricks, negative sizes.
Each gets a 4xx ClientException with a message, never a 500 or a hang, and changes nothing."""

from __future__ import annotations

import json

import pytest
from helpers import register, setup_queue


def _post(server, path: str, body: bytes | str) -> tuple[int, dict, dict]:
    with server.http() as http:
        r = http.post(
            path,
            content=body if isinstance(body, bytes) else body.encode(),
            headers={"content-type": "application/json"},
        )
    return r.status_code, dict(r.headers), (r.json() if r.content else {})


def _refused(status: int, headers: dict, body: dict) -> str:
    assert 400 <= status < 500, (status, body)
    assert headers.get("x-amzn-errortype") == "ClientException"
    assert body.get("message") and "Traceback" not in body["message"]
    return body["message"]


def test_deep_nesting(server):
    deep = "[" * 100_000 + "]" * 100_000
    message = _refused(*_post(server, "/v1/describejobqueues", '{"jobQueues": ' + deep + "}"))
    assert "JSON" in message


def test_ten_thousand_element_lists(server):
    message = _refused(
        *_post(server, "/v1/describejobs", json.dumps({"jobs": [f"j{i}" for i in range(10_000)]}))
    )
    assert "at most 100" in message
    message = _refused(
        *_post(server, "/v1/canceljobs", json.dumps({"jobs": ["x"] * 10_000, "reason": "r"}))
    )
    assert "at most 50" in message


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "a/b",
        "queue\u0000",
        "é-queue",
        "🚀",
        "x" * 129,
        "",
        " spaced",
        "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    ],
)
def test_names_with_tricks_are_refused(server, name):
    body = json.dumps(
        {
            "jobQueueName": name,
            "priority": 1,
            "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "x"}],
        }
    )
    _refused(*_post(server, "/v1/createjobqueue", body))
    status, headers, found = _post(
        server, "/v1/describejobqueues", json.dumps({"jobQueues": [name] if name else ["_"]})
    )
    if status == 200:
        assert found["jobQueues"] == []
    else:
        _refused(status, headers, found)


def test_lone_surrogates_and_invalid_utf8(server):
    _refused(*_post(server, "/v1/describejobqueues", b'{"jobQueues": ["\\ud800"]}'))
    _refused(*_post(server, "/v1/describejobqueues", b'{"jobQueues": ["\xff\xfe"]}'))


def test_negative_and_absurd_sizes(server, batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"])
    for body in (
        {"arrayProperties": {"size": -1}},
        {"arrayProperties": {"size": 2**40}},
        {"timeout": {"attemptDurationSeconds": -5}},
        {"retryStrategy": {"attempts": -1}},
        {"containerOverrides": {"resourceRequirements": [{"type": "VCPU", "value": "-2"}]}},
        {"containerOverrides": {"resourceRequirements": [{"type": "MEMORY", "value": "1e309"}]}},
    ):
        req = {"jobName": "h", "jobQueue": queue, "jobDefinition": jd, **body}
        _refused(*_post(server, "/v1/submitjob", json.dumps(req)))
    listed = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["h"]}])[
        "jobSummaryList"
    ]
    assert listed == []
