"""Ray jobs through failures: a node lost under a running job, the batchyard server killed
while Ray jobs run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from helpers import log_lines, make_queue, register, wait_for, wait_job
from raycluster import ray_ce, ray_server_settings
from test_ray_jobs import gone

from support.server import ServerProcess

pytestmark = pytest.mark.ray


def _fields(server, batch, job_id: str, attempt: int, keys: set[str]) -> dict[str, str] | None:
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    if len(job.get("attempts") or []) < attempt + 1 and job["status"] != "RUNNING":
        return None
    try:
        lines = log_lines(server, job, attempt)
    except (IndexError, KeyError):
        return None
    found = dict(line.split("=", 1) for line in lines if "=" in line)
    return found if keys <= set(found) else None


def test_losing_a_node_fails_the_attempt_and_the_retry_runs_elsewhere(
    batch, ray_server, ray_queue, ray_cluster, unique
):
    jd = register(
        batch,
        unique,
        [
            "sh",
            "-c",
            'echo "node=$BATCHYARD_RAY_NODE_ID"; echo "pid=$$"; '
            'if [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ]; then sleep 300; fi; echo finished',
        ],
        vcpus="1",
        retryStrategy={"attempts": 2},
    )
    job_id = batch.submit_job(jobName="lost", jobQueue=ray_queue, jobDefinition=jd)["jobId"]
    wait_job(batch, job_id, until={"RUNNING"})
    first = wait_for(
        lambda: _fields(ray_server, batch, job_id, -1, {"node", "pid"}),
        timeout=30,
        what="the first attempt's node in its log",
    )
    try:
        ray_cluster.kill(first["node"])
        job = wait_job(batch, job_id, timeout=120)
    finally:
        ray_cluster.add_worker()  # the next tests get their two nodes back
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    lost, retry = job["attempts"]
    assert "the Ray node running the job was lost" in lost["statusReason"], lost["statusReason"]
    assert lost["statusReason"].startswith("Host EC2 (instance ray-node-")  # as AWS words it
    second = dict(line.split("=", 1) for line in log_lines(ray_server, job) if "=" in line)
    assert second["node"] != first["node"]
    assert retry["container"]["exitCode"] == 0
    # nothing of the first attempt survived its node
    wait_for(lambda: gone(int(first["pid"])), timeout=15, what="the lost attempt's process")


def test_a_server_killed_while_ray_jobs_run_loses_none_of_them(
    ray_cluster, tmp_path_factory, unique
):
    namespace = unique("ns")
    server = ServerProcess(
        tmp_path_factory.mktemp("ray-restart"),
        **ray_server_settings(ray_cluster),
        ray_namespace=namespace,
    )
    server.start()
    try:
        batch = server.client()
        ce = unique("rayce")
        ray_ce(batch, ce)
        queue = unique("rayq")
        make_queue(batch, queue, [ce])
        jd = register(
            batch,
            unique,
            ["sh", "-c", "echo before; sleep 3; echo after; exit 4"],
            vcpus="1",
        )
        running = [
            batch.submit_job(jobName=f"r{i}", jobQueue=queue, jobDefinition=jd)["jobId"]
            for i in range(2)
        ]
        for job_id in running:
            wait_job(batch, job_id, until={"RUNNING"})
        queued = batch.submit_job(jobName="q", jobQueue=queue, jobDefinition=jd)["jobId"]
        server.kill()
        # the server's Ray bridge goes with it: the jobs belong to the supervisor on the cluster
        wait_for(lambda: not _bridges(namespace), timeout=15, what="the bridge to exit")
        server.start()
        batch = server.client()
        for job_id in [*running, queued]:
            job = wait_job(batch, job_id, timeout=60)
            assert job["status"] == "FAILED", job.get("statusReason")
            assert [a["container"]["exitCode"] for a in job["attempts"]] == [4]
            assert log_lines(server, job) == ["before", "after"]
        assert _bridges(namespace)  # the restarted server has its own
    finally:
        server.shutdown()
    wait_for(lambda: not _bridges(namespace), timeout=15, what="the bridge to exit")


def _own_server(ray_cluster, tmp_path_factory, namespace: str) -> ServerProcess:
    server = ServerProcess(
        tmp_path_factory.mktemp("ray-own"),
        **ray_server_settings(ray_cluster),
        ray_namespace=namespace,
    )
    return server.start()


def _queue(batch, unique) -> tuple[str, str]:
    ce = unique("rayce")
    ray_ce(batch, ce)
    queue = unique("rayq")
    make_queue(batch, queue, [ce])
    return ce, queue


def test_a_lost_bridge_is_replaced_and_its_jobs_still_end_well(
    ray_cluster, tmp_path_factory, unique
):
    namespace = unique("ns")
    server = _own_server(ray_cluster, tmp_path_factory, namespace)
    try:
        batch = server.client()
        _, queue = _queue(batch, unique)
        jd = register(batch, unique, ["sh", "-c", "echo before; sleep 2; echo after"])
        job_id = batch.submit_job(jobName="b", jobQueue=queue, jobDefinition=jd)["jobId"]
        wait_job(batch, job_id, until={"RUNNING"})
        (bridge,) = _bridges(namespace)
        os.kill(bridge, signal.SIGKILL)
        job = wait_job(batch, job_id, timeout=60)
        assert job["status"] == "SUCCEEDED", job.get("statusReason")
        assert log_lines(server, job) == ["before", "after"]
        assert _bridges(namespace) and bridge not in _bridges(namespace)
    finally:
        server.shutdown()


def test_a_crashed_supervisor_loses_its_attempts_which_are_retried(
    ray_cluster, tmp_path_factory, unique
):
    import ray

    namespace = unique("ns")
    server = _own_server(ray_cluster, tmp_path_factory, namespace)
    try:
        batch = server.client()
        ce, queue = _queue(batch, unique)
        jd = register(
            batch,
            unique,
            ["sh", "-c", 'echo "pid=$$"; [ "$AWS_BATCH_JOB_ATTEMPT" -ge 2 ] || sleep 300'],
            retryStrategy={"attempts": 2},
        )
        job_id = batch.submit_job(jobName="s", jobQueue=queue, jobDefinition=jd)["jobId"]
        wait_job(batch, job_id, until={"RUNNING"})
        first = wait_for(
            lambda: _fields(server, batch, job_id, -1, {"pid"}), timeout=30, what="the pid"
        )
        ray.init(address=ray_cluster.address, namespace=namespace, log_to_driver=False)
        try:
            ray.kill(ray.get_actor(f"batchyard-ce-{ce}"), no_restart=False)
        finally:
            ray.shutdown()
        job = wait_job(batch, job_id, timeout=60)
        assert job["status"] == "SUCCEEDED", job.get("statusReason")
        lost = job["attempts"][0]["statusReason"]
        assert "the Ray cluster no longer knows the job's task" in lost, lost
        wait_for(lambda: gone(int(first["pid"])), timeout=15, what="the lost attempt's process")
    finally:
        server.shutdown()


def _bridges(namespace: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"batchyard.providers.ray.bridge" in argv and namespace.encode() in argv:
            found.append(int(entry.name))
    return [p for p in found if p != os.getpid() and not gone(p)]
