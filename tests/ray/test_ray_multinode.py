"""Multi-node parallel jobs on a Ray compute environment: a placement group per gang (one
bundle per node; STRICT_SPREAD over distinct Ray nodes when the cluster has them), the nodes
finding their main node over TCP, the job ending with its main node, terminate, a gang the
cluster cannot place, a server restart under a running gang — and the provider's capacity
recheck, desiredvCpus passed to the autoscaler, and a deleted compute environment's
supervisor removed.

The module has a server of its own: a short capacity recheck (2 s instead of 15 s) and its
own Ray namespace, where a driver in the test process can see its supervisors."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import delete_ce, describe_ce, log_lines, make_queue, wait_for, wait_job
from raycluster import RayCluster, ray_ce, ray_server_settings
from test_ray_jobs import gone

from support.server import ServerProcess

pytestmark = pytest.mark.ray

RECHECK = 2
PLACE_CHECK = 2  # remote.PLACE_CHECK_SECONDS (not imported: it imports Ray, and the default
# run collects this module without the extra [ray])

MAIN = r"""
import os, socket, sys, time
n = int(os.environ["AWS_BATCH_JOB_NUM_NODES"])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8)
print("node=" + os.environ.get("BATCHYARD_RAY_NODE_ID", "-"), flush=True)
got = []
for _ in range(n - 1):
    c, _ = s.accept(); got.append(c.recv(100).decode()); c.close()
print("main", os.environ["AWS_BATCH_JOB_NODE_INDEX"], "heard", sorted(got), flush=True)
time.sleep(float(sys.argv[2]))
print("bye")
"""
CHILD = r"""
import os, socket, sys, time
print("node=" + os.environ.get("BATCHYARD_RAY_NODE_ID", "-"), flush=True)
main = os.environ["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"]
for _ in range(400):
    try:
        c = socket.create_connection((main, int(sys.argv[1])))
        break
    except OSError:
        time.sleep(0.05)
c.sendall(("node" + os.environ["AWS_BATCH_JOB_NODE_INDEX"]).encode()); c.close()
print("sent to", main, "from", os.environ["AWS_BATCH_JOB_NODE_INDEX"])
"""
TALK = (["python3", "-c", MAIN, "Ref::port", "Ref::linger"], ["python3", "-c", CHILD, "Ref::port"])


@pytest.fixture(scope="module")
def own(ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = ServerProcess(
        tmp_path_factory.mktemp("ray-mnp"),
        **ray_server_settings(ray_cluster),
        ray_namespace=f"mnp-{uuid.uuid4().hex[:8]}",
        ray_recheck_seconds=RECHECK,
    )
    server.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def driver(ray_cluster: RayCluster, own: ServerProcess) -> Iterator[Any]:
    """Ray, connected to the cluster in the server's namespace (to look at what it did)."""
    import ray

    ray.init(
        address=ray_cluster.address, namespace=own.settings["ray_namespace"], log_to_driver=False
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def batch(own: ServerProcess) -> Any:
    return own.client("batch")


@pytest.fixture(scope="module")
def queue(own: ServerProcess) -> str:
    batch = own.client("batch")
    run = uuid.uuid4().hex[:6]
    ray_ce(batch, f"mnpce-{run}", max_vcpus=4)
    make_queue(batch, f"mnpq-{run}", [f"mnpce-{run}"])
    return f"mnpq-{run}"


def _definition(
    batch: Any,
    unique: Any,
    commands: tuple[list[str], list[str]],
    nodes: int = 2,
    vcpus: str = "0.5",
    retries: int | None = None,
) -> str:
    name = unique("mnp")
    res = [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": "64"}]
    batch.register_job_definition(
        jobDefinitionName=name,
        type="multinode",
        parameters={"port": "0", "linger": "0"},
        nodeProperties={
            "numNodes": nodes,
            "mainNode": 0,
            "nodeRangeProperties": [
                {"targetNodes": "0", "container": {"command": commands[0], "resourceRequirements": res}},
                {"targetNodes": "1:", "container": {"command": commands[1], "resourceRequirements": res}},
            ],
        },
        **({"retryStrategy": {"attempts": retries}} if retries else {}),
    )  # fmt: skip
    return name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _submit(batch: Any, queue: str, jd: str, **parameters: str) -> str:
    parameters.setdefault("port", str(_free_port()))
    return batch.submit_job(jobName="mnp", jobQueue=queue, jobDefinition=jd, parameters=parameters)[
        "jobId"
    ]


def _nodes(batch: Any, job_id: str, count: int) -> list[dict[str, Any]]:
    return batch.describe_jobs(jobs=[f"{job_id}#{i}" for i in range(count)])["jobs"]


def _ray_node(server: ServerProcess, node_job: dict[str, Any]) -> str:
    lines = log_lines(server, node_job)
    return next(line.split("=", 1)[1] for line in lines if line.startswith("node="))


def _groups(driver: Any, job_id: str) -> list[dict[str, Any]]:
    """The job's placement groups (removed ones too), oldest first."""
    table = driver.util.placement_group_table().values()
    found = [pg for pg in table if f":{job_id}#" in pg["name"]]
    return sorted(found, key=lambda pg: pg["name"])


def _removed(driver: Any, job_id: str, count: int) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        groups = _groups(driver, job_id)
        ok = len(groups) == count and all(pg["state"] == "REMOVED" for pg in groups)
        return groups if ok else None

    return wait_for(done, timeout=15, what=f"{count} removed placement groups of {job_id}")


def test_nodes_find_the_main_node_over_tcp_on_distinct_ray_nodes(own, batch, queue, driver, unique):
    jd = _definition(batch, unique, TALK, nodes=2)
    job_id = _submit(batch, queue, jd)
    job = wait_job(batch, job_id, timeout=90)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    main, child = _nodes(batch, job_id, 2)
    # the other node ends by itself, or is stopped when the main node ends first (AWS's rule)
    assert main["status"] == "SUCCEEDED" and child["status"] in ("SUCCEEDED", "FAILED")
    assert main["startedAt"] <= child["startedAt"]
    assert log_lines(own, main)[1:] == ["main 0 heard ['node1']", "bye"]
    assert log_lines(own, child)[1] == "sent to 127.0.0.1 from 1"
    assert _ray_node(own, main) != _ray_node(own, child)  # two Ray nodes
    listed = [
        n["jobId"]
        for status in ("SUCCEEDED", "FAILED")
        for n in batch.list_jobs(multiNodeJobId=job_id, jobStatus=status)["jobSummaryList"]
    ]
    assert sorted(listed) == [f"{job_id}#0", f"{job_id}#1"]
    (group,) = _removed(driver, job_id, 1)  # gone with the last node
    assert group["strategy"] == "STRICT_SPREAD"


def test_more_nodes_than_ray_nodes_share_them(own, batch, queue, driver, unique):
    """Three nodes, two Ray nodes with CPUs: SPREAD (two nodes of the job share one)."""
    jd = _definition(batch, unique, TALK, nodes=3)
    job_id = _submit(batch, queue, jd)
    job = wait_job(batch, job_id, timeout=90)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    nodes = _nodes(batch, job_id, 3)
    assert log_lines(own, nodes[0])[1] == "main 0 heard ['node1', 'node2']"
    assert len({_ray_node(own, n) for n in nodes}) == 2
    (group,) = _removed(driver, job_id, 1)
    assert group["strategy"] == "SPREAD"


def test_a_gang_the_cluster_cannot_place_fails_at_once(batch, queue, driver, unique):
    """3 × 0.6 vCPUs fit the cluster's 2 CPUs in sum, but no two fit one 1-CPU node."""
    jd = _definition(batch, unique, (["true"], ["true"]), nodes=3, vcpus="0.6")
    job_id = _submit(batch, queue, jd)
    job = wait_job(batch, job_id, timeout=60)
    assert job["status"] == "FAILED"
    reason = job["statusReason"]
    assert reason.startswith(
        "CannotStartContainerError: the Ray cluster cannot place all 3 nodes of the "
        "multi-node job (3 × 0.6 vCPUs, 64 MiB)"
    ), reason
    assert {n["status"] for n in _nodes(batch, job_id, 3)} == {"FAILED"}
    assert _groups(driver, job_id) == []  # never asked of Ray


def test_a_gang_waits_until_ray_can_place_it(own, batch, queue, driver, unique):
    """Something else holds one worker's CPU: the scheduler's count (2 vCPUs) lets a 2 × 1
    vCPU job start, Ray cannot place its group yet. It waits, STARTING (terminated there, it
    ends and its group goes), and runs once the room is free."""
    hold = driver.util.placement_group([{"CPU": 1}])
    driver.get(hold.ready(), timeout=30)
    jd = _definition(batch, unique, TALK, nodes=2, vcpus="1")
    try:
        first = _submit(batch, queue, jd)
        wait_job(batch, first, until={"STARTING"})
        time.sleep(PLACE_CHECK + 1)  # it was looked at again: still placeable
        assert _nodes(batch, first, 1)[0]["status"] == "STARTING"
        assert batch.describe_jobs(jobs=[first])["jobs"][0]["status"] == "STARTING"
        batch.terminate_job(jobId=first, reason="not now")
        job = wait_job(batch, first, timeout=30)
        assert job["status"] == "FAILED" and job["statusReason"] == "not now"
        _removed(driver, first, 1)
        second = _submit(batch, queue, jd)
        wait_job(batch, second, until={"STARTING"})
        time.sleep(1)
    finally:
        driver.util.remove_placement_group(hold)
    job = wait_job(batch, second, timeout=60)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert len({_ray_node(own, n) for n in _nodes(batch, second, 2)}) == 2


def test_the_job_ends_with_its_main_node(batch, queue, driver, unique):
    jd = _definition(batch, unique, (["sh", "-c", "exit 4"], ["sleep", "60"]), retries=2)
    job_id = _submit(batch, queue, jd)
    job = wait_job(batch, job_id, timeout=90)
    assert job["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [4, 4]  # retried whole
    child = _nodes(batch, job_id, 2)[1]
    assert child["status"] == "FAILED" and len(child["attempts"]) == 2
    _removed(driver, job_id, 2)  # one placement group per attempt, both gone


def test_terminate_stops_every_node(own, batch, queue, driver, unique):
    tree = ["sh", "-c", "sleep 300 & echo child=$!; echo main=$$; wait"]
    jd = _definition(batch, unique, (tree, tree))
    job_id = _submit(batch, queue, jd)
    wait_job(batch, f"{job_id}#1", until={"RUNNING"})

    def pids(node: dict[str, Any]) -> list[int] | None:
        node = batch.describe_jobs(jobs=[node["jobId"]])["jobs"][0]
        found = [int(x.split("=")[1]) for x in log_lines(own, node) if "=" in x]
        return found if len(found) == 2 else None

    running = [wait_for(lambda n=n: pids(n), what="pids") for n in _nodes(batch, job_id, 2)]
    assert not any(gone(p) for ps in running for p in ps)
    batch.terminate_job(jobId=job_id, reason="enough")
    job = wait_job(batch, job_id, timeout=60)
    assert job["status"] == "FAILED" and job["statusReason"] == "enough"
    assert {n["status"] for n in _nodes(batch, job_id, 2)} == {"FAILED"}
    wait_for(
        lambda: all(gone(p) for ps in running for p in ps),
        timeout=15,
        what="every node's processes to be gone",
    )
    _removed(driver, job_id, 1)


def test_a_crashed_supervisor_takes_its_gangs_along(own, batch, driver, unique):
    """The supervisor restarts empty: the gang's nodes are lost (the job fails, no retry
    strategy), their processes and their placement group are gone."""
    ce, queue = unique("mnpce"), unique("mnpq")
    ray_ce(batch, ce)
    make_queue(batch, queue, [ce])
    tree = ["sh", "-c", "echo pid=$$; exec sleep 300"]
    job_id = _submit(batch, queue, _definition(batch, unique, (tree, tree)))
    wait_job(batch, f"{job_id}#1", until={"RUNNING"})

    def pid(node: dict[str, Any]) -> int | None:
        node = batch.describe_jobs(jobs=[node["jobId"]])["jobs"][0]
        found = [int(x.split("=")[1]) for x in log_lines(own, node) if x.startswith("pid=")]
        return found[0] if found else None

    pids = [wait_for(lambda n=n: pid(n), what="a pid") for n in _nodes(batch, job_id, 2)]
    assert [g["state"] for g in _groups(driver, job_id)] == ["CREATED"]
    driver.kill(driver.get_actor(f"batchyard-ce-{ce}"), no_restart=False)
    job = wait_job(batch, job_id, timeout=60)
    assert job["status"] == "FAILED"
    assert "the Ray cluster no longer knows the job's task" in job["statusReason"]
    wait_for(lambda: all(gone(p) for p in pids), timeout=15, what="the nodes' processes to go")
    _removed(driver, job_id, 1)


def test_capacity_follows_nodes_joining_and_leaving(own, batch, ray_cluster, driver, unique):
    """A node joins: the compute environment shows its CPU after the recheck, and a 3-node
    job spreads over three distinct Ray nodes; the node leaves: the capacity goes back."""
    ce = unique("mnpce")
    ray_ce(batch, ce, max_vcpus=4)
    queue = unique("mnpq")
    make_queue(batch, queue, [ce])

    def capacity(text: str) -> str | None:
        reason = describe_ce(batch, ce)["statusReason"]
        return reason if text in reason else None

    assert capacity("3 nodes alive") and capacity("usable capacity 2 vCPUs")
    node = ray_cluster.add_worker()
    try:
        wait_for(
            lambda: capacity("4 nodes alive") and capacity("usable capacity 3 vCPUs"),
            timeout=RECHECK * 10,
            what="the compute environment to show the new node",
        )
        jd = _definition(batch, unique, TALK, nodes=3)
        job_id = _submit(batch, queue, jd)
        job = wait_job(batch, job_id, timeout=90)
        assert job["status"] == "SUCCEEDED", job.get("statusReason")
        assert len({_ray_node(own, n) for n in _nodes(batch, job_id, 3)}) == 3
        (group,) = _removed(driver, job_id, 1)
        assert group["strategy"] == "STRICT_SPREAD"
    finally:
        ray_cluster.remove(node)
    wait_for(
        lambda: capacity("3 nodes alive") and capacity("usable capacity 2 vCPUs"),
        timeout=RECHECK * 10,
        what="the compute environment to lose the node again",
    )


def _requested(driver: Any) -> list[dict[str, float]]:
    """What Ray's autoscaler was last asked for (request_resources)."""
    from ray.experimental.internal_kv import _internal_kv_get

    raw = _internal_kv_get("autoscaler_resource_request")
    return json.loads(raw) if raw else []


def test_desired_vcpus_follow_demand_to_the_autoscaler(batch, queue, driver, unique):
    from helpers import register

    jd = register(batch, unique, ["sleep", "6"], vcpus="1")
    job_id = batch.submit_job(jobName="busy", jobQueue=queue, jobDefinition=jd)["jobId"]
    wait_job(batch, job_id, until={"RUNNING"})
    wait_for(lambda: _requested(driver) == [{"CPU": 1}], timeout=20, what="a request of 1 CPU")
    assert wait_job(batch, job_id, timeout=30)["status"] == "SUCCEEDED"
    wait_for(lambda: _requested(driver) == [], timeout=20, what="the request to be withdrawn")


def test_a_deleted_compute_environment_takes_its_supervisor_along(batch, driver, unique):
    ce = unique("mnpgone")
    ray_ce(batch, ce)
    name = f"batchyard-ce-{ce}"
    assert driver.get_actor(name)

    def missing() -> bool:
        try:
            driver.get_actor(name)
        except ValueError:
            return True
        return False

    delete_ce(batch, ce)
    wait_for(missing, timeout=30, what="the supervisor actor to be removed")


def test_a_server_killed_under_a_running_gang_loses_nothing(own, queue, driver, unique):
    """Last in the module: it restarts the module's server."""
    batch = own.client("batch")
    jd = _definition(batch, unique, TALK, nodes=2)
    job_id = _submit(batch, queue, jd, linger="4")
    main = f"{job_id}#0"

    def heard() -> bool:
        node = batch.describe_jobs(jobs=[main])["jobs"][0]
        return node["status"] == "RUNNING" and "main 0 heard ['node1']" in log_lines(own, node)

    wait_for(heard, timeout=60, what="the main node to hear from the other")
    own.kill()
    own.start()
    batch = own.client("batch")
    job = wait_job(batch, job_id, timeout=60)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    node = batch.describe_jobs(jobs=[main])["jobs"][0]
    assert log_lines(own, node)[1:] == ["main 0 heard ['node1']", "bye"]
    assert [len(n["attempts"]) for n in _nodes(batch, job_id, 2)] == [1, 1]
    _removed(driver, job_id, 1)
