"""The AWS CLI (``aws batch ... --endpoint-url``) against a real server, on both stores: it is
the client most people script with, and it has its own argument parsing and pagination."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from helpers import (
    CONTAINER,
    EMPTY_CONTAINER,
    arn,
    describe_ce,
    describe_queue,
    make_ce,
    wait_for,
)

from support.server import CLIENT_ENV

AWS = shutil.which("aws")
pytestmark = pytest.mark.skipif(
    AWS is None, reason="the AWS CLI is not installed: pip install -e '.[test]'"
)
# No profile, config file or pager of the machine running the tests gets in the way.
ENV = {
    **os.environ,
    **CLIENT_ENV,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_PAGER": "",
}


def run(server, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(AWS), "batch", *args, "--endpoint-url", server.endpoint, "--output", "json"]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=60)


def aws(server, *args: str) -> dict[str, Any]:
    """Run ``aws batch <args>``; returns its parsed JSON output ({} for none)."""
    done = run(server, *args)
    assert done.returncode == 0, f"aws batch {' '.join(args)} failed:\n{done.stderr}"
    return json.loads(done.stdout) if done.stdout.strip() else {}


def as_json(value: Any) -> str:
    return json.dumps(value)


def compute_environment(server, batch, unique):
    name = unique("cli-ce")
    created = aws(
        server,
        "create-compute-environment",
        "--compute-environment-name", name,
        "--type", "MANAGED",
        "--compute-resources", as_json({"type": "EC2", "maxvCpus": 2, "minvCpus": 0}),
        "--tags", "team=cli",
    )  # fmt: skip
    assert created == {
        "computeEnvironmentName": name,
        "computeEnvironmentArn": arn("compute-environment", name),
    }
    wait_for(lambda: describe_ce(batch, name)["status"] == "VALID", what="VALID")
    (ce,) = aws(server, "describe-compute-environments", "--compute-environments", name)[
        "computeEnvironments"
    ]
    assert ce["computeResources"]["maxvCpus"] == 2 and ce["tags"] == {"team": "cli"}
    batch.update_compute_environment(computeEnvironment=name, state="DISABLED")
    assert aws(server, "delete-compute-environment", "--compute-environment", name) == {}
    wait_for(lambda: describe_ce(batch, name) is None, what="the compute environment to go")


def job_queue(server, batch, unique):
    ce, name = unique("cli-ce"), unique("cli-q")
    make_ce(batch, ce)
    order = [{"order": 1, "computeEnvironment": ce}]
    created = aws(
        server,
        "create-job-queue",
        "--job-queue-name", name,
        "--priority", "3",
        "--compute-environment-order", as_json(order),
    )  # fmt: skip
    assert created == {"jobQueueName": name, "jobQueueArn": arn("job-queue", name)}
    (queue,) = aws(server, "describe-job-queues", "--job-queues", name)["jobQueues"]
    assert queue["priority"] == 3
    assert queue["computeEnvironmentOrder"] == [
        {"order": 1, "computeEnvironment": arn("compute-environment", ce)}
    ]
    batch.update_job_queue(jobQueue=name, state="DISABLED")
    assert aws(server, "delete-job-queue", "--job-queue", name) == {}
    wait_for(lambda: describe_queue(batch, name) is None, what="the queue to go")


def job_definition(server, batch, unique):
    name = unique("cli-jd")
    created = aws(
        server,
        "register-job-definition",
        "--job-definition-name", name,
        "--type", "container",
        "--container-properties", as_json(CONTAINER),
        "--parameters", "message=hi",
    )  # fmt: skip
    assert created == {
        "jobDefinitionName": name,
        "jobDefinitionArn": arn("job-definition", f"{name}:1"),
        "revision": 1,
    }
    (jd,) = aws(server, "describe-job-definitions", "--job-definition-name", name)["jobDefinitions"]
    assert jd["containerProperties"] == {**EMPTY_CONTAINER, **CONTAINER}
    assert jd["parameters"] == {"message": "hi"}
    assert aws(server, "deregister-job-definition", "--job-definition", f"{name}:1") == {}
    found = batch.describe_job_definitions(jobDefinitions=[f"{name}:1"])["jobDefinitions"]
    assert [j["status"] for j in found] == ["INACTIVE"]


def scheduling_policy(server, batch, unique):
    name = unique("cli-sp")
    policy = {"shareDecaySeconds": 600, "shareDistribution": [{"shareIdentifier": "a"}]}
    created = aws(
        server, "create-scheduling-policy", "--name", name, "--fairshare-policy", as_json(policy)
    )
    policy_arn = arn("scheduling-policy", name)
    assert created == {"name": name, "arn": policy_arn}
    (found,) = aws(server, "describe-scheduling-policies", "--arns", policy_arn)[
        "schedulingPolicies"
    ]
    assert found == {"name": name, "arn": policy_arn, "fairsharePolicy": policy, "tags": {}}
    assert aws(server, "delete-scheduling-policy", "--arn", policy_arn) == {}
    assert batch.describe_scheduling_policies(arns=[policy_arn])["schedulingPolicies"] == []


def consumable_resource(server, batch, unique):
    name = unique("cli-cr")
    created = aws(
        server, "create-consumable-resource",
        "--consumable-resource-name", name, "--total-quantity", "4",
    )  # fmt: skip
    assert created == {
        "consumableResourceName": name,
        "consumableResourceArn": arn("consumable-resource", name),
    }
    found = aws(server, "describe-consumable-resource", "--consumable-resource", name)
    assert (found["totalQuantity"], found["availableQuantity"]) == (4, 4)
    assert aws(server, "delete-consumable-resource", "--consumable-resource", name) == {}
    done = run(server, "describe-consumable-resource", "--consumable-resource", name)
    assert done.returncode != 0
    assert "(ClientException)" in done.stderr
    assert f"consumable resource '{name}' does not exist" in done.stderr


def tags_and_listing_every_page(server, batch, unique):
    names = [unique("cli-tag") for _ in range(3)]
    for n in names:
        batch.create_scheduling_policy(name=n)
    target = arn("scheduling-policy", names[0])
    assert aws(server, "tag-resource", "--resource-arn", target, "--tags", "a=1,b=2") == {}
    assert aws(server, "list-tags-for-resource", "--resource-arn", target) == {
        "tags": {"a": "1", "b": "2"}
    }
    assert aws(server, "untag-resource", "--resource-arn", target, "--tag-keys", "a") == {}
    assert batch.list_tags_for_resource(resourceArn=target)["tags"] == {"b": "2"}
    # the CLI follows nextToken itself: --page-size 1 makes it fetch page after page
    listed = aws(server, "list-scheduling-policies", "--page-size", "1")["schedulingPolicies"]
    assert {arn("scheduling-policy", n) for n in names} <= {p["arn"] for p in listed}
    assert len(listed) == len({p["arn"] for p in listed})


def empty_tags(server, batch, unique):
    # what a workflow engine sends for every definition; AWS accepts it
    name = unique("cli-jd")
    aws(
        server,
        "register-job-definition",
        "--job-definition-name", name,
        "--type", "container",
        "--container-properties", as_json(CONTAINER),
        "--tags", "{}",
    )  # fmt: skip
    target = arn("job-definition", f"{name}:1")
    assert aws(server, "tag-resource", "--resource-arn", target, "--tags", "{}") == {}
    assert aws(server, "list-tags-for-resource", "--resource-arn", target) == {"tags": {}}


def stopping_an_unknown_job(server, batch, unique):
    # AWS answers success: "the API operation still succeeds, even if no job is cancelled"
    job = unique("no-such-job")
    assert aws(server, "cancel-job", "--job-id", job, "--reason", "r") == {}
    assert aws(server, "terminate-job", "--job-id", job, "--reason", "r") == {}


FLOWS = [
    compute_environment,
    job_queue,
    job_definition,
    scheduling_policy,
    consumable_resource,
    tags_and_listing_every_page,
    empty_tags,
    stopping_an_unknown_job,
]


def test_every_resource_through_the_cli(server, batch, unique):
    """The flows are independent and each ``aws`` process spends ~0.3 s starting up, so they
    run side by side; a failure names its flow."""
    with ThreadPoolExecutor(len(FLOWS)) as pool:
        futures = [(flow.__name__, pool.submit(flow, server, batch, unique)) for flow in FLOWS]
    for name, future in futures:
        error = future.exception()
        if error is not None:
            raise AssertionError(f"the {name} flow failed: {error}") from error
