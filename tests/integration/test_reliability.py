"""Idempotent submission, concurrent clients, and two servers sharing one PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import register, setup_queue, wait_for, wait_job


def test_client_token_makes_submit_idempotent(batch, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"])
    token = uuid.uuid4().hex
    first = batch.submit_job(
        jobName="once", jobQueue=queue, jobDefinition=jd, tags={"batchyard:client-token": token}
    )
    again = batch.submit_job(
        jobName="once", jobQueue=queue, jobDefinition=jd, tags={"batchyard:client-token": token}
    )
    assert again["jobId"] == first["jobId"]
    other_name = batch.submit_job(
        jobName="twice", jobQueue=queue, jobDefinition=jd, tags={"batchyard:client-token": token}
    )
    assert other_name["jobId"] != first["jobId"]
    with ThreadPoolExecutor(8) as pool:
        token2 = uuid.uuid4().hex
        ids = set(
            pool.map(
                lambda _: batch.submit_job(
                    jobName="race",
                    jobQueue=queue,
                    jobDefinition=jd,
                    tags={"batchyard:client-token": token2},
                )["jobId"],
                range(16),
            )
        )
    assert len(ids) == 1
    listed = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["race"]}])[
        "jobSummaryList"
    ]
    assert [j["jobId"] for j in listed] == list(ids)


def test_boto3_retries_do_not_duplicate(server, unique):
    """A client that times out and retries (boto3's own retries) with the token set."""
    batch = server.client(read_timeout=0.001, retries={"max_attempts": 3, "mode": "standard"})
    admin = server.client()
    queue = setup_queue(admin, unique)
    jd = register(admin, unique, ["true"])
    from botocore.exceptions import ReadTimeoutError

    token = uuid.uuid4().hex
    # every try may time out on the client side; the server may have taken some of them
    with contextlib.suppress(ReadTimeoutError):
        batch.submit_job(
            jobName="flaky",
            jobQueue=queue,
            jobDefinition=jd,
            tags={"batchyard:client-token": token},
        )
    listed = wait_for(
        lambda: admin.list_jobs(
            jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["flaky"]}]
        )["jobSummaryList"],
        what="the job",
    )
    time.sleep(0.5)
    listed = admin.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["flaky"]}])[
        "jobSummaryList"
    ]
    assert len(listed) == 1


def test_sixteen_clients_at_once(server, unique):
    admin = server.client()
    queue = setup_queue(admin, unique, max_vcpus=2)
    jd = register(admin, unique, ["sleep", "0.2"], vcpus="0.25")
    clients = [server.client() for _ in range(16)]
    submitted: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        c = clients[i]
        try:
            for n in range(10):
                job = c.submit_job(jobName=f"c{i}-{n}", jobQueue=queue, jobDefinition=jd)["jobId"]
                with lock:
                    submitted.append(job)
                c.describe_jobs(jobs=[job])
                if n % 3 == 0:
                    c.cancel_job(jobId=job, reason="by client")
                if n % 5 == 0:
                    c.terminate_job(jobId=job, reason="by client")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert len(submitted) == len(set(submitted)) == 160
    final = {}
    for i in range(0, 160, 100):
        for j in admin.describe_jobs(jobs=submitted[i : i + 100])["jobs"]:
            final[j["jobId"]] = j
    for job_id in submitted:
        final[job_id] = wait_job(admin, job_id, timeout=120)
    for job in final.values():
        assert job["status"] in ("SUCCEEDED", "FAILED")
        if job["isCancelled"] or job["isTerminated"]:
            assert job["status"] == "FAILED"
        else:
            assert job["status"] == "SUCCEEDED"
            assert len(job["attempts"]) == 1


def test_dependents_submitted_as_their_dependency_ends_are_not_left_waiting(batch, unique):
    """A dependency may end between SubmitJob's read of its status and its commit (on
    PostgreSQL the scheduler's pass does not wait for that commit): the dependent must still
    be released at once, not by the once-a-minute sweep for missed wake-ups."""
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"], vcpus="0.25")
    dependents = []
    for i in range(150):
        first = batch.submit_job(jobName=f"a{i}", jobQueue=queue, jobDefinition=jd)["jobId"]
        time.sleep(0.002)  # about when `true` ends
        dependents.append(
            batch.submit_job(
                jobName=f"b{i}", jobQueue=queue, jobDefinition=jd, dependsOn=[{"jobId": first}]
            )["jobId"]
        )
    deadline = time.monotonic() + 30  # half the sweep's interval
    for job_id in dependents:
        job = wait_job(batch, job_id, timeout=max(1.0, deadline - time.monotonic()))
        assert job["status"] == "SUCCEEDED", (job_id, job.get("statusReason"))


def test_two_servers_one_leader(store, database_url, tmp_path_factory, unique):
    if store != "postgresql":
        pytest.skip("several servers share a database only on PostgreSQL")
    from support.server import ServerProcess

    url = database_url()
    from support.server import FAST

    a = ServerProcess(tmp_path_factory.mktemp("a"), url, **FAST).start()
    # servers that share a database share its master key (docs/security.md)
    key = str(a.data_dir / "master.key")
    b = ServerProcess(tmp_path_factory.mktemp("b"), url, **FAST, master_key_file=key).start()
    try:
        leader, follower = (a, b) if "now leads" in a.log() else (b, a)
        assert "now leads" in leader.log() and "another server leads" in follower.log()
        bf = follower.client()
        queue = setup_queue(bf, unique)  # resources created through the follower
        long = register(
            bf, unique, ["sh", "-c", "sleep 2; echo $AWS_BATCH_JOB_ID >> marks"], vcpus="0.25"
        )
        quick = register(bf, unique, ["true"], vcpus="0.25")
        running = bf.submit_job(jobName="long", jobQueue=queue, jobDefinition=long)["jobId"]
        wait_job(bf, running, until={"RUNNING"})
        ids = [
            bf.submit_job(jobName=f"q{i}", jobQueue=queue, jobDefinition=quick)["jobId"]
            for i in range(20)
        ]
        for j in ids[:5]:
            wait_job(bf, j)
        leader.kill()  # kill -9: the follower must take over, adopt the running job
        wait_for(
            lambda: "took over" in follower.log(), timeout=30, what="the follower to take over"
        )
        more = [
            bf.submit_job(jobName=f"m{i}", jobQueue=queue, jobDefinition=quick)["jobId"]
            for i in range(10)
        ]
        for j in [running, *ids, *more]:
            job = wait_job(bf, j, timeout=60)
            assert job["status"] == "SUCCEEDED", (j, job.get("statusReason"))
            assert len(job["attempts"]) == 1, job["attempts"]
    finally:
        a.shutdown()
        b.shutdown()
