"""Job queues through boto3, on both stores: CRUD, AWS's rules, pagination."""

from __future__ import annotations

import pytest
from helpers import (
    arn,
    client_error,
    delete_ce,
    delete_queue,
    describe_queue,
    make_ce,
    make_queue,
    paginate,
    settled_queue,
    tamper,
    wait_for,
)

LIMIT = {
    "reason": "stuck in RUNNABLE for too long",
    "state": "RUNNABLE",
    "maxTimeSeconds": 600,
    "action": "CANCEL",
}


@pytest.fixture
def ces(batch, unique):
    """Two VALID EC2 compute environments: (name, ARN) pairs."""
    names = [unique("ce"), unique("ce")]
    return [(n, make_ce(batch, n)) for n in names]


def test_create_describe_update_delete(batch, unique, ces):
    (ce1, ce1_arn), (ce2, ce2_arn) = ces
    name, policy, policy2 = unique("q"), unique("sp"), unique("sp")
    policy_arn = batch.create_scheduling_policy(name=policy)["arn"]
    policy2_arn = batch.create_scheduling_policy(name=policy2)["arn"]

    created = batch.create_job_queue(
        jobQueueName=name,
        priority=5,
        state="ENABLED",
        schedulingPolicyArn=policy_arn,
        # a compute environment may be named by name or by ARN
        computeEnvironmentOrder=[
            {"order": 2, "computeEnvironment": ce2_arn},
            {"order": 1, "computeEnvironment": ce1},
        ],
        tags={"team": "genomics"},
        jobStateTimeLimitActions=[LIMIT],
    )
    queue_arn = arn("job-queue", name)
    assert created == {
        "jobQueueName": name,
        "jobQueueArn": queue_arn,
        "ResponseMetadata": created["ResponseMetadata"],
    }
    assert describe_queue(batch, name)["status"] in ("CREATING", "VALID")
    queue = settled_queue(batch, name)
    assert queue == {
        "jobQueueName": name,
        "jobQueueArn": queue_arn,
        "state": "ENABLED",
        "schedulingPolicyArn": policy_arn,
        "status": "VALID",
        "statusReason": "JobQueue Healthy",
        "priority": 5,
        "computeEnvironmentOrder": [
            {"order": 1, "computeEnvironment": ce1_arn},
            {"order": 2, "computeEnvironment": ce2_arn},
        ],
        "tags": {"team": "genomics"},
        "jobStateTimeLimitActions": [LIMIT],
    }
    assert batch.describe_job_queues(jobQueues=[queue_arn])["jobQueues"] == [queue]

    updated = batch.update_job_queue(
        jobQueue=queue_arn,
        priority=9,
        state="DISABLED",
        schedulingPolicyArn=policy2,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce2}],
        jobStateTimeLimitActions=[{**LIMIT, "maxTimeSeconds": 3600}],
    )
    assert (updated["jobQueueName"], updated["jobQueueArn"]) == (name, queue_arn)
    queue = settled_queue(batch, name)
    assert queue["priority"] == 9 and queue["state"] == "DISABLED"
    assert queue["schedulingPolicyArn"] == policy2_arn
    assert queue["computeEnvironmentOrder"] == [{"order": 1, "computeEnvironment": ce2_arn}]
    assert queue["jobStateTimeLimitActions"] == [{**LIMIT, "maxTimeSeconds": 3600}]
    assert queue["tags"] == {"team": "genomics"}

    # ce1 left the queue, so it can go; ce2 cannot while the queue holds it
    delete_ce(batch, ce1)
    batch.update_compute_environment(computeEnvironment=ce2, state="DISABLED")
    assert name in client_error(batch.delete_compute_environment, computeEnvironment=ce2)["Message"]

    batch.delete_job_queue(jobQueue=queue_arn)
    wait_for(lambda: describe_queue(batch, name) is None, what="the queue to be deleted")
    assert queue_arn not in [
        q["jobQueueArn"] for q in paginate(batch.describe_job_queues, "jobQueues", 100)
    ]
    # the policy is free once its queue is gone, and so is the compute environment
    batch.delete_scheduling_policy(arn=policy2_arn)
    batch.delete_compute_environment(computeEnvironment=ce2)


def test_deleted_name_can_be_reused(batch, unique, ces):
    (ce, _), _ = ces
    name = unique("q")
    make_queue(batch, name, [ce], priority=1)
    delete_queue(batch, name)
    make_queue(batch, name, [ce], priority=2)
    assert describe_queue(batch, name)["priority"] == 2


def test_duplicate_name_is_refused_and_changes_nothing(batch, unique, ces):
    (ce, _), (other, _) = ces
    name = unique("q")
    make_queue(batch, name, [ce], priority=3)
    before = describe_queue(batch, name)
    err = client_error(
        batch.create_job_queue,
        jobQueueName=name,
        priority=7,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": other}],
    )
    assert err["Code"] == "ClientException" and err["Status"] == 400
    assert f"A job queue named '{name}' already exists" in err["Message"]
    assert describe_queue(batch, name) == before


def test_create_rules(batch, unique, ces):
    (ce, _), (ce2, _) = ces
    ce3, ce4, fargate, policy = unique("ce"), unique("ce"), unique("ce"), unique("sp")
    make_ce(batch, ce3)
    make_ce(batch, ce4)
    batch.create_compute_environment(
        computeEnvironmentName=fargate,
        type="MANAGED",
        computeResources={"type": "FARGATE", "maxvCpus": 4, "subnets": ["subnet-1"]},
    )
    policy_arn = batch.create_scheduling_policy(name=policy)["arn"]

    def order(*names: str) -> list[dict]:
        return [{"order": i + 1, "computeEnvironment": n} for i, n in enumerate(names)]

    cases = [
        ({"priority": -1}, "priority is -1; it must be between 0 and 1000"),
        ({"priority": 1001}, "priority is 1001; it must be between 0 and 1000"),
        (
            {"computeEnvironmentOrder": order(ce, ce2, ce3, ce4)},
            "lists 4 compute environments; a job queue can use at most 3",
        ),
        (
            {
                "computeEnvironmentOrder": [
                    {"order": 1, "computeEnvironment": ce},
                    {"order": 1, "computeEnvironment": ce2},
                ]
            },
            "uses order 1 twice",
        ),
        ({"computeEnvironmentOrder": order(ce, ce)}, f"lists '{ce}' twice"),
        ({"computeEnvironmentOrder": order("no-such-ce")}, "'no-such-ce' does not exist"),
        ({"computeEnvironmentOrder": order(ce, fargate)}, "mixes EC2 and Fargate"),
        ({"computeEnvironmentOrder": []}, "computeEnvironmentOrder is required"),
        (
            {"computeEnvironmentOrder": order(arn("job-queue", ce))},
            "is a job-queue ARN, expected a compute-environment ARN",
        ),
        (
            {
                "computeEnvironmentOrder": order(
                    f"arn:aws:batch:eu-west-1:000000000000:compute-environment/{ce}"
                )
            },
            "belongs to region eu-west-1",
        ),
        ({"schedulingPolicyArn": policy_arn + "-nope"}, "does not exist"),
        ({"jobQueueName": "my queue"}, "jobQueueName 'my queue' is not valid"),
        ({"jobQueueName": "q" * 129}, "use 1 to 128 letters"),
        ({"tags": {"aws:team": "x"}}, "reserved prefix 'aws:'"),
        (
            {"jobStateTimeLimitActions": [{**LIMIT, "action": "TERMINATE"}]},
            "jobStateTimeLimitActions[0].action TERMINATE applies only to SageMaker",
        ),
        (
            {"jobStateTimeLimitActions": [{**LIMIT, "maxTimeSeconds": 86_401}]},
            "jobStateTimeLimitActions[0].maxTimeSeconds is 86401",
        ),
        (
            {"jobStateTimeLimitActions": [{**LIMIT, "reason": " "}]},
            "jobStateTimeLimitActions[0].reason must not be empty",
        ),
        (
            {"serviceEnvironmentOrder": [{"order": 1, "serviceEnvironment": "sagemaker"}]},
            "serviceEnvironmentOrder (SageMaker service environments) is not supported",
        ),
    ]
    for change, message in cases:
        name = unique("q")
        request = {"jobQueueName": name, "priority": 1, "computeEnvironmentOrder": order(ce)}
        request.update(change)
        err = client_error(batch.create_job_queue, **request)
        assert err["Code"] == "ClientException" and err["Status"] == 400, change
        assert message in err["Message"], (change, err["Message"])
        assert describe_queue(batch, request["jobQueueName"]) is None
    # nothing was written: the compute environments are still free to go
    delete_ce(batch, ce4)


def test_update_rules_change_nothing(batch, unique, ces):
    (ce, _), (ce2, _) = ces
    fifo, fair, policy = unique("q"), unique("q"), unique("sp")
    policy_arn = batch.create_scheduling_policy(name=policy)["arn"]
    make_queue(batch, fifo, [ce], priority=4, jobStateTimeLimitActions=[LIMIT])
    make_queue(batch, fair, [ce], priority=4, schedulingPolicyArn=policy_arn)
    before = describe_queue(batch, fifo)
    cases = [
        ({"priority": 1001}, "priority is 1001"),
        (
            {"computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "nope"}]},
            "'nope' does not exist",
        ),
        ({"computeEnvironmentOrder": []}, "must list at least one compute environment"),
        (
            {"schedulingPolicyArn": policy_arn},
            "was created without a scheduling policy (FIFO)",
        ),
        (
            {"jobStateTimeLimitActions": [{**LIMIT, "maxTimeSeconds": 0}]},
            "maxTimeSeconds is 0",
        ),
        (
            {
                "state": "DISABLED",
                "priority": 2,
                "computeEnvironmentOrder": [
                    {"order": 1, "computeEnvironment": ce2},
                    {"order": 1, "computeEnvironment": ce},
                ],
            },
            "uses order 1 twice",
        ),
    ]
    for change, message in cases:
        err = client_error(batch.update_job_queue, jobQueue=fifo, **change)
        assert err["Code"] == "ClientException" and err["Status"] == 400, change
        assert message in err["Message"], (change, err["Message"])
        assert describe_queue(batch, fifo) == before, change

    err = client_error(batch.update_job_queue, jobQueue=fair, schedulingPolicyArn="nope")
    assert "scheduling policy 'nope' does not exist" in err["Message"]
    assert describe_queue(batch, fair)["schedulingPolicyArn"] == policy_arn
    err = client_error(batch.update_job_queue, jobQueue=unique("missing"), priority=1)
    assert "does not exist" in err["Message"]


def test_delete_rules(batch, unique, ces):
    (ce, _), _ = ces
    name = unique("q")
    make_queue(batch, name, [ce])
    err = client_error(batch.delete_job_queue, jobQueue=name)
    assert err["Code"] == "ClientException"
    assert "is ENABLED; set its state to DISABLED" in err["Message"]
    assert describe_queue(batch, name)["state"] == "ENABLED"
    assert describe_queue(batch, name)["status"] == "VALID"
    assert (
        "does not exist" in client_error(batch.delete_job_queue, jobQueue=unique("no"))["Message"]
    )
    # a scheduling policy in use by a queue cannot be deleted
    policy = unique("sp")
    policy_arn = batch.create_scheduling_policy(name=policy)["arn"]
    fair = unique("q")
    make_queue(batch, fair, [ce], schedulingPolicyArn=policy_arn)
    err = client_error(batch.delete_scheduling_policy, arn=policy_arn)
    assert fair in err["Message"]
    assert batch.describe_scheduling_policies(arns=[policy_arn])["schedulingPolicies"]


def test_pagination(batch, unique, ces):
    (ce, _), _ = ces
    names = [unique("page-q") for _ in range(5)]
    for n in names:
        batch.create_job_queue(
            jobQueueName=n,
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
        )
    seen = [q["jobQueueName"] for q in paginate(batch.describe_job_queues, "jobQueues", 2)]
    assert set(names) <= set(seen)
    assert len(seen) == len(set(seen))
    assert [n for n in seen if n in names] == names  # in creation order

    token = batch.describe_job_queues(maxResults=1)["nextToken"]
    err = client_error(batch.describe_compute_environments, maxResults=1, nextToken=token)
    assert "nextToken was not issued for this DescribeComputeEnvironments request" in err["Message"]
    err = client_error(batch.describe_job_queues, maxResults=1, nextToken=tamper(token))
    assert "nextToken is not a token this server issued" in err["Message"]
    err = client_error(batch.describe_job_queues, maxResults=101)
    assert "maxResults is 101; it must be between 1 and 100" in err["Message"]
    # names and ARNs together, unknown ones left out as AWS does
    found = batch.describe_job_queues(jobQueues=[names[0], arn("job-queue", names[1]), "nope"])
    assert [q["jobQueueName"] for q in found["jobQueues"]] == names[:2]
