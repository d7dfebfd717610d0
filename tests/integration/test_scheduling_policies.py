"""Scheduling policies through boto3, on both stores: CRUD, fair-share rules, pagination."""

from __future__ import annotations

from helpers import arn, client_error, make_ce, make_queue, paginate, tamper

FAIRSHARE = {
    "shareDecaySeconds": 3600,
    "computeReservation": 10,
    "shareDistribution": [
        {"shareIdentifier": "teamA", "weightFactor": 0.5},
        {"shareIdentifier": "teamB*", "weightFactor": 2.0},
    ],
}


def describe(batch, *arns: str) -> list[dict]:
    return batch.describe_scheduling_policies(arns=list(arns))["schedulingPolicies"]


def test_create_describe_list_update_delete(batch, unique):
    name = unique("sp")
    created = batch.create_scheduling_policy(
        name=name, fairsharePolicy=FAIRSHARE, tags={"cost-center": "42"}
    )
    policy_arn = arn("scheduling-policy", name)
    assert (created["name"], created["arn"]) == (name, policy_arn)
    assert describe(batch, policy_arn) == [
        {
            "name": name,
            "arn": policy_arn,
            "fairsharePolicy": FAIRSHARE,
            "tags": {"cost-center": "42"},
        }
    ]
    listed = paginate(batch.list_scheduling_policies, "schedulingPolicies", 100)
    assert {"arn": policy_arn} in listed

    changed = {"shareDecaySeconds": 60, "shareDistribution": [{"shareIdentifier": "teamC"}]}
    assert batch.update_scheduling_policy(arn=policy_arn, fairsharePolicy=changed)
    (policy,) = describe(batch, policy_arn)
    assert policy["fairsharePolicy"] == changed
    assert policy["tags"] == {"cost-center": "42"}

    batch.delete_scheduling_policy(arn=policy_arn)
    assert describe(batch, policy_arn) == []
    assert {"arn": policy_arn} not in paginate(
        batch.list_scheduling_policies, "schedulingPolicies", 100
    )
    err = client_error(batch.delete_scheduling_policy, arn=policy_arn)
    assert f"scheduling policy '{name}' does not exist" in err["Message"]
    err = client_error(batch.update_scheduling_policy, arn=policy_arn, fairsharePolicy=changed)
    assert f"scheduling policy '{name}' does not exist" in err["Message"]


def test_a_policy_without_fairshare_settings(batch, unique):
    name = unique("sp")
    policy_arn = batch.create_scheduling_policy(name=name)["arn"]
    (policy,) = describe(batch, policy_arn)
    assert policy == {"name": name, "arn": policy_arn, "fairsharePolicy": {}, "tags": {}}


def test_describe_several_and_unknown(batch, unique):
    names = [unique("sp") for _ in range(3)]
    arns = [batch.create_scheduling_policy(name=n)["arn"] for n in names]
    found = describe(batch, arns[2], arns[0], arn("scheduling-policy", "no-such-policy"))
    assert sorted(p["name"] for p in found) == sorted([names[0], names[2]])
    err = client_error(batch.describe_scheduling_policies, arns=[arn("job-queue", names[0])])
    assert "is a job-queue ARN, expected a scheduling-policy ARN" in err["Message"]
    err = client_error(batch.describe_scheduling_policies, arns=[f"x{i}" for i in range(101)])
    assert "at most 100 are allowed" in err["Message"]


def test_rules_refuse_and_change_nothing(batch, unique):
    def share(ident: str, weight: float = 1.0) -> dict:
        return {"shareIdentifier": ident, "weightFactor": weight}

    cases = [
        ({"shareDecaySeconds": 604_801}, "shareDecaySeconds is 604801; it must be between 0 and"),
        ({"computeReservation": 100}, "computeReservation is 100; it must be between 0 and 99"),
        ({"shareDistribution": [share("a", 0)]}, "weightFactor is 0"),
        ({"shareDistribution": [share("a", 1000)]}, "weightFactor is 1000"),
        ({"shareDistribution": [share("team-a")]}, "shareIdentifier 'team-a' must be 1 to 255"),
        ({"shareDistribution": [share("")]}, "shareIdentifier '' must be 1 to 255"),
        ({"shareDistribution": [share("ab*"), share("abc")]}, "'abc' overlaps 'ab*'"),
        ({"shareDistribution": [share("x"), share("x")]}, "'x' overlaps 'x'"),
        (
            {"shareDistribution": [share(f"s{i}") for i in range(501)]},
            "shareDistribution has 501 entries; at most 500",
        ),
    ]
    existing = unique("sp")
    existing_arn = batch.create_scheduling_policy(name=existing, fairsharePolicy=FAIRSHARE)["arn"]
    before = describe(batch, existing_arn)
    for policy, message in cases:
        name = unique("sp")
        err = client_error(batch.create_scheduling_policy, name=name, fairsharePolicy=policy)
        assert err["Code"] == "ClientException" and err["Status"] == 400, policy
        assert message in err["Message"], (policy, err["Message"])
        assert describe(batch, arn("scheduling-policy", name)) == []
        err = client_error(batch.update_scheduling_policy, arn=existing_arn, fairsharePolicy=policy)
        assert message in err["Message"], (policy, err["Message"])
        assert describe(batch, existing_arn) == before

    for kwargs, message in [
        ({"name": existing}, f"A scheduling policy named '{existing}' already exists"),
        ({"name": "no spaces"}, "name 'no spaces' is not valid"),
        ({"name": "p" * 129}, "use 1 to 128 letters"),
        (
            {
                "name": unique("sp"),
                "fairsharePolicy": {},
                "quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"},
            },
            "set fairsharePolicy or quotaSharePolicy, not both",
        ),
        ({"name": unique("sp"), "tags": {"aws:x": "1"}}, "reserved prefix 'aws:'"),
    ]:
        err = client_error(batch.create_scheduling_policy, **kwargs)
        assert err["Code"] == "ClientException" and message in err["Message"], err
    assert describe(batch, existing_arn) == before


def test_a_policy_in_use_cannot_be_deleted(batch, unique):
    ce, queue, name = unique("ce"), unique("q"), unique("sp")
    policy_arn = batch.create_scheduling_policy(name=name)["arn"]
    make_ce(batch, ce)
    make_queue(batch, queue, [ce], schedulingPolicyArn=policy_arn)
    err = client_error(batch.delete_scheduling_policy, arn=policy_arn)
    assert f"is used by job queue(s) {queue}" in err["Message"]
    assert describe(batch, policy_arn)


def test_list_pagination(batch, unique):
    arns = [batch.create_scheduling_policy(name=unique("page-sp"))["arn"] for _ in range(5)]
    listed = [p["arn"] for p in paginate(batch.list_scheduling_policies, "schedulingPolicies", 2)]
    assert len(listed) == len(set(listed))
    assert [a for a in listed if a in arns] == arns
    token = batch.list_scheduling_policies(maxResults=1)["nextToken"]
    err = client_error(batch.list_scheduling_policies, maxResults=1, nextToken=tamper(token))
    assert "nextToken is not a token this server issued" in err["Message"]
    err = client_error(batch.list_consumable_resources, maxResults=1, nextToken=token)
    assert "nextToken was not issued for this ListConsumableResources request" in err["Message"]
    err = client_error(batch.list_scheduling_policies, maxResults=101)
    assert "maxResults is 101" in err["Message"]
