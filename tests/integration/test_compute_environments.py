"""Compute environments through boto3, on both stores."""

from __future__ import annotations

from helpers import client_error, make_ce, make_queue, wait_for


def test_create_describe_update_delete(batch, unique):
    name = unique("ce")
    arn = make_ce(batch, name, max_vcpus=4)
    assert arn.endswith(f":compute-environment/{name}")
    (ce,) = batch.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"]
    assert ce["computeEnvironmentName"] == name
    assert ce["state"] == "ENABLED" and ce["status"] == "VALID"
    assert ce["computeResources"]["maxvCpus"] == 4
    assert "usable capacity" in ce["statusReason"]

    batch.update_compute_environment(
        computeEnvironment=name, state="DISABLED", computeResources={"maxvCpus": 1}
    )
    ce = wait_for(
        lambda: [
            c
            for c in batch.describe_compute_environments(computeEnvironments=[name])[
                "computeEnvironments"
            ]
            if c["status"] == "VALID"
        ],
        what="update to settle",
    )[0]
    assert ce["state"] == "DISABLED"
    assert ce["computeResources"]["maxvCpus"] == 1

    batch.delete_compute_environment(computeEnvironment=arn)
    wait_for(
        lambda: (
            not batch.describe_compute_environments(computeEnvironments=[name])[
                "computeEnvironments"
            ]
        ),
        what="compute environment to disappear",
    )


def test_duplicate_name_is_refused_and_changes_nothing(batch, unique):
    name = unique("ce")
    make_ce(batch, name, max_vcpus=3)
    err = client_error(
        batch.create_compute_environment,
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": 9},
    )
    assert err["Code"] == "ClientException" and err["Status"] == 400
    assert "already exists" in err["Message"]
    (ce,) = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"]
    assert ce["computeResources"]["maxvCpus"] == 3


def test_delete_requires_disabled_and_unused(batch, unique):
    ce_name, q_name = unique("ce"), unique("q")
    make_ce(batch, ce_name)
    err = client_error(batch.delete_compute_environment, computeEnvironment=ce_name)
    assert "DISABLED" in err["Message"]
    make_queue(batch, q_name, [ce_name])
    batch.update_compute_environment(computeEnvironment=ce_name, state="DISABLED")
    err = client_error(batch.delete_compute_environment, computeEnvironment=ce_name)
    assert q_name in err["Message"]
    assert batch.describe_compute_environments(computeEnvironments=[ce_name])["computeEnvironments"]


def test_min_above_max_is_refused(batch, unique):
    name = unique("ce")
    err = client_error(
        batch.create_compute_environment,
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": 1, "minvCpus": 4},
    )
    assert "maxvCpus (1) must be greater than or equal to minvCpus (4)" in err["Message"]
    assert not batch.describe_compute_environments(computeEnvironments=[name])[
        "computeEnvironments"
    ]


def test_pagination(batch, unique):
    names = [unique("page") for _ in range(5)]
    for n in names:
        batch.create_compute_environment(
            computeEnvironmentName=n, type="UNMANAGED", unmanagedvCpus=1
        )
    seen, token = [], None
    while True:
        kwargs = {"maxResults": 2} | ({"nextToken": token} if token else {})
        page = batch.describe_compute_environments(**kwargs)
        assert len(page["computeEnvironments"]) <= 2
        seen += [c["computeEnvironmentName"] for c in page["computeEnvironments"]]
        token = page.get("nextToken")
        if not token:
            break
    assert set(names) <= set(seen)
    assert len(seen) == len(set(seen))
    err = client_error(
        batch.describe_compute_environments, maxResults=2, nextToken=token or "bogus.token"
    )
    assert "nextToken" in err["Message"]


def _settled(batch, name):
    return wait_for(
        lambda: [
            c
            for c in batch.describe_compute_environments(computeEnvironments=[name])[
                "computeEnvironments"
            ]
            if c["status"] == "VALID"
        ],
        what=f"{name} to settle",
    )[0]


def test_update_amends_and_keeps_the_rest(batch, unique):
    name = unique("ce")
    resources = {
        "type": "EC2",
        "maxvCpus": 4,
        "minvCpus": 0,
        "instanceTypes": ["optimal"],
        "subnets": ["subnet-1"],
        "securityGroupIds": ["sg-1"],
        "instanceRole": "ecsInstanceRole",
        "tags": {"Name": "batch"},
    }
    batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources=resources,
        serviceRole="arn:aws:iam::000000000000:role/batch",
    )
    _settled(batch, name)
    policy = {"terminateJobsOnUpdate": True, "jobExecutionTimeoutMinutes": 10}
    batch.update_compute_environment(
        computeEnvironment=name,
        # updateToLatestImageVersion asks for an action: it is not kept or shown
        computeResources={"maxvCpus": 8, "updateToLatestImageVersion": True},
        serviceRole="arn:aws:iam::000000000000:role/other",
        updatePolicy=policy,
    )
    ce = _settled(batch, name)
    assert ce["computeResources"] == {**resources, "maxvCpus": 8}
    assert ce["serviceRole"] == "arn:aws:iam::000000000000:role/other"
    assert ce["updatePolicy"] == policy


def test_update_of_nested_settings(batch, unique):
    eks, managed = unique("eks"), unique("mi")
    cluster = {"eksClusterArn": "arn:aws:eks:us-east-1:000000000000:cluster/c",
               "kubernetesNamespace": "batch"}  # fmt: skip
    batch.create_compute_environment(
        computeEnvironmentName=eks,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": 2},
        eksConfiguration=cluster,
    )
    provider = {
        "infrastructureRoleArn": "arn:aws:iam::000000000000:role/infra",
        "instanceLaunchTemplate": {
            "ec2InstanceProfileArn": "arn:aws:iam::000000000000:instance-profile/p",
            "networkConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]},
        },
    }
    batch.create_compute_environment(
        computeEnvironmentName=managed,
        type="MANAGED",
        computeResources={
            "type": "ECS_MANAGED_INSTANCES",
            "maxvCpus": 2,
            "managedInstancesProvider": provider,
        },
    )
    access = {"desiredState": "ENABLED"}
    batch.update_compute_environment(
        computeEnvironment=eks, eksConfiguration={"accessEntry": access}
    )
    network = {"subnets": ["subnet-2"], "securityGroups": ["sg-2"]}
    batch.update_compute_environment(
        computeEnvironment=managed,
        computeResources={
            "managedInstancesProvider": {
                "instanceLaunchTemplate": {"networkConfiguration": network}
            }
        },
    )
    ce = _settled(batch, eks)
    assert ce["eksConfiguration"] == {**cluster, "accessEntry": access}
    assert ce["containerOrchestrationType"] == "EKS"
    ce = _settled(batch, managed)
    template = {**provider["instanceLaunchTemplate"], "networkConfiguration": network}
    assert ce["computeResources"]["managedInstancesProvider"] == {
        **provider,
        "instanceLaunchTemplate": template,
    }
