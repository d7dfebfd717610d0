"""Job definitions through boto3, on both stores: revisions, references, filters, rules."""

from __future__ import annotations

from helpers import (
    CONTAINER,
    EMPTY_CONTAINER,
    EMPTY_EKS_CONTAINER,
    arn,
    client_error,
    paginate,
    register_jd,
    tamper,
)


def revisions(batch, name: str, **filters) -> list[tuple[int, str]]:
    found = batch.describe_job_definitions(jobDefinitionName=name, **filters)["jobDefinitions"]
    return [(jd["revision"], jd["status"]) for jd in found]


def test_register_and_describe_everything_back(batch, unique):
    name = unique("jd")
    container = {
        **CONTAINER,
        "jobRoleArn": "arn:aws:iam::000000000000:role/job",
        "environment": [{"name": "STAGE", "value": "test"}],
        "volumes": [{"name": "scratch", "host": {"sourcePath": "/tmp"}}],
        "mountPoints": [
            {"containerPath": "/scratch", "sourceVolume": "scratch", "readOnly": False}
        ],
        "readonlyRootFilesystem": True,
        "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
        "user": "nobody",
        "linuxParameters": {"initProcessEnabled": True, "sharedMemorySize": 64},
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}},
    }
    request = {
        "parameters": {"message": "hello"},
        "schedulingPriority": 50,
        "containerProperties": container,
        "retryStrategy": {
            "attempts": 3,
            "evaluateOnExit": [
                {"onExitCode": "1*", "action": "RETRY"},
                {"onReason": "*", "action": "EXIT"},
            ],
        },
        "propagateTags": True,
        "timeout": {"attemptDurationSeconds": 120},
        "tags": {"owner": "lab"},
        "platformCapabilities": ["EC2"],
    }
    created = register_jd(batch, name, **request)
    jd_arn = arn("job-definition", f"{name}:1")
    assert (created["jobDefinitionName"], created["jobDefinitionArn"], created["revision"]) == (
        name,
        jd_arn,
        1,
    )
    (jd,) = batch.describe_job_definitions(jobDefinitions=[jd_arn])["jobDefinitions"]
    assert jd == {
        "jobDefinitionName": name,
        "jobDefinitionArn": jd_arn,
        "revision": 1,
        "status": "ACTIVE",
        "type": "container",
        "containerOrchestrationType": "ECS",
        **request,
        # what AWS answers for the lists and maps left out (docs/api-compatibility.md)
        "containerProperties": {
            **container,
            "secrets": [],
            "linuxParameters": {**container["linuxParameters"], "devices": [], "tmpfs": []},
            "logConfiguration": {**container["logConfiguration"], "secretOptions": []},
        },
    }


def test_other_kinds_of_job_definition(batch, unique):
    multi, eks, ecs = unique("mnp"), unique("eks"), unique("ecs")
    nodes = {
        "numNodes": 3,
        "mainNode": 0,
        "nodeRangeProperties": [
            {"targetNodes": "0", "container": CONTAINER},
            {"targetNodes": "1:", "container": {**CONTAINER, "command": ["worker"]}},
        ],
    }
    batch.register_job_definition(jobDefinitionName=multi, type="multinode", nodeProperties=nodes)
    pod = {"containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}
    batch.register_job_definition(
        jobDefinitionName=eks, type="container", eksProperties={"podProperties": pod}
    )
    task = {"containers": [{"name": "main", "image": "busybox", "essential": True}]}
    batch.register_job_definition(
        jobDefinitionName=ecs, type="container", ecsProperties={"taskProperties": [task]}
    )
    found = {
        jd["jobDefinitionName"]: jd
        for jd in batch.describe_job_definitions(jobDefinitions=[multi, eks, ecs])["jobDefinitions"]
    }
    assert found[multi]["type"] == "multinode"
    assert found[multi]["nodeProperties"] == {
        **nodes,
        "nodeRangeProperties": [
            {**r, "container": {**EMPTY_CONTAINER, **r["container"]}}
            for r in nodes["nodeRangeProperties"]
        ],
    }
    assert found[eks]["containerOrchestrationType"] == "EKS"
    assert found[eks]["eksProperties"] == {
        "podProperties": {
            **pod,
            "containers": [{**EMPTY_EKS_CONTAINER, **c} for c in pod["containers"]],
            "volumes": [],
        }
    }
    assert found[ecs]["containerOrchestrationType"] == "ECS"
    assert found[ecs]["ecsProperties"] == {"taskProperties": [task]}


def test_revisions_references_and_deregister(batch, unique):
    name = unique("jd")
    for expected in (1, 2, 3):
        assert register_jd(batch, name)["revision"] == expected
    assert revisions(batch, name) == [(1, "ACTIVE"), (2, "ACTIVE"), (3, "ACTIVE")]

    def refs(*refs: str) -> list[int]:
        found = batch.describe_job_definitions(jobDefinitions=list(refs))["jobDefinitions"]
        return [jd["revision"] for jd in found]

    assert refs(f"{name}:2") == [2]
    assert refs(arn("job-definition", f"{name}:3")) == [3]
    assert refs(name) == [1, 2, 3]  # a bare name means every revision
    assert refs(arn("job-definition", name)) == [1, 2, 3]
    assert refs(f"{name}:9", "no-such-definition") == []

    batch.deregister_job_definition(jobDefinition=f"{name}:1")
    batch.deregister_job_definition(jobDefinition=arn("job-definition", f"{name}:3"))
    assert revisions(batch, name) == [(1, "INACTIVE"), (2, "ACTIVE"), (3, "INACTIVE")]
    assert revisions(batch, name, status="ACTIVE") == [(2, "ACTIVE")]
    assert revisions(batch, name, status="INACTIVE") == [(1, "INACTIVE"), (3, "INACTIVE")]

    for ref, message in [
        (f"{name}:1", f"job definition {name}:1 is already INACTIVE"),
        (name, "has no revision; deregister one revision at a time"),
        (f"{name}:7", f"job definition {name}:7 does not exist"),
        (f"{name}:x", "the revision after ':' must be a positive number"),
        (arn("job-queue", f"{name}:2"), "is a job-queue ARN, expected a job-definition ARN"),
    ]:
        err = client_error(batch.deregister_job_definition, jobDefinition=ref)
        assert err["Code"] == "ClientException" and message in err["Message"], err
    assert revisions(batch, name) == [(1, "INACTIVE"), (2, "ACTIVE"), (3, "INACTIVE")]
    # revision numbers are never reused
    assert register_jd(batch, name)["revision"] == 4


def test_filters_and_pagination(batch, unique):
    name, other = unique("jd"), unique("jd")
    for _ in range(5):
        register_jd(batch, name)
    register_jd(batch, other)
    batch.deregister_job_definition(jobDefinition=f"{name}:2")

    pages = paginate(batch.describe_job_definitions, "jobDefinitions", 2, jobDefinitionName=name)
    assert [jd["revision"] for jd in pages] == [1, 2, 3, 4, 5]
    active = paginate(
        batch.describe_job_definitions, "jobDefinitions", 2, jobDefinitionName=name, status="ACTIVE"
    )
    assert [jd["revision"] for jd in active] == [1, 3, 4, 5]
    everything = paginate(batch.describe_job_definitions, "jobDefinitions", 3)
    mine = [(jd["jobDefinitionName"], jd["revision"]) for jd in everything]
    assert len(mine) == len(set(mine))
    assert {(name, r) for r in range(1, 6)} | {(other, 1)} <= set(mine)

    token = batch.describe_job_definitions(jobDefinitionName=name, maxResults=2)["nextToken"]
    page = batch.describe_job_definitions(jobDefinitionName=name, maxResults=2, nextToken=token)
    assert [jd["revision"] for jd in page["jobDefinitions"]] == [3, 4]
    for kwargs, message in [
        ({"jobDefinitionName": other}, "nextToken was not issued for this"),
        ({"jobDefinitionName": name, "status": "ACTIVE"}, "nextToken was not issued for this"),
    ]:
        err = client_error(batch.describe_job_definitions, maxResults=2, nextToken=token, **kwargs)
        assert message in err["Message"]
    err = client_error(
        batch.describe_job_definitions, jobDefinitionName=name, nextToken=tamper(token)
    )
    assert "nextToken is not a token this server issued" in err["Message"]

    for kwargs, message in [
        ({"status": "DELETED"}, "status 'DELETED' is not valid; use ACTIVE or INACTIVE"),
        ({"jobDefinitions": [name], "status": "ACTIVE"}, "can't be combined with"),
        ({"jobDefinitions": [f"x{i}" for i in range(101)]}, "at most 100 are allowed"),
        ({"maxResults": 0}, "maxResults is 0; it must be between 1 and 100"),
        ({"jobDefinitionName": "bad name"}, "jobDefinitionName 'bad name' is not valid"),
    ]:
        err = client_error(batch.describe_job_definitions, **kwargs)
        assert err["Code"] == "ClientException" and message in err["Message"], err


def test_registration_rules(batch, unique):
    consumable = unique("cr")
    batch.create_consumable_resource(consumableResourceName=consumable, totalQuantity=2)
    nodes = {
        "numNodes": 2,
        "mainNode": 0,
        "nodeRangeProperties": [{"targetNodes": "0:", "container": CONTAINER}],
    }

    def requirement(kind: str, value: str) -> dict:
        return {
            "containerProperties": {
                **CONTAINER,
                "resourceRequirements": [{"type": kind, "value": value}],
            }
        }

    cases = [
        ({"containerProperties": None}, "needs exactly one of containerProperties"),
        ({"nodeProperties": nodes}, "nodeProperties is only for type multinode"),
        ({"type": "multinode", "containerProperties": None}, "needs nodeProperties"),
        (
            {
                "type": "multinode",
                "containerProperties": None,
                "nodeProperties": {**nodes, "mainNode": 2},
            },
            "nodeProperties.mainNode is 2; it must be between 0 and 1",
        ),
        (
            {
                "type": "multinode",
                "containerProperties": None,
                "nodeProperties": {
                    **nodes,
                    "nodeRangeProperties": [{"targetNodes": "0:5", "container": CONTAINER}],
                },
            },
            "targetNodes '0:5' is outside nodes 0 to 1",
        ),
        (
            {
                "type": "multinode",
                "containerProperties": None,
                "nodeProperties": {
                    **nodes,
                    "nodeRangeProperties": [{"targetNodes": "first", "container": CONTAINER}],
                },
            },
            "'first' is not a node range",
        ),
        ({"retryStrategy": {"attempts": 11}}, "retryStrategy.attempts is 11"),
        (
            {"retryStrategy": {"evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}]}},
            "evaluateOnExit needs retryStrategy.attempts",
        ),
        (
            {
                "retryStrategy": {
                    "attempts": 2,
                    "evaluateOnExit": [{"onExitCode": "x1", "action": "EXIT"}],
                }
            },
            "onExitCode 'x1' is not a valid pattern",
        ),
        (
            {"timeout": {"attemptDurationSeconds": 0}},
            "attemptDurationSeconds is 0; the minimum is 1",
        ),
        (
            {"schedulingPriority": 10_000},
            "schedulingPriority is 10000; it must be between 0 and 9999",
        ),
        (requirement("VCPU", "lots"), "resourceRequirements[0].value 'lots' is not a number"),
        (requirement("VCPU", "0"), "the vCPU request must be greater than 0"),
        (requirement("MEMORY", "2"), "the memory request must be at least 4 MiB"),
        (requirement("GPU", "-1"), "must not be negative"),
        (
            {
                "containerProperties": {
                    **CONTAINER,
                    "resourceRequirements": [
                        {"type": "VCPU", "value": "1"},
                        {"type": "VCPU", "value": "2"},
                    ],
                }
            },
            "VCPU is given more than once",
        ),
        (
            {
                "consumableResourceProperties": {
                    "consumableResourceList": [{"consumableResource": "no-such-cr", "quantity": 1}]
                }
            },
            "consumable resource 'no-such-cr' does not exist",
        ),
        (
            {
                "consumableResourceProperties": {
                    "consumableResourceList": [{"consumableResource": consumable, "quantity": 0}]
                }
            },
            "quantity must be at least 1",
        ),
        ({"jobDefinitionName": "bad name"}, "jobDefinitionName 'bad name' is not valid"),
        ({"tags": {"aws:x": "y"}}, "reserved prefix 'aws:'"),
    ]
    for change, message in cases:
        name = unique("jd")
        request = {"jobDefinitionName": name, "type": "container", "containerProperties": CONTAINER}
        request.update(change)
        request = {k: v for k, v in request.items() if v is not None}
        err = client_error(batch.register_job_definition, **request)
        assert err["Code"] == "ClientException" and err["Status"] == 400, change
        assert message in err["Message"], (change, err["Message"])
        assert revisions(batch, name) == [], change

    # a consumable resource may be named by name or ARN
    done = register_jd(
        batch,
        unique("jd"),
        consumableResourceProperties={
            "consumableResourceList": [
                {"consumableResource": arn("consumable-resource", consumable), "quantity": 1}
            ]
        },
    )
    (jd,) = batch.describe_job_definitions(jobDefinitions=[done["jobDefinitionArn"]])[
        "jobDefinitions"
    ]
    (req,) = jd["consumableResourceProperties"]["consumableResourceList"]
    assert req["consumableResource"] in (consumable, arn("consumable-resource", consumable))
    assert req["quantity"] == 1
