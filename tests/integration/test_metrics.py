"""GET /metrics: scraped and parsed with prometheus-client's own parser, checked against
activity the test itself caused."""

from __future__ import annotations

from helpers import client_error, register, setup_queue, wait_for, wait_job
from prometheus_client.parser import text_string_to_metric_families


def scrape(server) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    with server.http() as http:
        r = http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name: str, **labels) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def test_metrics_follow_known_activity(batch, server, unique):
    queue = setup_queue(batch, unique, max_vcpus=2)
    ok = register(batch, unique, ["true"])
    bad = register(batch, unique, ["sh", "-c", "exit 4"])
    before = scrape(server)
    ids = [
        batch.submit_job(jobName=f"m{i}", jobQueue=queue, jobDefinition=ok)["jobId"]
        for i in range(3)
    ]
    ids.append(batch.submit_job(jobName="m-bad", jobQueue=queue, jobDefinition=bad)["jobId"])
    array = batch.submit_job(
        jobName="m-arr", jobQueue=queue, jobDefinition=ok, arrayProperties={"size": 3}
    )["jobId"]
    for j in [*ids, array]:
        wait_job(batch, j)
    client_error(batch.submit_job, jobName="x", jobQueue="no-such-queue", jobDefinition=ok)

    after = wait_for(
        lambda: (
            s
            if value(s := scrape(server), "batchyard_jobs", queue=queue, status="SUCCEEDED") == 6
            else None
        ),
        what="the jobs gauge",
    )
    # jobs by queue and status, from the store: 3 + 3 array children succeeded, 1 failed
    assert value(after, "batchyard_jobs", queue=queue, status="FAILED") == 1
    assert value(after, "batchyard_jobs", queue=queue, status="RUNNABLE") == 0
    assert (
        value(after, "batchyard_job_queue_info", queue=queue, state="ENABLED", status="VALID") == 1
    )
    # submissions (an array counts once) and transitions, from the outbox
    assert value(after, "batchyard_job_submissions_total", queue=queue) == 5
    t = "batchyard_job_transitions_total"
    assert value(after, t, queue=queue, from_status="RUNNING", to_status="SUCCEEDED") == 6
    assert value(after, t, queue=queue, from_status="RUNNING", to_status="FAILED") == 1
    assert value(after, t, queue=queue, from_status="RUNNABLE", to_status="STARTING") == 7
    assert value(after, t, queue=queue, from_status="PENDING", to_status="SUCCEEDED") == 1
    # one queue wait, one dispatch and one run per attempt
    assert value(after, "batchyard_job_queue_wait_seconds_count", queue=queue) == 7
    assert value(after, "batchyard_job_dispatch_latency_seconds_count", queue=queue) == 7
    assert value(after, "batchyard_job_run_seconds_count", queue=queue, to_status="SUCCEEDED") == 6
    assert value(after, "batchyard_job_queue_wait_seconds_bucket", queue=queue, le="+Inf") == 7
    assert value(after, "batchyard_job_dispatch_latency_seconds_sum", queue=queue) < 7 * 30
    # API requests by operation, status and error code
    ops = "batchyard_api_requests_total"
    grew = total(after, ops, operation="SubmitJob", status="200") - total(
        before, ops, operation="SubmitJob", status="200"
    )
    assert grew == 5
    assert total(after, ops, operation="SubmitJob", status="400", error="ClientException") >= 1
    assert (
        total(after, "batchyard_api_request_duration_seconds_count", operation="DescribeJobs") > 0
    )
    # the compute environment, the scheduler and the store
    order = batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["computeEnvironmentOrder"]
    ce = order[0]["computeEnvironment"].rsplit("/", 1)[-1]
    assert value(after, "batchyard_compute_environment_vcpus_max", compute_environment=ce) == 2
    assert value(after, "batchyard_compute_environment_vcpus_in_use", compute_environment=ce) == 0
    assert (
        value(after, "batchyard_compute_environment_memory_bytes_capacity", compute_environment=ce)
        > 0
    )
    assert total(after, "batchyard_scheduler_pass_duration_seconds_count", **{"pass": "jobs"}) > 0
    assert total(after, "batchyard_store_transaction_duration_seconds_count", kind="write") > 0
    assert total(after, "batchyard_store_statement_duration_seconds_count", kind="read") > 0
    assert value(after, "batchyard_scheduler_leader") == 1
    assert total(after, "batchyard_build_info") == 1


def test_running_jobs_show_in_use(batch, server, unique):
    queue = setup_queue(batch, unique, max_vcpus=2)
    jd = register(batch, unique, ["sleep", "20"], vcpus="1", memory="256")
    job = batch.submit_job(jobName="hold", jobQueue=queue, jobDefinition=jd)["jobId"]
    wait_job(batch, job, until={"RUNNING"})
    samples = scrape(server)
    assert value(samples, "batchyard_jobs", queue=queue, status="RUNNING") == 1
    in_use = [
        v
        for (n, ls), v in samples.items()
        if n == "batchyard_compute_environment_vcpus_in_use" and v >= 1
    ]
    assert in_use, "a compute environment shows the running job's vCPU"
    assert total(samples, "batchyard_compute_environment_memory_bytes_in_use") >= 256 * 2**20
    batch.terminate_job(jobId=job, reason="done")
    wait_job(batch, job)
