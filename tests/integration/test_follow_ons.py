"""Short array children queue on the host behind their running siblings (follow-ons), so
that they start back to back. The reservation discipline, TerminateJob and a crash of the
server must not notice the difference."""

from __future__ import annotations

from helpers import assert_children_ran_once, register, setup_queue, wait_for, wait_job

QUEUED = "Queued on the host behind a running sibling"


def _children(batch, parent: str, status: str) -> list[dict]:
    out, token = [], None
    while True:
        kw = {"nextToken": token} if token else {}
        page = batch.list_jobs(arrayJobId=parent, jobStatus=status, maxResults=1000, **kw)
        out += page["jobSummaryList"]
        token = page.get("nextToken")
        if not token:
            return out


def _queued_children(batch, parent: str) -> list[dict]:
    return [
        j
        for j in _children(batch, parent, "STARTING")
        if (j.get("statusReason") or "").startswith(QUEUED)
    ]


def _array_of_true(batch, unique, size: int, max_vcpus: int) -> str:
    """An array of `true` children of 1 vCPU, run to its end: its id."""
    queue = setup_queue(batch, unique, max_vcpus=max_vcpus)
    jd = register(batch, unique, ["true"], vcpus="1")
    parent = batch.submit_job(
        jobName="short", jobQueue=queue, jobDefinition=jd, arrayProperties={"size": size}
    )["jobId"]
    assert wait_job(batch, parent, timeout=120)["status"] == "SUCCEEDED"
    return parent


def test_short_children_never_exceed_the_reservations(batch, unique):
    parent = _array_of_true(batch, unique, 300, max_vcpus=2)
    done = _children(batch, parent, "SUCCEEDED")
    assert len(done) == 300
    # at no moment more than 2 children (of 1 vCPU, on 2 vCPUs) ran at once
    events = sorted(
        [(j["startedAt"], 1) for j in done] + [(j["stoppedAt"], -1) for j in done],
        key=lambda e: (e[0], e[1]),  # an end and a start in the same ms: the end first
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= 2
    full = batch.describe_jobs(jobs=[f"{parent}:{i}" for i in range(0, 300, 3)])["jobs"]
    assert all(len(j["attempts"]) == 1 for j in full)
    assert all(j["statusReason"] == "Essential container in task exited" for j in full)


def test_siblings_queue_behind_children_placed_in_the_same_pass(batch, server, unique):
    """A child of `true` ends before the scheduler's next pass: unless its siblings queue
    behind it in the pass that places it, no line ever forms and every child waits for a
    pass of its own."""
    parent = _array_of_true(batch, unique, 40, max_vcpus=1)
    reasons = []
    with server.http() as http:
        for i in range(40):
            history = http.get(f"/batchyard/v1/jobs/{parent}:{i}/history").json()
            reasons += [h.get("reason") or "" for h in history["transitions"]]
            # a child that started and ended between two passes is written once, and its
            # history still shows each step, in order
            steps = history["transitions"][-3:]
            assert [h["to"] for h in steps] == ["STARTING", "RUNNING", "SUCCEEDED"]
            assert [h["from"] for h in steps[1:]] == ["STARTING", "RUNNING"]
            assert steps[0]["at"] <= steps[1]["at"] <= steps[2]["at"]
    assert sum(r.startswith(QUEUED) for r in reasons) >= 20
    for job in batch.describe_jobs(jobs=[f"{parent}:{i}" for i in range(40)])["jobs"]:
        (attempt,) = job["attempts"]
        assert attempt["startedAt"] == job["startedAt"] <= job["stoppedAt"]
        assert attempt["stoppedAt"] == job["stoppedAt"]


def test_terminating_an_array_with_queued_children(batch, unique):
    queue = setup_queue(batch, unique, max_vcpus=2)
    jd = register(batch, unique, ["sleep", "0.02"], vcpus="1")
    parent = batch.submit_job(
        jobName="stop-me", jobQueue=queue, jobDefinition=jd, arrayProperties={"size": 2000}
    )["jobId"]
    queued = wait_for(lambda: _queued_children(batch, parent), timeout=60, what="a queued child")
    child = batch.describe_jobs(jobs=[queued[0]["jobId"]])["jobs"][0]
    assert child["status"] in ("STARTING", "RUNNING", "SUCCEEDED")
    batch.terminate_job(jobId=parent, reason="enough")
    assert wait_job(batch, parent, timeout=60)["status"] == "FAILED"
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"):
        assert _children(batch, parent, status) == []
    failed = _children(batch, parent, "FAILED")
    assert failed and all("enough" in (j.get("statusReason") or "") for j in failed)
    # the reservations are free again
    jd2 = register(batch, unique, ["true"], vcpus="2")
    job = batch.submit_job(jobName="after", jobQueue=queue, jobDefinition=jd2)["jobId"]
    assert wait_job(batch, job, timeout=30)["status"] == "SUCCEEDED"


def test_queued_children_survive_a_crash_of_the_server(new_server, unique):
    server = new_server()
    batch = server.client()
    queue = setup_queue(batch, unique, max_vcpus=2)
    jd = register(batch, unique, ["sleep", "0.01"], vcpus="1")
    parent = batch.submit_job(
        jobName="crash", jobQueue=queue, jobDefinition=jd, arrayProperties={"size": 600}
    )["jobId"]
    wait_for(lambda: _queued_children(batch, parent), timeout=60, what="a queued child")
    server.kill()  # kill -9: the agent keeps the queue and runs it
    server.start()
    batch = server.client()
    assert wait_job(batch, parent, timeout=120)["status"] == "SUCCEEDED"
    assert_children_ran_once(batch, parent, 600)
