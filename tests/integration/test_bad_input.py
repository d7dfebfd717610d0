"""Bad input, sent as raw HTTP where boto3 would refuse to send it: every answer is a 4xx
``ClientException`` whose message says what to fix, never a 500 or a stack trace, and the
stored state is unchanged afterwards."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from botocore.model import Shape
from helpers import (
    arn,
    client_error,
    delete_ce,
    describe_ce,
    describe_queue,
    make_ce,
    make_queue,
    register_jd,
    wait_for,
)

from batchyard.api.model import batch_model
from batchyard.api.operations import load_handlers

JSON = {"content-type": "application/json"}


def send(server, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    """One raw request; ``body`` is sent as is (bytes, str) or as JSON (anything else)."""
    raw = body is None or isinstance(body, bytes | str | Iterator)
    content = body if raw else orjson.dumps(body)
    with server.http() as http:
        return http.request(method, path, content=content, headers=JSON, **kwargs)


def refused(response: Any, *fragments: str, status: int = 400) -> str:
    """Check an AWS-shaped client error; returns its message."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["x-amzn-ErrorType"] == "ClientException"
    body = response.json()
    assert body["__type"] == "ClientException"
    message = body["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def nothing_created(batch, body: dict) -> None:
    """The resource a refused create request names does not exist."""
    if isinstance(body.get("computeEnvironmentName"), str):
        assert describe_ce(batch, body["computeEnvironmentName"]) is None
    if "jobDefinitionName" in body:
        found = batch.describe_job_definitions(jobDefinitionName=body["jobDefinitionName"])
        assert found["jobDefinitions"] == []
    if "consumableResourceName" in body:
        err = client_error(
            batch.describe_consumable_resource, consumableResource=body["consumableResourceName"]
        )
        assert "does not exist" in err["Message"]
    if "name" in body:
        assert not batch.describe_scheduling_policies(arns=[body["name"]])["schedulingPolicies"]


def test_malformed_json(server, batch, unique):
    name = unique("sp")
    for body, fragment in [
        (b'{"name": "' + name.encode(), "the request body is not valid JSON"),
        (b'{"name": "' + name.encode() + b'",}', "the request body is not valid JSON"),
        (b'{"name": "\xff\xfe"}', "the request body is not valid JSON"),
        (b'{"name": NaN}', "the request body is not valid JSON"),
        (b'{"name": "\\ud800"}', "the request body is not valid JSON"),
        (b"[1, 2]", "the request body must be a JSON object"),
        (b'"' + name.encode() + b'"', "the request body must be a JSON object"),
        (b"null", "the request body must be a JSON object"),
        (b"{" * 5000 + b"}" * 5000, "the request body is not valid JSON"),
        (b"", "name: required parameter is missing"),
    ]:
        refused(send(server, "POST", "/v1/createschedulingpolicy", body), fragment)
    assert not batch.describe_scheduling_policies(arns=[name])["schedulingPolicies"]


def test_wrong_types_missing_and_unknown_fields(server, batch, unique):
    ce = unique("ce")
    make_ce(batch, ce)
    order = [{"order": 1, "computeEnvironment": ce}]
    cases: list[tuple[dict, list[str]]] = [
        ({"priority": "1"}, ['priority: expected an integer, got a string "1"']),
        ({"priority": 1.5}, ["priority: expected an integer, got a number 1.5"]),
        ({"priority": True}, ["priority: expected an integer, got a boolean"]),
        ({"priority": 2**31}, ["is out of range; it must be between"]),
        (
            {"tags": ["team"]},
            ["tags: expected an object of key-value pairs, got a list"],
        ),
        ({"tags": {"team": 1}}, ["tags.team: expected a string, got an integer"]),
        ({"tags": {"team": None}}, ["tags.team: null is not allowed"]),
        (
            {"computeEnvironmentOrder": {"order": 1}},
            ["computeEnvironmentOrder: expected a list, got an object"],
        ),
        (
            {"computeEnvironmentOrder": [None]},
            ["computeEnvironmentOrder[0]: null is not allowed in a list"],
        ),
        (
            {"computeEnvironmentOrder": [{"order": "1", "computeEnvironment": 5}]},
            [
                "computeEnvironmentOrder[0].order: expected an integer",
                "computeEnvironmentOrder[0].computeEnvironment: expected a string",
            ],
        ),
        (
            {"computeEnvironmentOrder": [{"order": 1, "ce": ce}]},
            ["computeEnvironmentOrder[0].computeEnvironment: required parameter is missing"],
        ),
        (
            {"state": "ON"},
            ['state: invalid value "ON"; valid values are: ENABLED'],
        ),
        ({"priority": None}, ["priority: required parameter is missing"]),
        ({"jobQueueName": None}, ["jobQueueName: required parameter is missing"]),
        (
            {"jobQueueName": ["q"]},
            ["jobQueueName: expected a string, got a list"],
        ),
        (
            {"tags": {f"k{i}": "v" for i in range(51)}},
            ["tags: has 51 entries; at most 50 allowed"],
        ),
    ]
    for change, fragments in cases:
        name = unique("q")
        body = {"jobQueueName": name, "priority": 1, "computeEnvironmentOrder": order, **change}
        message = refused(send(server, "POST", "/v1/createjobqueue", body), *fragments)
        assert message.startswith("Invalid CreateJobQueue request: "), message
        assert describe_queue(batch, name) is None

    for path, body, fragments in [
        ("createcomputeenvironment", {}, ["computeEnvironmentName: required", "type: required"]),
        (
            "createcomputeenvironment",
            {"computeEnvironmentName": unique("ce"), "type": "MANAGED", "computeResources": "big"},
            ["computeResources: expected an object, got a string"],
        ),
        (
            "createcomputeenvironment",
            {
                "computeEnvironmentName": unique("ce"),
                "type": "MANAGED",
                "computeResources": {"type": "EC2"},
            },
            ["computeResources.maxvCpus: required parameter is missing"],
        ),
        (
            "registerjobdefinition",
            {
                "jobDefinitionName": unique("jd"),
                "type": "container",
                "containerProperties": {"image": "x", "privileged": "yes"},
            },
            ['containerProperties.privileged: expected true or false, got a string "yes"'],
        ),
        (
            "registerjobdefinition",
            {"jobDefinitionName": unique("jd"), "type": "docker"},
            ['type: invalid value "docker"; valid values are: container, multinode'],
        ),
        (
            "createconsumableresource",
            {"consumableResourceName": unique("cr"), "totalQuantity": 2**63},
            ["totalQuantity: 9223372036854775808 is out of range"],
        ),
        (
            "createschedulingpolicy",
            {
                "name": unique("sp"),
                "fairsharePolicy": {"shareDistribution": [{"weightFactor": "x"}]},
            },
            [
                "fairsharePolicy.shareDistribution[0].shareIdentifier: required parameter",
                "fairsharePolicy.shareDistribution[0].weightFactor: expected a number",
            ],
        ),
        (
            "updateconsumableresource",
            {"consumableResource": "x", "quantity": 1, "clientToken": ""},
            ["clientToken: has 0 characters; at least 1 required"],
        ),
        (
            "createschedulingpolicy",
            {"name": unique("sp"), "tags": {"k": "v" * 257}},
            ["tags.k: has 257 characters; at most 256 allowed"],
        ),
        (
            "describejobqueues",
            {"maxResults": "10"},
            ['maxResults: expected an integer, got a string "10"'],
        ),
    ]:
        refused(send(server, "POST", f"/v1/{path}", body), *fragments)
        nothing_created(batch, body)

    # many mistakes at once are all named (up to ten)
    message = refused(
        send(server, "POST", "/v1/createjobqueue", {"tags": {f"k{i}": i for i in range(14)}}),
        "jobQueueName: required parameter is missing",
        "(and 6 more)",
    )
    assert message.count("expected a string") == 8
    # no queue was created on the compute environment: it can be deleted
    delete_ce(batch, ce)


def test_nul_characters_are_refused_on_every_store(server, batch, unique):
    name = unique("jd")
    for body, fragment in [
        (
            {
                "jobDefinitionName": name,
                "type": "container",
                "containerProperties": {"image": "a\x00b"},
            },
            "containerProperties.image: contains a NUL character",
        ),
        (
            {
                "jobDefinitionName": name,
                "type": "container",
                "containerProperties": {"image": "x"},
                "tags": {"k\x00": "v"},
            },
            "contains a NUL character",
        ),
    ]:
        refused(send(server, "POST", "/v1/registerjobdefinition", body), fragment)
    assert batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"] == []


def test_oversized_bodies(server, batch, unique):
    name = unique("sp")
    huge = orjson.dumps({"name": name, "tags": {"k": "v" * (5 * 1024 * 1024)}})
    setting = (
        "(4 MiB), set by the server's max_request_bytes (environment variable "
        "BATCHYARD_MAX_REQUEST_BYTES, or max_request_bytes in its config file)"
    )
    refused(
        send(server, "POST", "/v1/createschedulingpolicy", huge),
        f"the request body is {len(huge)} bytes; the limit is 4194304 bytes {setting}",
        status=413,
    )
    # the same through boto3, which sends what the model does not bound (botocore checks no max)
    err = client_error(
        batch.submit_job,
        jobName=name,
        jobQueue="q",
        jobDefinition="jd",
        parameters={"p": "x" * (12 * 1024 * 1024)},
    )
    assert err["Code"] == "ClientException" and err["Status"] == 413, err
    assert f"the limit is 4194304 bytes {setting}" in err["Message"], err

    def chunks():  # no content-length: the server counts as it reads
        yield b'{"name": "' + name.encode() + b'", "tags": {"k": "'
        for _ in range(5):
            yield b"v" * (1024 * 1024)
        yield b'"}}'

    refused(
        send(server, "POST", "/v1/createschedulingpolicy", chunks()),
        f"the request body exceeds the limit of 4194304 bytes {setting}",
        status=413,
    )
    assert not batch.describe_scheduling_policies(arns=[name])["schedulingPolicies"]


def test_unknown_paths_and_methods(server):
    ce_tags = "/v1/tags/" + arn("compute-environment", "x").replace(":", "%3A").replace("/", "%2F")
    for method, path, status, fragments in [
        ("POST", "/v1/createjob", 404, ["no AWS Batch operation is served at /v1/createjob"]),
        ("POST", "/v1/createjobqueue/extra", 404, ["no AWS Batch operation is served"]),
        ("POST", "/", 404, ["the API lives under /v1/"]),
        ("POST", "/v2/describejobqueues", 404, ["no AWS Batch operation is served"]),
        ("GET", "/v1/createjobqueue", 405, ["/v1/createjobqueue accepts POST, not GET"]),
        ("DELETE", "/v1/describejobqueues", 405, ["accepts POST, not DELETE"]),
        ("PATCH", "/v1/createcomputeenvironment", 405, ["accepts POST, not PATCH"]),
        ("PUT", ce_tags, 405, ["accepts DELETE, GET, POST, not PUT"]),
    ]:
        refused(send(server, method, path, {}), *fragments, status=status)


def test_the_root_tells_a_client_where_things_are(server):
    """``GET /`` without HTML in Accept (curl, httpx) is a short page, not an error; it
    shadows no AWS operation, and the CloudWatch Logs API at ``POST /`` still answers."""
    import subprocess

    import botocore.session

    base = server.endpoint
    text = subprocess.run(
        ["curl", "-sS", "--fail", base + "/"], capture_output=True, text=True, timeout=30
    ).stdout
    for line in [
        "batchyard ",
        f"dashboard      {base}/ui",
        f"point a client's endpoint_url at {base}",
        f"health         {base}/healthz",
        f"metrics        {base}/metrics",
        "batchyard --help",
    ]:
        assert line in text, (line, text)
    # and the server's start-up line names the dashboard too
    assert f"listening on {base} (dashboard {base}/ui;" in server.log_path.read_text()
    with server.http() as http:
        answer = http.get("/", headers={"accept": "application/json"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["endpointUrl"] == base
        assert answer.json()["dashboard"] == base + "/ui"
        assert answer.json()["batchApi"] == base + "/v1/"
        browser = http.get("/", headers={"accept": "text/html,*/*"})
        assert browser.status_code == 307 and browser.headers["location"] == "/ui"
    # no operation of the APIs served here is GET /
    session = botocore.session.get_session()
    for service in ("batch", "logs"):
        model = session.get_service_model(service)
        for name in model.operation_names:
            http = model.operation_model(name).http
            assert (http["method"], http["requestUri"]) != ("GET", "/"), (service, name)
    groups = server.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/aws/batch/job"]


def test_unknown_resources_and_invalid_state_changes(batch, unique):
    ce, unmanaged, queue, jd, policy, consumable = (
        unique(k) for k in ("ce", "um", "q", "jd", "sp", "cr")
    )
    make_ce(batch, ce)
    batch.create_compute_environment(computeEnvironmentName=unmanaged, type="UNMANAGED")
    wait_for(lambda: describe_ce(batch, unmanaged)["status"] == "VALID", what="VALID")
    make_queue(batch, queue, [ce])
    register_jd(batch, jd)
    batch.deregister_job_definition(jobDefinition=f"{jd}:1")
    batch.create_scheduling_policy(name=policy)
    batch.create_consumable_resource(consumableResourceName=consumable, totalQuantity=1)

    def snapshot() -> list:
        return [
            describe_ce(batch, ce),
            describe_ce(batch, unmanaged),
            describe_queue(batch, queue),
            batch.describe_job_definitions(jobDefinitionName=jd)["jobDefinitions"],
            batch.describe_scheduling_policies(arns=[policy])["schedulingPolicies"],
            batch.describe_consumable_resource(consumableResource=consumable)["totalQuantity"],
        ]

    before = snapshot()
    for call, kwargs, message in [
        (
            batch.update_compute_environment,
            {"computeEnvironment": "nope", "state": "DISABLED"},
            "compute environment 'nope' does not exist",
        ),
        (batch.delete_compute_environment, {"computeEnvironment": "nope"}, "does not exist"),
        (batch.update_job_queue, {"jobQueue": "nope", "priority": 2}, "job queue 'nope' does not"),
        (batch.delete_job_queue, {"jobQueue": "nope"}, "job queue 'nope' does not exist"),
        (batch.deregister_job_definition, {"jobDefinition": "nope:1"}, "nope:1 does not exist"),
        (batch.update_scheduling_policy, {"arn": "nope"}, "scheduling policy 'nope' does not"),
        (batch.delete_scheduling_policy, {"arn": "nope"}, "does not exist"),
        (batch.describe_consumable_resource, {"consumableResource": "nope"}, "does not exist"),
        (
            batch.update_consumable_resource,
            {"consumableResource": "nope", "quantity": 1},
            "consumable resource 'nope' does not exist",
        ),
        (batch.delete_consumable_resource, {"consumableResource": "nope"}, "does not exist"),
        (
            batch.create_job_queue,
            {
                "jobQueueName": unique("q"),
                "priority": 1,
                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "nope"}],
            },
            "compute environment 'nope' does not exist",
        ),
        # invalid state changes
        (
            batch.delete_compute_environment,
            {"computeEnvironment": ce},
            "is ENABLED; set its state to DISABLED",
        ),
        (batch.delete_job_queue, {"jobQueue": queue}, "is ENABLED; set its state to DISABLED"),
        (batch.deregister_job_definition, {"jobDefinition": f"{jd}:1"}, "is already INACTIVE"),
        (
            batch.update_compute_environment,
            {"computeEnvironment": unmanaged, "computeResources": {"maxvCpus": 4}},
            "computeResources can only be updated on a MANAGED compute environment",
        ),
        (
            batch.update_compute_environment,
            {"computeEnvironment": ce, "unmanagedvCpus": 4},
            "unmanagedvCpus applies only to UNMANAGED compute environments",
        ),
        (
            batch.update_compute_environment,
            {"computeEnvironment": ce, "computeResources": {"minvCpus": 8}},
            "maxvCpus (2) must be greater than or equal to minvCpus (8)",
        ),
        (
            batch.update_compute_environment,
            {
                "computeEnvironment": ce,
                "eksConfiguration": {"accessEntry": {"desiredState": "ENABLED"}},
            },
            "eksConfiguration can only be updated on an EKS compute environment",
        ),
    ]:
        err = client_error(call, **kwargs)
        assert err["Code"] == "ClientException" and err["Status"] == 400, kwargs
        assert message in err["Message"], (kwargs, err["Message"])
    assert snapshot() == before


def test_a_mistyped_name_gets_the_names_it_may_have_meant(batch, unique):
    """Names of queues, compute environments, job definitions, scheduling policies and
    consumable resources: a NotFound names up to three close ones, ignoring case."""
    ce, queue, jd = unique("quickstart-ce"), unique("quickstart"), unique("hello-world")
    policy, consumable = unique("fairshare"), unique("licenses")
    make_ce(batch, ce)
    make_queue(batch, queue, [ce])
    register_jd(batch, jd)
    batch.create_scheduling_policy(name=policy)
    batch.create_consumable_resource(consumableResourceName=consumable, totalQuantity=1)

    def swapped(name: str) -> str:  # a typo: two letters the wrong way round
        return name[:3] + name[4] + name[3] + name[5:]

    job = {"jobName": "x", "jobQueue": queue, "jobDefinition": jd}
    for call, kwargs, message in [
        (
            batch.submit_job,
            {**job, "jobQueue": swapped(queue)},
            f"jobQueue: job queue {swapped(queue)!r} does not exist; did you mean {queue!r}",
        ),
        (
            batch.submit_job,
            {**job, "jobQueue": queue.upper()},
            f"does not exist; did you mean {queue!r}",
        ),
        (
            batch.submit_job,
            {**job, "jobDefinition": swapped(jd)},
            f"jobDefinition: job definition {swapped(jd)!r} has no ACTIVE revision; "
            f"did you mean {jd!r}",
        ),
        (
            batch.submit_job,
            {**job, "jobDefinition": f"{swapped(jd)}:1"},
            f"job definition {swapped(jd)}:1 does not exist; did you mean {jd!r}",
        ),
        (
            batch.submit_job,
            {**job, "jobDefinition": f"{jd}:9"},
            f"job definition {jd}:9 does not exist; its newest revision is {jd}:1",
        ),
        (
            batch.list_jobs,
            {"jobQueue": swapped(queue)},
            f"jobQueue: job queue {swapped(queue)!r} does not exist; did you mean {queue!r}",
        ),
        (
            batch.update_job_queue,
            {"jobQueue": swapped(queue), "priority": 2},
            f"did you mean {queue!r}",
        ),
        (
            batch.update_compute_environment,
            {"computeEnvironment": swapped(ce), "state": "DISABLED"},
            f"compute environment {swapped(ce)!r} does not exist; did you mean {ce!r}",
        ),
        (
            batch.create_job_queue,
            {
                "jobQueueName": unique("q"),
                "priority": 1,
                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": swapped(ce)}],
            },
            f"computeEnvironmentOrder: compute environment {swapped(ce)!r} does not exist; "
            f"did you mean {ce!r}",
        ),
        (
            batch.delete_scheduling_policy,
            {"arn": arn("scheduling-policy", swapped(policy))},
            f"scheduling policy {swapped(policy)!r} does not exist; did you mean {policy!r}",
        ),
        (
            batch.update_consumable_resource,
            {"consumableResource": swapped(consumable), "quantity": 2},
            f"consumable resource {swapped(consumable)!r} does not exist; "
            f"did you mean {consumable!r}",
        ),
    ]:
        err = client_error(call, **kwargs)
        assert err["Code"] == "ClientException" and err["Status"] == 400, err
        assert message in err["Message"], (kwargs, err["Message"])
    # nothing close: no suggestion, the plain message
    err = client_error(batch.submit_job, **{**job, "jobQueue": "zz"})
    assert err["Message"] == "jobQueue: job queue 'zz' does not exist", err
    every_status = [{"name": "JOB_NAME", "values": ["x"]}]
    assert batch.list_jobs(jobQueue=queue, filters=every_status)["jobSummaryList"] == []
    assert batch.describe_consumable_resource(consumableResource=consumable)["totalQuantity"] == 1


def _minimal(shape: Shape) -> Any:
    """The smallest value ``shape`` accepts: required members only, lengths at their minimum."""
    kind, meta = shape.type_name, shape.metadata
    if kind == "structure":
        return {name: _minimal(shape.members[name]) for name in shape.required_members}
    if kind == "list":
        return [_minimal(shape.member) for _ in range(meta.get("min", 0))]
    if kind == "map":
        return {f"k{i}": _minimal(shape.value) for i in range(meta.get("min", 0))}
    if kind == "string":
        return meta["enum"][0] if meta.get("enum") else "x" * max(1, meta.get("min", 1))
    if kind in ("integer", "long"):
        return max(1, meta.get("min", 1))
    if kind in ("float", "double"):
        return 1.0
    if kind == "boolean":
        return True
    raise AssertionError(f"no minimal value for {shape.name} ({kind})")


UNIMPLEMENTED = sorted(set(batch_model().operation_names) - set(load_handlers()))


def test_some_operations_are_not_implemented_yet():
    assert {"CreateServiceEnvironment", "CreateQuotaShare", "SubmitServiceJob"} <= set(
        UNIMPLEMENTED
    )


@pytest.mark.parametrize("name", UNIMPLEMENTED)
def test_unimplemented_operations_say_so(server, name):
    op = batch_model().operation_model(name)
    body = _minimal(op.input_shape) if op.input_shape is not None else {}
    path = re.sub(r"\{[^}]+\}", "x", op.http["requestUri"].split("?", 1)[0])
    for member, shape in (op.input_shape.members if op.input_shape is not None else {}).items():
        if shape.serialization.get("location"):  # sent in the path or query, not the body
            body.pop(member, None)
    refused(
        send(server, op.http["method"], path, body),
        f"{name} is part of the AWS Batch API but batchyard does not support it yet",
    )


def test_an_unimplemented_operation_through_boto3(batch, unique):
    name = unique("env")
    err = client_error(
        batch.create_service_environment,
        serviceEnvironmentName=name,
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}],
    )
    assert err["Code"] == "ClientException" and err["Status"] == 400
    assert "CreateServiceEnvironment is part of the AWS Batch API" in err["Message"]


def test_values_that_only_look_valid(batch, unique):
    """A trailing newline or a non-ASCII digit must not slip through a pattern check."""
    name = unique("look")
    retry = {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1\n", "action": "EXIT"}]}
    for call, kwargs, message in [
        (
            batch.create_compute_environment,
            {"computeEnvironmentName": f"{name}\n", "type": "UNMANAGED"},
            "is not valid: use 1 to 128 letters",
        ),
        (
            batch.deregister_job_definition,
            {"jobDefinition": f"{name}:²"},
            "the revision after ':' must be a positive number",
        ),
        (
            batch.describe_job_definitions,
            {"jobDefinitions": [f"{name}:٣"]},
            "the revision after ':' must be a positive number",
        ),
        (
            batch.register_job_definition,
            {
                "jobDefinitionName": name,
                "type": "container",
                "containerProperties": {"image": "x"},
                "retryStrategy": retry,
            },
            "onExitCode '1\\n' is not a valid pattern",
        ),
        (
            batch.list_tags_for_resource,
            {"resourceArn": arn("job-queue", name) + "\n"},
            "is not a valid AWS Batch ARN",
        ),
    ]:
        err = client_error(call, **kwargs)
        assert err["Code"] == "ClientException" and err["Status"] == 400, kwargs
        assert message in err["Message"], (kwargs, err["Message"])
    assert describe_ce(batch, f"{name}\n") is None
    assert batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"] == []


def test_null_means_not_sent(server, batch, unique):
    name = unique("sp")
    body = {"name": name, "tags": None, "fairsharePolicy": {"shareDistribution": None}}
    response = send(server, "POST", "/v1/createschedulingpolicy", body)
    assert response.status_code == 200, response.text
    (policy,) = batch.describe_scheduling_policies(arns=[name])["schedulingPolicies"]
    assert policy["tags"] == {} and policy["fairsharePolicy"] == {}
    response = send(
        server, "POST", "/v1/describecomputeenvironments", {"computeEnvironments": None}
    )
    assert response.status_code == 200, response.text
