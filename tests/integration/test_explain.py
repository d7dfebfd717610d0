"""batchyard's own endpoints: explain, history, status."""

from __future__ import annotations

from helpers import make_ce, make_queue, register, setup_queue, wait_for, wait_job


def explain(server, job_id: str) -> dict:
    with server.http() as http:
        r = http.get(f"/batchyard/v1/jobs/{job_id}/explain")
        assert r.status_code == 200, r.text
        return r.json()


def test_explain_each_waiting_reason(batch, server, unique):
    ce = unique("ce")
    make_ce(batch, ce, max_vcpus=1)
    queue = unique("q")
    make_queue(batch, queue, [ce])
    sleeper = register(batch, unique, ["sleep", "30"], vcpus="1")
    huge = register(batch, unique, ["true"], vcpus="8")
    running = batch.submit_job(jobName="r", jobQueue=queue, jobDefinition=sleeper)["jobId"]
    wait_job(batch, running, until={"RUNNING"})
    waiting = batch.submit_job(jobName="w", jobQueue=queue, jobDefinition=sleeper)["jobId"]
    stuck = batch.submit_job(jobName="s", jobQueue=queue, jobDefinition=huge)["jobId"]
    after = batch.submit_job(
        jobName="a", jobQueue=queue, jobDefinition=sleeper, dependsOn=[{"jobId": waiting}]
    )["jobId"]

    e = explain(server, running)
    assert e["summary"].startswith("RUNNING on " + ce)
    e = explain(server, waiting)
    assert e["summary"].startswith("RUNNABLE, waiting for capacity")
    assert e["queue"]["position"] == 1
    (fit,) = e["computeEnvironments"]
    assert fit["canEverFit"] and not fit["fitsNow"] and fit["inUse"]["vcpus"] == 1
    e = explain(server, stuck)
    assert e["summary"].startswith("RUNNABLE and stuck")
    assert "8 vCPU" in e["summary"] and "requested 8" in e["computeEnvironments"][0]["note"]
    assert e["queue"]["aheadCount"] == 1 and e["queue"]["ahead"] == [waiting]
    e = explain(server, after)
    assert e["summary"].startswith("PENDING: waiting for 1 of 1 dependencies")
    assert e["dependencies"][0]["jobId"] == waiting

    batch.update_compute_environment(computeEnvironment=ce, state="DISABLED")
    wait_for(lambda: "DISABLED" in explain(server, waiting)["summary"], what="DISABLED in explain")
    batch.terminate_jobs(jobs=[running, waiting, stuck, after], reason="cleanup")
    e = explain(server, wait_job(batch, after)["jobId"])
    assert e["summary"].startswith("FAILED")


def test_explain_failure_and_history(batch, server, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", "exit 5"])
    job_id = batch.submit_job(
        jobName="f", jobQueue=queue, jobDefinition=jd, retryStrategy={"attempts": 2}
    )["jobId"]
    wait_job(batch, job_id)
    e = explain(server, job_id)
    assert e["summary"].startswith("FAILED after 2 attempt(s)")
    assert "code 5" in e["summary"]
    assert any("retrying" in d for d in e["details"])
    with server.http() as http:
        history = http.get(f"/batchyard/v1/jobs/{job_id}/history").json()["transitions"]
    steps = [(h["from"], h["to"]) for h in history]
    assert steps[0] == (None, "SUBMITTED")
    assert ("RUNNING", "RUNNABLE") in steps and steps[-1] == ("RUNNING", "FAILED")
    with server.http() as http:
        r = http.get("/batchyard/v1/jobs/nope/explain")
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] == "ClientException"


def test_status(batch, server, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"])
    wait_job(batch, batch.submit_job(jobName="x", jobQueue=queue, jobDefinition=jd)["jobId"])
    with server.http() as http:
        status = http.get("/batchyard/v1/status").json()
    (q,) = [q for q in status["queues"] if q["name"] == queue]
    assert q["jobs"]["SUCCEEDED"] == 1
    ce = q["computeEnvironments"][0]
    (c,) = [c for c in status["computeEnvironments"] if c["name"] == ce]
    assert c["capacityVcpus"] == 2 and c["vcpusInUse"] == 0
