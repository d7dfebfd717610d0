"""kill -9 of the server at random points of a 500-job run, several rounds: every accepted
job ends in the right state and every successful job's side effect happened exactly once."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter

from botocore.exceptions import BotoCoreError, ClientError
from helpers import register, setup_queue, wait_job

SEED = 20261125
ROUNDS = 5


def _submit_with_retries(server, holder, **kwargs) -> str:
    """Submit through whatever server is up now; the client token makes retries safe."""
    kwargs.setdefault("tags", {})["batchyard:client-token"] = uuid.uuid4().hex
    deadline = time.monotonic() + 120
    while True:
        try:
            return holder["client"].submit_job(**kwargs)["jobId"]
        except (BotoCoreError, ClientError) as e:
            if (
                isinstance(e, ClientError)
                and e.response["ResponseMetadata"]["HTTPStatusCode"] < 500
            ):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_kill9_rounds(new_server, unique, tmp_path):
    rng = random.Random(SEED)
    server = new_server()
    holder = {"client": server.client(connect_timeout=1, read_timeout=10)}
    batch = holder["client"]
    queue = setup_queue(batch, unique, max_vcpus=2)
    marks = tmp_path / "marks"
    body = (
        'if [ "$FLAKY" = 1 ] && [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ]; then exit 3; fi; '
        'sleep 0.0$((RANDOM % 5)); echo "$AWS_BATCH_JOB_ID" >> "$1"'
    )
    jd = register(batch, unique, ["bash", "-c", body, "bash", str(marks)], vcpus="0.25")
    expected_attempts: dict[str, int] = {}
    arrays: dict[str, int] = {}
    accepted: list[str] = []
    stop = threading.Event()

    def killer() -> None:
        for _ in range(ROUNDS):
            time.sleep(rng.uniform(0.3, 1.5))
            server.kill()
            server.start()
            holder["client"] = server.client(connect_timeout=1, read_timeout=10)
            if stop.is_set():
                break

    chaos = threading.Thread(target=killer)
    chaos.start()
    try:
        previous: list[str] = []
        for i in range(300):
            kind = rng.random()
            if kind < 0.05:
                size = rng.choice([10, 20])
                deps = [
                    {"jobId": a, "type": "N_TO_N"}
                    for a, s in list(arrays.items())[-1:]
                    if s == size and rng.random() < 0.5
                ]
                job = _submit_with_retries(
                    server,
                    holder,
                    jobName=f"arr{i}",
                    jobQueue=queue,
                    jobDefinition=jd,
                    arrayProperties={"size": size},
                    dependsOn=deps,
                )
                arrays[job] = size
                for k in range(size):
                    expected_attempts[f"{job}:{k}"] = 1
                accepted.append(job)
                continue
            flaky = kind < 0.25
            deps = [
                {"jobId": d}
                for d in rng.sample(previous, k=min(len(previous), rng.choice([0, 0, 1, 2])))
            ]
            job = _submit_with_retries(
                server,
                holder,
                jobName=f"j{i}",
                jobQueue=queue,
                jobDefinition=jd,
                dependsOn=deps,
                containerOverrides={
                    "environment": [{"name": "FLAKY", "value": "1" if flaky else "0"}]
                },
                retryStrategy={"attempts": 2},
            )
            expected_attempts[job] = 2 if flaky else 1
            accepted.append(job)
            previous = ([*previous, job])[-20:]
    finally:
        stop.set()
        chaos.join()
    assert len(expected_attempts) >= 300
    client = holder["client"]
    for job_id in accepted:
        job = wait_job(client, job_id, timeout=180)
        assert job["status"] == "SUCCEEDED", (job_id, job.get("statusReason"))
    for i in range(0, len(expected_attempts), 100):
        ids = list(expected_attempts)[i : i + 100]
        for job in client.describe_jobs(jobs=ids)["jobs"]:
            assert job["status"] == "SUCCEEDED", (job["jobId"], job.get("statusReason"))
            assert len(job["attempts"]) == expected_attempts[job["jobId"]], job["attempts"]
    counts = Counter(marks.read_text().split())
    assert set(counts) == set(expected_attempts)
    assert set(counts.values()) == {1}, [k for k, v in counts.items() if v != 1][:5]
