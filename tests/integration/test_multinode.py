"""Multi-node parallel jobs on the local provider: gang placement, the main node first, the
nodes finding the main node over TCP, the job taking the main node's outcome."""

from __future__ import annotations

import socket

from helpers import setup_queue, wait_job

MAIN = r"""
import os, socket, sys
n = int(os.environ["AWS_BATCH_JOB_NUM_NODES"])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
got = []
for _ in range(n - 1):
    c, _ = s.accept(); got.append(c.recv(100).decode()); c.close()
print("main", os.environ["AWS_BATCH_JOB_NODE_INDEX"], "heard", sorted(got))
"""
CHILD = r"""
import os, socket, sys, time
for _ in range(200):
    try:
        c = socket.create_connection((os.environ["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"], int(sys.argv[1])))
        break
    except OSError:
        time.sleep(0.05)
c.sendall(("node" + os.environ["AWS_BATCH_JOB_NODE_INDEX"]).encode()); c.close()
print("sent from", os.environ["AWS_BATCH_JOB_NODE_INDEX"], "of", os.environ["AWS_BATCH_JOB_NUM_NODES"])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _definition(batch, unique, main_cmd, child_cmd, nodes=3, retries=None) -> str:
    name = unique("mnp")
    res = [{"type": "VCPU", "value": "0.5"}, {"type": "MEMORY", "value": "128"}]
    batch.register_job_definition(
        jobDefinitionName=name,
        type="multinode",
        parameters={"port": "0"},
        nodeProperties={
            "numNodes": nodes,
            "mainNode": 0,
            "nodeRangeProperties": [
                {
                    "targetNodes": "0",
                    "container": {"command": main_cmd, "resourceRequirements": res},
                },
                {
                    "targetNodes": "1:",
                    "container": {"command": child_cmd, "resourceRequirements": res},
                },
            ],
        },
        **({"retryStrategy": {"attempts": retries}} if retries else {}),
    )
    return name


def test_nodes_find_the_main_node(server, batch, unique):
    queue = setup_queue(batch, unique)
    jd = _definition(
        batch, unique, ["python3", "-c", MAIN, "Ref::port"], ["python3", "-c", CHILD, "Ref::port"]
    )
    port = _free_port()
    job_id = batch.submit_job(
        jobName="mnp", jobQueue=queue, jobDefinition=jd, parameters={"port": str(port)}
    )["jobId"]
    job = wait_job(batch, job_id, timeout=60)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert job["nodeProperties"]["numNodes"] == 3 and job["nodeProperties"]["mainNode"] == 0
    nodes = {
        n["jobId"]: n
        # the other nodes end by themselves or are stopped when the main node ends (AWS's rule)
        for status in ("SUCCEEDED", "FAILED")
        for n in batch.list_jobs(multiNodeJobId=job_id, jobStatus=status)["jobSummaryList"]
    }
    assert set(nodes) == {f"{job_id}#0", f"{job_id}#1", f"{job_id}#2"}
    assert nodes[f"{job_id}#0"]["status"] == "SUCCEEDED"
    main, *children = batch.describe_jobs(jobs=[f"{job_id}#{i}" for i in range(3)])["jobs"]
    assert main["nodeDetails"] == {"nodeIndex": 0, "isMainNode": True}
    assert children[0]["nodeDetails"] == {"nodeIndex": 1, "isMainNode": False}
    assert all(main["startedAt"] <= c["startedAt"] for c in children)
    logs = server.client("logs")
    stream = main["attempts"][0]["container"]["logStreamName"]
    lines = [
        e["message"]
        for e in logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream)["events"]
    ]
    assert lines == ["main 0 heard ['node1', 'node2']"]
    assert (
        job["attempts"][0]["container"]["logStreamName"] == stream
    )  # the job's attempts are the main node's


def test_the_job_takes_the_main_nodes_outcome(batch, unique):
    queue = setup_queue(batch, unique)
    jd = _definition(batch, unique, ["sh", "-c", "exit 4"], ["sleep", "30"], nodes=2, retries=2)
    job = wait_job(
        batch,
        batch.submit_job(jobName="mnpfail", jobQueue=queue, jobDefinition=jd)["jobId"],
        timeout=60,
    )
    assert job["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [4, 4]  # retried as a whole
    child = batch.describe_jobs(jobs=[f"{job['jobId']}#1"])["jobs"][0]
    assert child["status"] == "FAILED" and len(child["attempts"]) == 2


def test_gang_waits_for_room_for_every_node(batch, unique):
    queue = setup_queue(batch, unique, max_vcpus=1)
    jd = _definition(batch, unique, ["true"], ["true"], nodes=3)  # 3 × 0.5 vCPU > 1
    job_id = batch.submit_job(jobName="toobig", jobQueue=queue, jobDefinition=jd)["jobId"]
    from helpers import wait_for

    job = wait_for(
        lambda: (j := batch.describe_jobs(jobs=[job_id])["jobs"][0]).get("statusReason") and j,
        what="a reason",
    )
    assert job["status"] == "RUNNABLE"
    assert job["statusReason"].startswith("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE")
    assert "1.5 vCPU" in job["statusReason"]
    batch.cancel_job(jobId=job_id, reason="cleanup")
    nodes = batch.describe_jobs(jobs=[f"{job_id}#{i}" for i in range(3)])["jobs"]
    assert {n["status"] for n in nodes} == {"FAILED"}


def test_terminate_stops_every_node(batch, unique):
    queue = setup_queue(batch, unique)
    jd = _definition(batch, unique, ["sleep", "60"], ["sleep", "60"], nodes=2)
    job_id = batch.submit_job(jobName="mnpterm", jobQueue=queue, jobDefinition=jd)["jobId"]
    wait_job(batch, f"{job_id}#1", until={"RUNNING"})
    batch.terminate_job(jobId=job_id, reason="enough")
    job = wait_job(batch, job_id, timeout=60)
    assert job["status"] == "FAILED" and job["statusReason"] == "enough"
    nodes = batch.describe_jobs(jobs=[f"{job_id}#{i}" for i in range(2)])["jobs"]
    assert {n["status"] for n in nodes} == {"FAILED"}
