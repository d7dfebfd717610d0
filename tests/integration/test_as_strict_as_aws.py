"""Exactly as strict as AWS, no stricter: what AWS accepts (an empty tags map, a member a newer
SDK sends, a SEQUENTIAL dependency naming a job) works through boto3 and raw HTTP; what AWS
refuses (an oversized job payload, an unknown instance type) is refused with a message that
says what to do. (Cancelling an unknown job: test_jobs.py and test_aws_cli.py.)"""

from __future__ import annotations

import uuid

import orjson
from helpers import (
    arn,
    client_error,
    describe_ce,
    make_ce,
    make_queue,
    register,
    register_jd,
    setup_queue,
    wait_for,
    wait_job,
)


def post(server, path: str, body: dict):
    with server.http() as http:
        return http.post(
            path, content=orjson.dumps(body), headers={"content-type": "application/json"}
        )


def test_empty_tags_maps_are_accepted_everywhere(batch, unique):
    ce, queue, jd, policy, consumable = (unique(k) for k in ("ce", "q", "jd", "sp", "cr"))
    # AWS accepts tags={} (the model's min of 1 entry is not enforced, nor checked by boto3)
    batch.create_compute_environment(
        computeEnvironmentName=ce,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": 2, "minvCpus": 0, "capacityTags": {}},
        tags={},
    )
    wait_for(lambda: describe_ce(batch, ce)["status"] == "VALID", what="VALID")
    make_queue(batch, queue, [ce], tags={})
    register_jd(batch, jd, tags={})
    batch.create_scheduling_policy(name=policy, tags={})
    batch.create_consumable_resource(consumableResourceName=consumable, totalQuantity=1, tags={})
    job = batch.submit_job(jobName="j", jobQueue=queue, jobDefinition=jd, tags={})["jobId"]
    targets = [
        arn("compute-environment", ce),
        arn("job-queue", queue),
        arn("job-definition", f"{jd}:1"),
        arn("scheduling-policy", policy),
        arn("consumable-resource", consumable),
        arn("job", job),
    ]
    for target in targets:
        batch.tag_resource(resourceArn=target, tags={})
        assert batch.list_tags_for_resource(resourceArn=target)["tags"] == {}, target


def test_unknown_members_are_ignored_and_logged_once(server, batch, unique):
    # boto3 refuses unknown members before sending; a newer SDK would send them
    field = f"newerSdkField{uuid.uuid4().hex[:8]}"
    names = [unique("sp"), unique("sp")]
    for name in names:
        r = post(
            server,
            "/v1/createschedulingpolicy",
            {
                "name": name,
                field: {"anything": [1, 2]},
                "fairsharePolicy": {
                    "shareDecaySeconds": 60,
                    "shareDistribution": [{"shareIdentifier": "a", field: True}],
                },
            },
        )
        assert r.status_code == 200, r.text
    policies = batch.describe_scheduling_policies(arns=names)["schedulingPolicies"]
    assert [p["fairsharePolicy"]["shareDistribution"] for p in policies] == [
        [{"shareIdentifier": "a"}]
    ] * 2
    log = server.log_path.read_text(errors="replace")
    for path in (field, f"fairsharePolicy.shareDistribution[].{field}"):
        line = f"CreateSchedulingPolicy: ignored the member {path},"
        assert log.count(line) == 1, (line, log[-3000:])


def test_maximum_lengths_aws_does_not_enforce_are_accepted(batch, unique):
    name = unique("cr")
    batch.create_consumable_resource(consumableResourceName=name, totalQuantity=1)
    token = "t" * 100  # the model says at most 64; AWS's limit is not known, botocore checks none
    batch.update_consumable_resource(
        consumableResource=name, operation="SET", quantity=2, clientToken=token
    )
    assert batch.describe_consumable_resource(consumableResource=name)["totalQuantity"] == 2


def test_tag_restrictions_are_still_refused(batch, unique):
    name = unique("sp")
    err = client_error(batch.create_scheduling_policy, name=name, tags={"k": "v" * 257})
    assert "tags.k: has 257 characters; at most 256 allowed" in err["Message"]
    err = client_error(
        batch.create_scheduling_policy, name=name, tags={f"k{i}": "v" for i in range(51)}
    )
    assert "tags: has 51 entries; at most 50 allowed" in err["Message"]


def test_job_payload_limits_are_aws_quotas(server, batch, unique):
    queue_ce, queue, jd = unique("ce"), unique("q"), unique("jd")
    make_ce(batch, queue_ce)
    make_queue(batch, queue, [queue_ce])
    register_jd(batch, jd, parameters={"blob": "x" * (23 * 1024)})  # under 24 KiB
    err = client_error(register_jd, batch, unique("jd"), parameters={"blob": "x" * (25 * 1024)})
    assert err["Status"] == 400 and err["Code"] == "ClientException"
    message = err["Message"]
    assert "the RegisterJobDefinition request is 25," in message
    assert "AWS Batch limits a job definition to 24 KiB (24,576 bytes)" in message
    assert "Pass large inputs through a file or an S3 object" in message

    submit = {"jobName": "big", "jobQueue": queue, "jobDefinition": jd}
    batch.submit_job(**submit, parameters={"blob": "x" * (29 * 1024)})  # under 30 KiB
    err = client_error(batch.submit_job, **submit, parameters={"blob": "x" * (40 * 1024)})
    assert "the SubmitJob request is 41," in err["Message"]
    assert "AWS Batch limits a job payload to 30 KiB (30,720 bytes)" in err["Message"]
    listed = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["big"]}])
    assert len(listed["jobSummaryList"]) == 1  # the refused one was not created

    # the size is the request's JSON without insignificant white space
    body = {**submit, "parameters": {"blob": "x" * (29 * 1024)}}
    pretty = orjson.dumps(body, option=orjson.OPT_INDENT_2).replace(b"\n", b"\n" + b" " * 2000)
    assert len(pretty) > 30 * 1024
    with server.http() as http:
        r = http.post("/v1/submitjob", content=pretty, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


def test_instance_types_are_checked_as_aws_checks_them(batch, unique):
    name = unique("ce")
    good = ["c5.xlarge", "m6g", "p2", "optimal", "default_x86_64", "default_arm64"]
    resources = {"type": "EC2", "maxvCpus": 2, "minvCpus": 0}
    err = client_error(
        batch.create_compute_environment,
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={**resources, "instanceTypes": ["c5", "c5.xlarg", "zz9.huge"]},
    )
    assert err["Status"] == 400
    message = err["Message"]
    assert "instanceTypes[1]: 'c5.xlarg' is not an EC2 instance type or family" in message
    assert "(did you mean c5.xlarge" in message
    assert "instanceTypes[2]: 'zz9.huge' is not an EC2 instance type or family." in message
    assert "instanceTypes[0]" not in message
    assert describe_ce(batch, name) is None

    batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={**resources, "instanceTypes": good},
    )
    wait_for(lambda: describe_ce(batch, name)["status"] == "VALID", what="VALID")
    err = client_error(
        batch.update_compute_environment,
        computeEnvironment=name,
        computeResources={"instanceTypes": ["optimal", "default_x86"]},
    )
    assert "'default_x86' is not an EC2 instance type or family" in err["Message"]
    assert "did you mean default_x86_64" in err["Message"]
    assert describe_ce(batch, name)["computeResources"]["instanceTypes"] == good
    batch.update_compute_environment(
        computeEnvironment=name, computeResources={"instanceTypes": ["m5.large"]}
    )
    wait_for(
        lambda: describe_ce(batch, name)["computeResources"]["instanceTypes"] == ["m5.large"],
        what="the update",
    )


def test_sequential_with_a_job_id_is_a_plain_dependency(batch, unique, tmp_path):
    queue = setup_queue(batch, unique, max_vcpus=4)
    gate = tmp_path / "open"
    first_jd = register(
        batch, unique, ["sh", "-c", 'until [ -e "$1" ]; do sleep 0.02; done', "sh", str(gate)]
    )
    then_jd = register(batch, unique, ["true"])
    first = batch.submit_job(jobName="first", jobQueue=queue, jobDefinition=first_jd)["jobId"]
    after = {"dependsOn": [{"jobId": first, "type": "SEQUENTIAL"}]}
    single = batch.submit_job(jobName="single", jobQueue=queue, jobDefinition=then_jd, **after)
    array = batch.submit_job(
        jobName="array",
        jobQueue=queue,
        jobDefinition=then_jd,
        arrayProperties={"size": 3},
        **after,
    )
    waiting = [single["jobId"], array["jobId"]] + [f"{array['jobId']}:{i}" for i in range(3)]
    for job in batch.describe_jobs(jobs=waiting)["jobs"]:
        # the whole array waits for the job named, its children not for each other
        assert job["status"] == "PENDING", job["jobId"]
        if job["jobId"] != array["jobId"]:
            assert job["statusReason"] == f"Waiting for dependencies: {first}", job["jobId"]
    gate.touch()
    assert wait_job(batch, first)["status"] == "SUCCEEDED"
    for job_id in (single["jobId"], array["jobId"]):
        assert wait_job(batch, job_id)["status"] == "SUCCEEDED"

    failing = batch.submit_job(
        jobName="fails", jobQueue=queue, jobDefinition=register(batch, unique, ["false"])
    )
    dependent = batch.submit_job(
        jobName="dependent",
        jobQueue=queue,
        jobDefinition=then_jd,
        dependsOn=[{"jobId": failing["jobId"], "type": "SEQUENTIAL"}],
    )
    job = wait_job(batch, dependent["jobId"])
    assert job["status"] == "FAILED"
    assert job["statusReason"] == f"Dependent job {failing['jobId']} failed"


def test_log_requests_ignore_unknown_members_too(server):
    field = f"newerSdkField{uuid.uuid4().hex[:8]}"
    with server.http() as http:
        r = http.post(
            "/",
            content=orjson.dumps({"logGroupNamePrefix": "/aws/batch", field: 1}),
            headers={
                "content-type": "application/x-amz-json-1.1",
                "x-amz-target": "Logs_20140328.DescribeLogGroups",
            },
        )
    assert r.status_code == 200, r.text
    assert "/aws/batch/job" in [g["logGroupName"] for g in r.json()["logGroups"]]
    log = server.log_path.read_text(errors="replace")
    assert f"DescribeLogGroups: ignored the member {field}," in log
