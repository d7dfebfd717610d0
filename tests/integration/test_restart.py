"""Nothing lives only in memory: a restarted server shows the same resources, and the
pagination tokens it issued before still work."""

from __future__ import annotations

from helpers import CONTAINER, arn, make_ce, make_queue, settled_queue, wait_for


def everything(batch) -> dict:
    """Every resource the server holds, as its describe calls show them."""
    policies = [p["arn"] for p in batch.list_scheduling_policies()["schedulingPolicies"]]
    consumables = batch.list_consumable_resources()["consumableResources"]
    state = {
        "computeEnvironments": batch.describe_compute_environments()["computeEnvironments"],
        "jobQueues": batch.describe_job_queues()["jobQueues"],
        "jobDefinitions": batch.describe_job_definitions()["jobDefinitions"],
        "schedulingPolicies": batch.describe_scheduling_policies(arns=policies)[
            "schedulingPolicies"
        ],
        "consumableResources": [
            batch.describe_consumable_resource(consumableResource=c["consumableResourceArn"])
            for c in consumables
        ],
        "tags": {},
    }
    for c in state["consumableResources"]:
        c.pop("ResponseMetadata")
    arns = [c["computeEnvironmentArn"] for c in state["computeEnvironments"]]
    arns += [q["jobQueueArn"] for q in state["jobQueues"]]
    arns += [j["jobDefinitionArn"] for j in state["jobDefinitions"]] + policies
    arns += [c["consumableResourceArn"] for c in consumables]
    state["tags"] = {a: batch.list_tags_for_resource(resourceArn=a)["tags"] for a in arns}
    return state


def test_a_restart_shows_the_same_resources(new_server):
    server = new_server()
    batch = server.client()
    policy = batch.create_scheduling_policy(
        name="fair",
        fairsharePolicy={"shareDecaySeconds": 60, "shareDistribution": [{"shareIdentifier": "a"}]},
        tags={"kind": "policy"},
    )["arn"]
    make_ce(batch, "ce-a", max_vcpus=2, tags={"kind": "ce"})
    batch.create_compute_environment(computeEnvironmentName="ce-b", type="UNMANAGED")
    make_ce(batch, "ce-gone")
    batch.update_compute_environment(computeEnvironment="ce-b", state="DISABLED")
    make_queue(batch, "queue", ["ce-a"], priority=7, schedulingPolicyArn=policy)
    make_queue(batch, "queue-gone", ["ce-gone"])
    batch.update_job_queue(jobQueue="queue-gone", state="DISABLED")
    batch.delete_job_queue(jobQueue="queue-gone")
    wait_for(
        lambda: not batch.describe_job_queues(jobQueues=["queue-gone"])["jobQueues"],
        what="queue-gone to be deleted",
    )
    batch.update_compute_environment(computeEnvironment="ce-gone", state="DISABLED")
    batch.delete_compute_environment(computeEnvironment="ce-gone")
    for _ in range(2):
        batch.register_job_definition(
            jobDefinitionName="jd", type="container", containerProperties=CONTAINER
        )
    batch.deregister_job_definition(jobDefinition="jd:1")
    batch.create_consumable_resource(
        consumableResourceName="licenses", totalQuantity=5, tags={"kind": "cr"}
    )
    batch.update_consumable_resource(consumableResource="licenses", operation="ADD", quantity=2)
    batch.tag_resource(resourceArn=arn("job-definition", "jd:2"), tags={"kind": "jd"})
    settled_queue(batch, "queue")

    def settled() -> bool:
        ces = batch.describe_compute_environments()["computeEnvironments"]
        return [(c["computeEnvironmentName"], c["status"]) for c in ces] == [
            ("ce-a", "VALID"),
            ("ce-b", "VALID"),
        ]

    wait_for(settled, what="the compute environments to settle")
    before = everything(batch)
    token = batch.describe_compute_environments(maxResults=1)["nextToken"]
    jd_token = batch.describe_job_definitions(jobDefinitionName="jd", maxResults=1)["nextToken"]

    server.restart()
    batch = server.client()
    assert everything(batch) == before
    page = batch.describe_compute_environments(maxResults=1, nextToken=token)
    assert [c["computeEnvironmentName"] for c in page["computeEnvironments"]] == ["ce-b"]
    page = batch.describe_job_definitions(jobDefinitionName="jd", maxResults=1, nextToken=jd_token)
    assert [(j["revision"], j["status"]) for j in page["jobDefinitions"]] == [(2, "ACTIVE")]
    # and it keeps working: names, revisions and ids continue where they were
    assert (
        batch.register_job_definition(
            jobDefinitionName="jd", type="container", containerProperties=CONTAINER
        )["revision"]
        == 3
    )
