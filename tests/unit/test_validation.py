"""Request validation against the model's input shapes: what AWS (or, where AWS's rule is
unknown, botocore's own client-side validator) refuses is refused, each failure naming the
field, what was sent and what is accepted; what AWS accepts is accepted."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchyard.api.model import batch_model, logs_model
from batchyard.api.validation import validate
from batchyard.errors import InvalidRequest
from support.strategies import wire_values

MODEL = batch_model()
INPUTS = [
    (name, MODEL.operation_model(name).input_shape)
    for name in MODEL.operation_names
    if MODEL.operation_model(name).input_shape is not None
]


def problem(operation: str, params: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        validate(params, MODEL.operation_model(operation).input_shape, operation)
    message = caught.value.message
    assert message.startswith(f"Invalid {operation} request: ")
    return message


QUEUE = {"jobQueueName": "q", "priority": 1}


def managed_ce(**resources: Any) -> dict[str, Any]:
    """A CreateComputeEnvironment request with ``resources`` in its computeResources."""
    return {
        "computeEnvironmentName": "c",
        "type": "MANAGED",
        "computeResources": {"type": "EC2", "maxvCpus": 1, **resources},
    }


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("CreateJobQueue", {}, "jobQueueName: required parameter is missing"),
        ("CreateJobQueue", {**QUEUE, "priority": None}, "priority: required parameter is missing"),
        ("CreateJobQueue", {**QUEUE, "priority": "1"}, 'expected an integer, got a string "1"'),
        ("CreateJobQueue", {**QUEUE, "priority": True}, "expected an integer, got a boolean"),
        ("CreateJobQueue", {**QUEUE, "priority": 1.0}, "expected an integer, got a number 1.0"),
        ("CreateJobQueue", {**QUEUE, "priority": 2**31}, "2147483648 is out of range"),
        ("CreateJobQueue", {**QUEUE, "state": "on"}, 'state: invalid value "on"; valid values'),
        ("CreateJobQueue", {**QUEUE, "jobQueueName": 7}, "jobQueueName: expected a string, got"),
        ("CreateJobQueue", {**QUEUE, "jobQueueName": "a\x00"}, "contains a NUL character"),
        ("CreateJobQueue", {**QUEUE, "tags": []}, "tags: expected an object of key-value pairs"),
        (
            "CreateJobQueue",
            {**QUEUE, "tags": {f"k{i}": "v" for i in range(51)}},
            "tags: has 51 entries; at most 50 allowed",
        ),
        (
            "CreateComputeEnvironment",
            managed_ce(capacityTags={f"k{i}": "v" for i in range(51)}),
            "computeResources.capacityTags: has 51 entries; at most 50 allowed",
        ),
        ("CreateJobQueue", {**QUEUE, "tags": {"k" * 129: "v"}}, "has 129 characters; at most 128"),
        ("CreateJobQueue", {**QUEUE, "tags": {"k": "v" * 257}}, "has 257 characters; at most 256"),
        ("CreateJobQueue", {**QUEUE, "tags": {"k": None}}, "tags.k: null is not allowed"),
        ("CreateJobQueue", {**QUEUE, "tags": {"": "v"}}, 'tags key "": has 0 characters'),
        ("CreateJobQueue", {**QUEUE, "tags": {"k": 1}}, "tags.k: expected a string"),
        (
            "CreateJobQueue",
            {**QUEUE, "computeEnvironmentOrder": [None]},
            "computeEnvironmentOrder[0]: null is not allowed in a list",
        ),
        (
            "CreateJobQueue",
            {**QUEUE, "computeEnvironmentOrder": [{"order": 1}]},
            "computeEnvironmentOrder[0].computeEnvironment: required parameter is missing",
        ),
        ("CreateJobQueue", {**QUEUE, "computeEnvironmentOrder": "ce"}, "expected a list, got a"),
        ("CreateJobQueue", [QUEUE], "request: expected an object, got a list"),
        ("UntagResource", {"resourceArn": "a", "tagKeys": []}, "tagKeys: has 0 items; at least"),
        (
            "UpdateConsumableResource",
            {"consumableResource": "c", "clientToken": ""},
            "clientToken: has 0 characters; at least 1 required",
        ),
        (
            "UpdateComputeEnvironment",
            {"computeEnvironment": "c", "updatePolicy": {"jobExecutionTimeoutMinutes": 0}},
            "updatePolicy.jobExecutionTimeoutMinutes: 0 is out of range; it must be between 1",
        ),
        (
            "UpdateComputeEnvironment",
            {"computeEnvironment": "c", "updatePolicy": {"jobExecutionTimeoutMinutes": 7201}},
            "7201 is out of range; it must be between 1 and 7200",
        ),
        (
            "CreateConsumableResource",
            {"consumableResourceName": "c", "totalQuantity": 2**63},
            "out of range; it must be between -9223372036854775808 and 9223372036854775807",
        ),
        (
            "RegisterJobDefinition",
            {"jobDefinitionName": "d", "type": "container", "propagateTags": "yes"},
            'propagateTags: expected true or false, got a string "yes"',
        ),
        (
            "CreateSchedulingPolicy",
            {"name": "p", "fairsharePolicy": {"computeReservation": "5"}},
            "fairsharePolicy.computeReservation: expected an integer",
        ),
        (
            "CreateSchedulingPolicy",
            {
                "name": "p",
                "fairsharePolicy": {
                    "shareDistribution": [{"shareIdentifier": "a", "weightFactor": "1"}]
                },
            },
            "fairsharePolicy.shareDistribution[0].weightFactor: expected a number",
        ),
    ],
)
def test_each_failure_is_named(operation, params, expected):
    assert expected in problem(operation, params)


def test_every_failure_is_reported_up_to_ten():
    message = problem("CreateJobQueue", {"tags": {f"k{i}": i for i in range(12)}})
    assert message.count("expected a string") == 8  # after the two missing required members
    assert "jobQueueName: required parameter is missing" in message
    assert message.endswith("(and 4 more)")


def accepted(operation: str, params: Any) -> Any:
    validate(params, MODEL.operation_model(operation).input_shape, operation)
    return params


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        # AWS does not enforce the model's min on maps, nor does botocore's client
        ("RegisterJobDefinition", {"jobDefinitionName": "d", "type": "container", "tags": {}}),
        ("CreateJobQueue", {**QUEUE, "tags": {}}),
        ("SubmitJob", {"jobName": "j", "jobQueue": "q", "jobDefinition": "d", "tags": {}}),
        ("TagResource", {"resourceArn": "a", "tags": {}}),
        ("CreateComputeEnvironment", managed_ce(capacityTags={})),
        # "The values aren't case sensitive" (API reference, EvaluateOnExit.action)
        (
            "RegisterJobDefinition",
            {
                "jobDefinitionName": "d",
                "type": "container",
                "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"action": "retry"}]},
            },
        ),
        # maximum lengths AWS is not known to enforce (botocore checks none)
        ("UpdateConsumableResource", {"consumableResource": "c", "clientToken": "t" * 65}),
        ("UntagResource", {"resourceArn": "a", "tagKeys": [f"k{i}" for i in range(51)]}),
        (
            "CreateComputeEnvironment",
            managed_ce(ec2Configuration=[{"imageType": "ECS_AL2", "imageIdOverride": "i" * 300}]),
        ),
    ],
)
def test_what_aws_accepts_is_accepted(operation, params):
    accepted(operation, params)


def test_unknown_members_are_dropped_and_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger="batchyard.api")
    for _ in range(3):
        params = accepted(
            "CreateJobQueue",
            {
                **QUEUE,
                "newerSdkField": {"x": 1},
                "computeEnvironmentOrder": [
                    {"order": 1, "computeEnvironment": "a", "weight": 2},
                    {"order": 2, "computeEnvironment": "b", "weight": 3},
                ],
            },
        )
        assert params == {
            **QUEUE,
            "computeEnvironmentOrder": [
                {"order": 1, "computeEnvironment": "a"},
                {"order": 2, "computeEnvironment": "b"},
            ],
        }
    lines = [r.getMessage() for r in caplog.records if r.name == "batchyard.api"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("CreateJobQueue: ignored the member newerSdkField,")
    assert lines[1].startswith(
        "CreateJobQueue: ignored the member computeEnvironmentOrder[].weight"
    )
    # the same member of another operation is logged again
    caplog.clear()
    accepted("UpdateJobQueue", {"jobQueue": "q", "newerSdkField": 1})
    assert [r.getMessage().split(",")[0] for r in caplog.records] == [
        "UpdateJobQueue: ignored the member newerSdkField"
    ]


def test_unknown_members_do_not_hide_real_problems():
    message = problem("CreateJobQueue", {**QUEUE, "nope": 1, "priority": "1"})
    assert "nope" not in message and 'priority: expected an integer, got a string "1"' in message


def test_long_values_are_shortened_in_messages():
    message = problem("CreateJobQueue", {**QUEUE, "priority": "9" * 500})
    assert "..." in message and len(message) < 200


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_values_built_from_the_model_are_accepted(data):
    name, shape = data.draw(st.sampled_from(INPUTS), label="operation")
    validate(data.draw(wire_values(shape), label="request"), shape, name)


def _leaves(value: Any, shape: Any, path: str) -> list[tuple[str, Any, list[Any]]]:
    """(path, shape, route) for every scalar inside structures and lists."""
    found = []
    if shape.type_name == "structure":
        for name, member in value.items():
            sub = f"{path}.{name}" if path else name
            found += [(p, s, [name, *r]) for p, s, r in _leaves(member, shape.members[name], sub)]
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            found += [(p, s, [i, *r]) for p, s, r in _leaves(item, shape.member, f"{path}[{i}]")]
    elif shape.type_name not in ("map",):
        found.append((path, shape, []))
    return found


WRONG = {
    "string": 12,
    "integer": "12",
    "long": "12",
    "float": "1.5",
    "double": "1.5",
    "boolean": "true",
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_wrong_type_anywhere_is_refused_and_located(data):
    name, shape = data.draw(st.sampled_from(INPUTS), label="operation")
    request = data.draw(wire_values(shape), label="request")
    leaves = _leaves(request, shape, "")
    if not leaves:
        return
    path, leaf, route = data.draw(st.sampled_from(leaves), label="leaf")
    broken = copy.deepcopy(request)
    target = broken
    for step in route[:-1]:
        target = target[step]
    target[route[-1]] = WRONG[leaf.type_name]
    assert f"{path}: expected" in problem(name, broken)


def test_cloudwatch_logs_requests_keep_every_limit_of_their_model():
    # CloudWatch Logs validates its own model ("1 validation error detected"), AWS Batch not
    op = logs_model().operation_model("FilterLogEvents")
    params = {"logGroupName": "g", "logStreamNames": [f"s{i}" for i in range(101)]}
    with pytest.raises(InvalidRequest) as caught:
        validate(params, op.input_shape, "FilterLogEvents", every_limit=True)
    assert "logStreamNames: has 101 items; at most 100 allowed" in caught.value.message


def test_unknown_members_logged_are_bounded(caplog):
    caplog.set_level(logging.WARNING, logger="batchyard.api")

    def logged(params: dict[str, Any]) -> list[str]:
        caplog.clear()
        accepted("DescribeJobQueues", params)
        return [r.getMessage().split(",")[0] for r in caplog.records]

    # ten lines a request, then a count; the rest are named by the requests that follow
    lines = logged({f"many{i}": 1 for i in range(12)})
    assert lines[:10] == [f"DescribeJobQueues: ignored the member many{i}" for i in range(10)]
    assert lines[10:] == [
        "DescribeJobQueues: ignored 2 more unknown members in one request (not logged one by one)"
    ]
    assert logged({f"many{i}": 1 for i in range(12)}) == [
        "DescribeJobQueues: ignored the member many10",
        "DescribeJobQueues: ignored the member many11",
    ]
    # the server remembers the last 1,024 members it logged
    for i in range(0, 1024, 10):
        logged({f"bounded{k}": 1 for k in range(i, min(i + 10, 1024))})
    assert logged({"many0": 1, "bounded1023": 1}) == ["DescribeJobQueues: ignored the member many0"]
