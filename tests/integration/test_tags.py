"""Tags on every taggable kind (jobs come with the jobs API), through boto3 on both stores."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from helpers import (
    arn,
    client_error,
    describe_ce,
    describe_queue,
    make_ce,
    make_queue,
    register_jd,
    wait_for,
)


def tags_of(batch, resource_arn: str) -> dict[str, str]:
    return batch.list_tags_for_resource(resourceArn=resource_arn)["tags"]


def one_of_each(batch, unique, tags: dict[str, str]) -> dict[str, str]:
    """Create one resource of each taggable kind with ``tags``; returns kind -> ARN."""
    ce, queue, jd, policy, consumable = (unique(k) for k in ("ce", "q", "jd", "sp", "cr"))
    return {
        "compute-environment": make_ce(batch, ce, tags=tags),
        "job-queue": make_queue(batch, queue, [ce], tags=tags),
        "job-definition": register_jd(batch, jd, tags=tags)["jobDefinitionArn"],
        "scheduling-policy": batch.create_scheduling_policy(name=policy, tags=tags)["arn"],
        "consumable-resource": batch.create_consumable_resource(
            consumableResourceName=consumable, tags=tags
        )["consumableResourceArn"],
    }


def described_tags(batch, kind: str, resource_arn: str) -> dict[str, str]:
    """The tags the resource's own describe call shows (always there, as on AWS)."""
    name = resource_arn.split("/", 1)[1]
    if kind == "compute-environment":
        return describe_ce(batch, name)["tags"]
    if kind == "job-queue":
        return describe_queue(batch, name)["tags"]
    if kind == "job-definition":
        (jd,) = batch.describe_job_definitions(jobDefinitions=[resource_arn])["jobDefinitions"]
        return jd["tags"]
    if kind == "scheduling-policy":
        (policy,) = batch.describe_scheduling_policies(arns=[resource_arn])["schedulingPolicies"]
        return policy["tags"]
    return batch.describe_consumable_resource(consumableResource=resource_arn)["tags"]


def test_tags_on_create_then_tag_and_untag(batch, unique):
    for kind, resource_arn in one_of_each(batch, unique, {"team": "a", "stage": "dev"}).items():
        assert tags_of(batch, resource_arn) == {"team": "a", "stage": "dev"}, kind
        assert described_tags(batch, kind, resource_arn) == {"team": "a", "stage": "dev"}, kind

        batch.tag_resource(resourceArn=resource_arn, tags={"stage": "prod", "owner": "b"})
        assert tags_of(batch, resource_arn) == {"team": "a", "stage": "prod", "owner": "b"}, kind
        batch.untag_resource(resourceArn=resource_arn, tagKeys=["team", "no-such-key"])
        assert tags_of(batch, resource_arn) == {"stage": "prod", "owner": "b"}, kind
        assert described_tags(batch, kind, resource_arn) == {"stage": "prod", "owner": "b"}, kind
        batch.untag_resource(resourceArn=resource_arn, tagKeys=["stage", "owner"])
        assert tags_of(batch, resource_arn) == {}, kind
        assert described_tags(batch, kind, resource_arn) == {}, kind


def test_tags_of_each_revision_are_its_own(batch, unique):
    name = unique("jd")
    first = register_jd(batch, name, tags={"v": "1"})["jobDefinitionArn"]
    second = register_jd(batch, name)["jobDefinitionArn"]
    batch.tag_resource(resourceArn=second, tags={"v": "2"})
    assert (tags_of(batch, first), tags_of(batch, second)) == ({"v": "1"}, {"v": "2"})
    err = client_error(batch.tag_resource, resourceArn=arn("job-definition", name), tags={"a": "b"})
    assert "a job definition ARN must end with :revision" in err["Message"]


def test_refusals_change_nothing(batch, unique):
    resources = one_of_each(batch, unique, {"keep": "me"})
    fifty = {f"k{i}": "v" for i in range(50)}
    for kind, resource_arn in resources.items():
        for tags, message in [
            ({"aws:owner": "x"}, "tag key 'aws:owner' uses the reserved prefix 'aws:'"),
            ({"AWS:owner": "x"}, "reserved prefix 'aws:'"),
            (fifty, "tags (existing and new together) has 51 tags; at most 50 are allowed"),
            ({"k": "v" * 257}, "has 257 characters; at most 256 allowed"),
            ({"k" * 129: "v"}, "has 129 characters; at most 128 allowed"),
        ]:
            err = client_error(batch.tag_resource, resourceArn=resource_arn, tags=tags)
            assert err["Code"] == "ClientException" and err["Status"] == 400, (kind, tags)
            assert message in err["Message"], (kind, err["Message"])
            assert tags_of(batch, resource_arn) == {"keep": "me"}, kind

    ce_arn = resources["compute-environment"]
    err = client_error(batch.tag_resource, resourceArn=ce_arn, tags={"batchyard:provider": "ray"})
    assert "batchyard:provider chooses a compute environment's provider" in err["Message"]
    batch.tag_resource(resourceArn=ce_arn, tags={"batchyard:provider": "local"})  # unchanged: fine
    err = client_error(batch.untag_resource, resourceArn=ce_arn, tagKeys=["batchyard:provider"])
    assert "cannot be removed" in err["Message"]
    assert tags_of(batch, ce_arn) == {"keep": "me", "batchyard:provider": "local"}


def test_unknown_and_untaggable_resources(batch, unique):
    for resource_arn, message in [
        (
            arn("compute-environment", "no-such-ce"),
            "compute-environment 'no-such-ce' does not exist",
        ),
        (arn("job-queue", "no-such-queue"), "job-queue 'no-such-queue' does not exist"),
        (arn("job-definition", "no-such-jd:1"), "does not exist"),
        (arn("scheduling-policy", "nope"), "does not exist"),
        (arn("consumable-resource", "nope"), "does not exist"),
        (arn("service-environment", "env"), "resources of type service-environment cannot be"),
        ("arn:aws:batch:eu-west-1:000000000000:job-queue/q", "belongs to region eu-west-1"),
        ("arn:aws:batch:us-east-1:111111111111:job-queue/q", "account 111111111111"),
        ("arn:aws:s3:::bucket", "is not a valid AWS Batch ARN"),
        ("my-queue", "is not a valid AWS Batch ARN"),
    ]:
        for call, kwargs in [
            (batch.list_tags_for_resource, {}),
            (batch.tag_resource, {"tags": {"a": "b"}}),
            (batch.untag_resource, {"tagKeys": ["a"]}),
        ]:
            err = client_error(call, resourceArn=resource_arn, **kwargs)
            assert err["Code"] == "ClientException" and err["Status"] == 400, resource_arn
            assert message in err["Message"], (resource_arn, err["Message"])

    # a deleted queue has no tags to show
    ce, queue = unique("ce"), unique("q")
    make_ce(batch, ce)
    queue_arn = make_queue(batch, queue, [ce], tags={"a": "b"})
    batch.update_job_queue(jobQueue=queue, state="DISABLED")
    batch.delete_job_queue(jobQueue=queue)
    wait_for(lambda: describe_queue(batch, queue) is None, what="the queue to go")
    err = client_error(batch.list_tags_for_resource, resourceArn=queue_arn)
    assert "does not exist" in err["Message"]


def test_concurrent_tagging_loses_nothing(batch, unique):
    policy = batch.create_scheduling_policy(name=unique("sp"), tags={"keep": "me"})["arn"]

    def tag(i: int) -> None:
        batch.tag_resource(resourceArn=policy, tags={f"k{i}": str(i)})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(tag, range(24)))
    assert tags_of(batch, policy) == {"keep": "me", **{f"k{i}": str(i) for i in range(24)}}

    def untag(i: int) -> None:
        batch.untag_resource(resourceArn=policy, tagKeys=[f"k{i}"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(untag, range(24)))
    assert tags_of(batch, policy) == {"keep": "me"}
