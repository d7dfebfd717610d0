"""AWS's output shapes, through boto3: each resource made like one of AWS's documented examples
answers with every key the example shows, with the same kind of value (an empty collection
exactly), and with the collections and defaults AWS fills in for what was never set
(docs/api-compatibility.md, "Response defaults"). The test client also checks every raw answer
against the model (support/shapes.py), so all of it is in the output shapes."""

from __future__ import annotations

import json
import os
from typing import Any

import botocore
from botocore.model import Shape
from helpers import (
    EMPTY_CONTAINER,
    EMPTY_EKS_CONTAINER,
    describe_ce,
    make_ce,
    make_queue,
    register_jd,
    wait_for,
    wait_job,
)

from batchyard.api.model import batch_model

_EXAMPLES = os.path.join(
    os.path.dirname(botocore.__file__), "data/batch/2016-08-10/examples-1.json"
)
with open(_EXAMPLES) as f:
    EXAMPLES = json.load(f)["examples"]


def example(operation: str, title: str) -> dict[str, Any]:
    """The output of one of AWS's documented examples (botocore's examples-1.json)."""
    (found,) = [e["output"] for e in EXAMPLES[operation] if e["title"] == title]
    return found


# The AWS Batch User Guide's example job state change event (batch_job_events.html): its
# detail "resembles the JobDetail object that's returned from a DescribeJobs API operation".
USER_GUIDE_EVENT_DETAIL: dict[str, Any] = {
    "jobArn": "arn:aws:batch:us-east-1:123456789012:job/4c7599ae-0a82-49aa-ba5a-4727fcce14a8",
    "jobName": "event-test",
    "jobId": "4c7599ae-0a82-49aa-ba5a-4727fcce14a8",
    "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/PexjEHappyPathCanary2JobQueue",
    "status": "RUNNABLE",
    "attempts": [],
    "createdAt": 1641944200058,
    "retryStrategy": {"attempts": 2, "evaluateOnExit": []},
    "dependsOn": [],
    "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/first-run-job-definition:1",
    "parameters": {},
    "container": {
        "image": "137112412989.dkr.ecr.us-east-1.amazonaws.com/amazonlinux:latest",
        "command": ["sleep", "600"],
        "volumes": [],
        "environment": [],
        "mountPoints": [],
        "ulimits": [],
        "networkInterfaces": [],
        "resourceRequirements": [
            {"value": "2", "type": "VCPU"},
            {"value": "256", "type": "MEMORY"},
        ],
        "secrets": [],
    },
    "tags": {
        "resourceArn": "arn:aws:batch:us-east-1:123456789012:job/4c7599ae-0a82-49aa-ba5a-4727fcce14a8"
    },
    "propagateTags": False,
    "platformCapabilities": [],
}

# What batchyard has no counterpart of: it runs no ECS cluster and no container instances.
NOT_SERVED = {"ecsClusterArn", "containerInstanceArn"}


def assert_like(actual: Any, documented: Any, shape: str | Shape, path: str = "") -> None:
    """Every member ``documented`` shows is in ``actual`` with the same kind of value; an empty
    collection is exactly equal (that is what clients index); lists compare item by item. A
    map's keys are data (tags, parameters), so only its kind and emptiness are compared."""
    if isinstance(shape, str):
        shape = batch_model().shape_for(shape)
    if isinstance(documented, dict | list) and not documented:
        assert actual == documented, f"{path}: AWS shows {documented!r}, got {actual!r}"
    if shape.type_name == "structure":
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, value in documented.items():
            if key in NOT_SERVED:
                continue
            assert key in actual, f"{path}.{key}: AWS shows it, the answer has no such member"
            assert_like(actual[key], value, shape.members[key], f"{path}.{key}")
    elif shape.type_name == "map":
        assert isinstance(actual, dict), f"{path}: expected a map, got {actual!r}"
    elif shape.type_name == "list":
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        for i, (a, d) in enumerate(zip(actual, documented, strict=False)):
            assert_like(a, d, shape.member, f"{path}[{i}]")
    else:
        assert type(actual) is type(documented), (
            f"{path}: AWS shows {type(documented).__name__} {documented!r}, got {actual!r}"
        )


def test_compute_environment_like_the_example(batch, unique):
    (documented,) = example("DescribeComputeEnvironments", "To describe a compute environment")[
        "computeEnvironments"
    ]
    name = unique("P2OnDemand")
    batch.create_compute_environment(
        computeEnvironmentName=name,
        type=documented["type"],
        state=documented["state"],
        serviceRole=documented["serviceRole"],
        computeResources=documented["computeResources"],
    )
    ce = wait_for(
        lambda: (c := describe_ce(batch, name)) is not None and c["status"] == "VALID" and c,
        what=f"compute environment {name} to become VALID",
    )
    assert_like(ce, documented, "ComputeEnvironmentDetail")
    assert ce["tags"] == {}  # untagged: the map is there, empty


def test_job_queue_like_the_example(batch, unique):
    (documented,) = example("DescribeJobQueues", "To describe a job queue")["jobQueues"]
    ce, name = unique("C4OnDemand"), unique("HighPriority")
    make_ce(batch, ce)
    make_queue(batch, name, [ce], priority=documented["priority"])
    (queue,) = batch.describe_job_queues(jobQueues=[name])["jobQueues"]
    assert_like(queue, documented, "JobQueueDetail")
    assert queue["tags"] == {}


def describe_jd(batch: Any, name: str) -> dict[str, Any]:
    (jd,) = batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
    return jd


def test_job_definition_like_the_example(batch, unique):
    (documented,) = example("DescribeJobDefinitions", "To describe active job definitions")[
        "jobDefinitions"
    ]
    name = unique("sleep60")
    registered = {
        k: v for k, v in documented["containerProperties"].items() if v != []
    }  # what was registered: AWS shows the empty lists without being sent them
    register_jd(batch, name, containerProperties=registered)
    jd = describe_jd(batch, name)
    assert_like(jd, documented, "JobDefinition")
    assert jd["containerProperties"] == {**EMPTY_CONTAINER, **registered}
    assert (jd["parameters"], jd["tags"]) == ({}, {})
    assert "fargatePlatformConfiguration" not in jd["containerProperties"]  # not on EC2
    # a retry strategy without evaluateOnExit answers an empty one; lists set stay as set
    env = [{"name": "A", "value": "1"}]
    register_jd(
        batch,
        name,
        containerProperties={**registered, "environment": env},
        retryStrategy={"attempts": 2},
        parameters={"p": "v"},
        tags={"t": "v"},
    )
    (second,) = batch.describe_job_definitions(jobDefinitions=[f"{name}:2"])["jobDefinitions"]
    assert second["retryStrategy"] == {"attempts": 2, "evaluateOnExit": []}
    assert second["containerProperties"]["environment"] == env
    assert (second["parameters"], second["tags"]) == ({"p": "v"}, {"t": "v"})


FARGATE_CONTAINER = {
    "image": "busybox",
    "command": ["true"],
    "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"}],
}


def test_fargate_job_definition_gets_the_latest_platform_version(batch, unique):
    name, pinned, ec2 = unique("fargate"), unique("pinned"), unique("ec2")
    register_jd(
        batch, name, platformCapabilities=["FARGATE"], containerProperties=FARGATE_CONTAINER
    )
    register_jd(
        batch,
        pinned,
        platformCapabilities=["FARGATE"],
        containerProperties={
            **FARGATE_CONTAINER,
            "fargatePlatformConfiguration": {"platformVersion": "1.4.0"},
        },
    )
    register_jd(batch, ec2, platformCapabilities=["EC2"], containerProperties=FARGATE_CONTAINER)
    jd = describe_jd(batch, name)
    assert jd["platformCapabilities"] == ["FARGATE"]
    assert jd["containerProperties"] == {
        **EMPTY_CONTAINER,
        **FARGATE_CONTAINER,
        "fargatePlatformConfiguration": {"platformVersion": "LATEST"},
    }
    pinned_container = describe_jd(batch, pinned)["containerProperties"]
    assert pinned_container["fargatePlatformConfiguration"] == {"platformVersion": "1.4.0"}
    assert "fargatePlatformConfiguration" not in describe_jd(batch, ec2)["containerProperties"]


def test_eks_job_definition_lists(batch, unique):
    name = unique("eks")
    pod = {
        "hostNetwork": True,
        "containers": [
            {
                "image": "public.ecr.aws/amazonlinux/amazonlinux:2",
                "command": ["sleep", "60"],
                "resources": {"limits": {"cpu": "1", "memory": "1024Mi"}},
            },
            {"name": "side", "image": "busybox", "env": [{"name": "A", "value": "1"}]},
        ],
    }
    batch.register_job_definition(
        jobDefinitionName=name, type="container", eksProperties={"podProperties": pod}
    )
    jd = describe_jd(batch, name)
    assert jd["containerOrchestrationType"] == "EKS"
    assert jd["eksProperties"]["podProperties"] == {
        **pod,
        "containers": [{**EMPTY_EKS_CONTAINER, **c} for c in pod["containers"]],
        "volumes": [],
    }
    assert (jd["parameters"], jd["tags"]) == ({}, {})


def test_multinode_job_definition_and_job(batch, unique):
    name = unique("mnp")
    worker = {**FARGATE_CONTAINER, "command": ["sleep", "0"]}
    nodes = {
        "numNodes": 2,
        "mainNode": 0,
        "nodeRangeProperties": [{"targetNodes": "0:", "container": worker}],
    }
    batch.register_job_definition(jobDefinitionName=name, type="multinode", nodeProperties=nodes)
    jd = describe_jd(batch, name)
    (node_range,) = jd["nodeProperties"]["nodeRangeProperties"]
    assert node_range["container"] == {**EMPTY_CONTAINER, **worker}
    assert (jd["parameters"], jd["tags"]) == ({}, {})

    queue = unique("q")
    ce = unique("ce")
    make_ce(batch, ce, max_vcpus=4)
    make_queue(batch, queue, [ce])
    job_id = batch.submit_job(jobName="mnp", jobQueue=queue, jobDefinition=name)["jobId"]
    (job,) = batch.describe_jobs(jobs=[job_id])["jobs"]
    assert "container" not in job  # a multi-node job's containers are its nodes'
    (node_range,) = job["nodeProperties"]["nodeRangeProperties"]
    assert node_range["container"] == {**EMPTY_CONTAINER, **worker}
    assert (job["dependsOn"], job["parameters"], job["tags"]) == ([], {}, {})
    node = wait_job(batch, f"{job_id}#0")
    assert node["container"]["networkInterfaces"] == []
    assert {k: node["container"][k] for k in EMPTY_CONTAINER} == {
        k: worker.get(k, []) for k in EMPTY_CONTAINER
    }
    assert [a["container"]["networkInterfaces"] for a in node["attempts"]] == [[]]


def test_scheduling_policy_and_consumable_resource_tags(batch, unique):
    policy, tagged = unique("sp"), unique("sp")
    policy_arn = batch.create_scheduling_policy(name=policy)["arn"]
    tagged_arn = batch.create_scheduling_policy(name=tagged, tags={"t": "v"})["arn"]
    found = batch.describe_scheduling_policies(arns=[policy_arn, tagged_arn])["schedulingPolicies"]
    assert {p["name"]: p["tags"] for p in found} == {policy: {}, tagged: {"t": "v"}}

    resource = unique("cr")
    batch.create_consumable_resource(consumableResourceName=resource)
    assert batch.describe_consumable_resource(consumableResource=resource)["tags"] == {}


def test_job_like_the_example(batch, unique):
    (documented,) = example("DescribeJobs", "To describe a specific job")["jobs"]
    ce, queue = unique("ce"), unique("HighPriority")
    make_ce(batch, ce)
    make_queue(batch, queue, [ce])
    shown = documented["container"]
    name = unique("sleep60")  # registered as the AWS CLI's register-job-definition example
    container = {"image": "busybox", "vcpus": 1, "memory": 128, "command": ["sleep", "0"]}
    register_jd(batch, name, containerProperties=container)
    job_id = batch.submit_job(jobName="example", jobQueue=queue, jobDefinition=name)["jobId"]
    job = wait_job(batch, job_id)
    job.pop("_seen")
    assert job["status"] == documented["status"] == "SUCCEEDED"
    assert_like(job, documented, "JobDetail")
    assert {k: job["container"][k] for k in shown if k not in NOT_SERVED} == {
        **{k: v for k, v in shown.items() if k not in NOT_SERVED},
        "command": ["sleep", "0"],
    }
    assert {k: job[k] for k in ("dependsOn", "parameters", "tags")} == {
        "dependsOn": [],
        "parameters": {},
        "tags": {},
    }
    assert (job["platformCapabilities"], job["eksAttempts"]) == ([], [])
    assert (job["container"]["networkInterfaces"], job["container"]["secrets"]) == ([], [])
    assert [a["container"]["networkInterfaces"] for a in job["attempts"]] == [[]]
    assert "fargatePlatformConfiguration" not in job["container"]
    summaries = batch.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]
    (listed,) = example("ListJobs", "To list running jobs")["jobSummaryList"]
    assert [s["jobId"] for s in summaries] == [job_id]
    assert_like(summaries[0], listed, "JobSummary")


def test_runnable_job_and_its_event_like_the_user_guide(batch, server, unique):
    documented = USER_GUIDE_EVENT_DETAIL
    ce, queue = unique("ce"), unique("q")
    make_ce(batch, ce, state="DISABLED")  # nothing runs: the job stays RUNNABLE
    make_queue(batch, queue, [ce])
    name = unique("first-run-job-definition")
    container = {
        "image": "amazonlinux:latest",
        "command": ["sleep", "600"],
        "resourceRequirements": documented["container"]["resourceRequirements"],
    }
    register_jd(batch, name, containerProperties=container, retryStrategy={"attempts": 2})
    job_id = batch.submit_job(
        jobName="event-test",
        jobQueue=queue,
        jobDefinition=name,
        tags={"team": "a"},
        propagateTags=False,
    )["jobId"]
    job = wait_job(batch, job_id, until={"RUNNABLE"})
    job.pop("_seen")
    assert_like(job, documented, "JobDetail")
    assert job["retryStrategy"] == documented["retryStrategy"]
    assert job["container"] == {**EMPTY_CONTAINER, **container, "networkInterfaces": []}

    with server.http() as http:
        r = http.get("/batchyard/v1/events", params={"jobId": job_id, "status": "RUNNABLE"})
        assert r.status_code == 200, r.text
    (event,) = r.json()["events"]
    assert_like(event["detail"], documented, "JobDetail")
    summaries = batch.list_jobs(jobQueue=queue, jobStatus="RUNNABLE")["jobSummaryList"]
    (listed,) = example("ListJobs", "To list submitted jobs")["jobSummaryList"]
    assert [s["jobId"] for s in summaries] == [job_id]
    assert_like(summaries[0], listed, "JobSummary")


def test_fargate_job_gets_the_latest_platform_version(batch, unique):
    ce, queue, name = unique("ce"), unique("q"), unique("fargate")
    make_ce(batch, ce)
    make_queue(batch, queue, [ce])
    register_jd(
        batch, name, platformCapabilities=["FARGATE"], containerProperties=FARGATE_CONTAINER
    )
    job_id = batch.submit_job(jobName="f", jobQueue=queue, jobDefinition=name)["jobId"]
    (job,) = batch.describe_jobs(jobs=[job_id])["jobs"]
    assert job["platformCapabilities"] == ["FARGATE"]
    assert job["container"]["fargatePlatformConfiguration"] == {"platformVersion": "LATEST"}
