"""camelCase wire values <-> snake_case domain values, driven by the model's shapes."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchyard.api.casing import snake, to_domain, to_wire
from batchyard.api.defaults import without_defaults
from batchyard.api.model import batch_model
from batchyard.errors import ServerError
from support.strategies import operation_shapes, wire_values

SHAPES = operation_shapes()


def shape(name: str):
    return batch_model().shape_for(name)


@pytest.mark.parametrize(
    ("wire", "domain"),
    [
        ("computeEnvironmentOrder", "compute_environment_order"),
        ("maxvCpus", "max_vcpus"),
        ("minvCpus", "min_vcpus"),
        ("desiredvCpus", "desired_vcpus"),
        ("unmanagedvCpus", "unmanaged_vcpus"),
        ("containerID", "container_id"),
        ("ec2KeyPair", "ec2_key_pair"),
        ("type", "type"),
    ],
)
def test_snake(wire, domain):
    assert snake(wire) == domain


def test_every_member_name_of_the_model_has_a_distinct_snake_case_name():
    model = batch_model()
    for name in model.shape_names:
        s = model.shape_for(name)
        if s.type_name == "structure":
            names = [snake(m) for m in s.members]
            assert len(names) == len(set(names)), s.name
            assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names), names


def test_map_keys_are_user_data_and_pass_unchanged():
    wire = {
        "jobQueueName": "q",
        "priority": 1,
        "tags": {"costCenter": "x", "batchyard:provider": "local"},
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ce"}],
    }
    request = shape("CreateJobQueueRequest")
    domain = to_domain(wire, request)
    assert domain == {
        "job_queue_name": "q",
        "priority": 1,
        "tags": {"costCenter": "x", "batchyard:provider": "local"},
        "compute_environment_order": [{"order": 1, "compute_environment": "ce"}],
    }
    assert to_wire(domain, request) == wire


def test_none_members_are_left_out_of_answers_unless_aws_answers_them():
    detail = shape("JobQueueDetail")
    assert to_wire({"job_queue_name": "q", "tags": None, "priority": None}, detail) == {
        "jobQueueName": "q",
        "tags": {},  # AWS answers an untagged queue's tags as {} (api/defaults.py)
    }
    assert to_wire({"job_queue_name": "q", "tags": {"a": "b"}}, detail)["tags"] == {"a": "b"}


def test_a_fargate_container_gets_the_latest_platform_version():
    jd = shape("JobDefinition")
    fargate = {"platform_capabilities": ["FARGATE"], "container_properties": {"image": "i"}}
    container = to_wire(fargate, jd)["containerProperties"]
    assert container["fargatePlatformConfiguration"] == {"platformVersion": "LATEST"}
    assert container["environment"] == [] and container["image"] == "i"
    pinned = {**fargate, "container_properties": {"fargate_platform_configuration": {}}}
    assert to_wire(pinned, jd)["containerProperties"]["fargatePlatformConfiguration"] == {}
    ec2 = to_wire({"container_properties": {"image": "i"}}, jd)["containerProperties"]
    assert "fargatePlatformConfiguration" not in ec2
    # each answer has its own copies: changing one changes no other
    container["environment"].append({"name": "A"})
    container["fargatePlatformConfiguration"]["platformVersion"] = "1.4.0"
    again = to_wire(fargate, jd)["containerProperties"]
    assert again["environment"] == []
    assert again["fargatePlatformConfiguration"] == {"platformVersion": "LATEST"}


def test_without_defaults_undoes_what_aws_fills_in():
    jd = shape("JobDefinition")
    fargate = {"platformCapabilities": ["FARGATE"], "containerProperties": {"image": "i"}}
    assert without_defaults(to_wire(to_domain(fargate, jd), jd), jd) == fargate
    set_ = {**fargate, "containerProperties": {"image": "i", "environment": [{"name": "A"}]}}
    assert without_defaults(set_, jd) == set_


def test_a_member_the_shape_does_not_have_is_our_bug():
    with pytest.raises(ServerError, match=r"response field compute_resources\.surprise "):
        to_wire(
            {"compute_environment_name": "ce", "compute_resources": {"surprise": 1}},
            shape("ComputeEnvironmentDetail"),
        )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_round_trip_over_every_shape_of_the_model(data):
    """to_wire(to_domain(v)) is v, plus what AWS answers for members v leaves out; an answer
    so filled in round-trips exactly."""
    _, s = data.draw(st.sampled_from(SHAPES), label="shape")
    wire = data.draw(wire_values(s), label="value")
    answer = to_wire(to_domain(wire, s), s)
    assert without_defaults(answer, s) == without_defaults(wire, s)
    assert to_wire(to_domain(answer, s), s) == answer


def test_null_members_of_a_request_count_as_not_sent():
    request = shape("CreateSchedulingPolicyRequest")
    wire = {"name": "p", "tags": None, "fairsharePolicy": {"shareDistribution": None}}
    assert to_domain(wire, request) == {"name": "p", "fairshare_policy": {}}
