"""Requests built from the model's input shapes, valid in form but random in content, never
get a 500: whatever the resource operations are sent, they answer in the model's output shape
or refuse with a ClientException."""

from __future__ import annotations

from urllib.parse import quote

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchyard.api.model import batch_model
from support.shapes import problems
from support.strategies import wire_values

OPERATIONS = [
    "CreateComputeEnvironment",
    "UpdateComputeEnvironment",
    "DeleteComputeEnvironment",
    "DescribeComputeEnvironments",
    "CreateJobQueue",
    "UpdateJobQueue",
    "DeleteJobQueue",
    "DescribeJobQueues",
    "RegisterJobDefinition",
    "DeregisterJobDefinition",
    "DescribeJobDefinitions",
    "CreateSchedulingPolicy",
    "UpdateSchedulingPolicy",
    "DeleteSchedulingPolicy",
    "DescribeSchedulingPolicies",
    "ListSchedulingPolicies",
    "CreateConsumableResource",
    "UpdateConsumableResource",
    "DeleteConsumableResource",
    "DescribeConsumableResource",
    "ListConsumableResources",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
]
# Members naming a resource get names from a small pool half of the time, so that requests
# meet each other's resources instead of all failing on a random name.
NAMES = st.sampled_from(["a", "b", "c"])
NAME_MEMBERS = {
    "computeEnvironmentName",
    "computeEnvironment",
    "jobQueueName",
    "jobQueue",
    "jobDefinitionName",
    "jobDefinition",
    "name",
    "arn",
    "consumableResourceName",
    "consumableResource",
}
KINDS = ["compute-environment", "job-queue", "job-definition", "scheduling-policy"]


def test_no_request_gets_a_500(new_server):
    server = new_server()
    model = batch_model()
    counts: dict[int, int] = {}

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def one_request(data):
        op = model.operation_model(data.draw(st.sampled_from(OPERATIONS), label="operation"))
        body = data.draw(wire_values(op.input_shape), label="body")
        for member in NAME_MEMBERS & set(body):
            if data.draw(st.booleans()):
                body[member] = data.draw(NAMES)
        path, query = op.http["requestUri"], ""
        if "{resourceArn}" in path:
            body.pop("resourceArn")
            kind = data.draw(st.sampled_from([*KINDS, "consumable-resource"]))
            target = f"arn:aws:batch:us-east-1:000000000000:{kind}/{data.draw(NAMES)}"
            if kind == "job-definition":
                target += ":1"
            path = path.replace("{resourceArn}", quote(target, safe=""))
            if "tagKeys" in body:
                query = "?" + "&".join(f"tagKeys={quote(k, safe='')}" for k in body.pop("tagKeys"))
        answer = http.request(op.http["method"], path + query, content=orjson.dumps(body))
        assert answer.status_code < 500, (op.name, body, answer.text)
        if answer.status_code >= 400:
            assert answer.headers["x-amzn-ErrorType"] == "ClientException"
        elif op.output_shape is not None:  # what was accepted is answered in the model's shape
            assert problems(answer.json(), op.output_shape) == [], (op.name, answer.text)
        counts[answer.status_code] = counts.get(answer.status_code, 0) + 1

    with server.http() as http:
        one_request()
    assert counts.get(200, 0) > 10, counts  # the requests did reach the services
    assert "Traceback" not in server.log()
