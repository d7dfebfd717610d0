"""Dependents start only after everything they depend on SUCCEEDED, also while the host is
busy: the dependency patterns (N_TO_N, SEQUENTIAL, an array's dependent, a chain, a job's
dependent array) run round after round beside processes that keep every CPU busy, each
dependent submitted while what it waits for still runs (as examples/etl-pipeline does).

Every job checks that what it depends on left its file (so a dependent released early
fails), and the server's own record says the same: a dependent's startedAt is not before
its dependency's stoppedAt, and its history reaches RUNNABLE only after its dependency's
reached SUCCEEDED."""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import register, setup_queue, wait_job

from support.identity import needs_isolation

ROUNDS = 4
SIZE = 4
BURNERS = 2  # busy loops beside the jobs: the host's CPUs are wanted by others too


@pytest.fixture
def busy_host() -> Iterator[None]:
    burners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(BURNERS)]
    try:
        yield
    finally:
        for p in burners:
            p.kill()
            p.wait()


def _history(http: Any, job_id: str) -> list[dict[str, Any]]:
    return http.get(f"/batchyard/v1/jobs/{job_id}/history").json()["transitions"]


def _first(history: list[dict[str, Any]], status: str) -> int:
    return next(h["at"] for h in history if h["to"] == status)


def _submit_round(batch: Any, queue: str, jds: dict[str, str], where: str) -> dict[str, Any]:
    """One round of every pattern; returns the jobs and who waits for whom."""

    def submit(name: str, jd: str, size: int | None = None, deps: Any = ()) -> str:
        extra: dict[str, Any] = {"parameters": {"dir": where, "name": name}}
        if size:
            extra["arrayProperties"] = {"size": size}
        if deps:
            extra["dependsOn"] = list(deps)
        return batch.submit_job(jobName=name, jobQueue=queue, jobDefinition=jds[name], **extra)[
            "jobId"
        ]

    extract = submit("extract", jds["extract"], SIZE)
    transform = submit("transform", jds["transform"], SIZE, [{"jobId": extract, "type": "N_TO_N"}])
    load = submit("load", jds["load"], None, [{"jobId": transform}])
    steps = submit("steps", jds["steps"], SIZE, [{"type": "SEQUENTIAL"}])
    c1 = submit("c1", jds["c1"])
    c2 = submit("c2", jds["c2"], None, [{"jobId": c1}])
    c3 = submit("c3", jds["c3"], None, [{"jobId": c2}])
    fan = submit("fan", jds["fan"], SIZE, [{"jobId": c3}])
    pairs = [(f"{transform}:{i}", f"{extract}:{i}") for i in range(SIZE)]
    pairs += [(load, f"{transform}:{i}") for i in range(SIZE)] + [(load, transform)]
    pairs += [(f"{steps}:{i}", f"{steps}:{i - 1}") for i in range(1, SIZE)]
    pairs += [(c2, c1), (c3, c2)] + [(f"{fan}:{i}", c3) for i in range(SIZE)]
    return {"roots": [load, steps, fan], "pairs": pairs}


def _definitions(batch: Any, unique: Any) -> dict[str, str]:
    """Each job checks what it depends on left its mark, then leaves its own."""
    mark = 'echo "$AWS_BATCH_JOB_ID" > "$1/$2${AWS_BATCH_JOB_ARRAY_INDEX:-}"'
    scripts = {
        "extract": mark,
        "transform": f'test -s "$1/extract$AWS_BATCH_JOB_ARRAY_INDEX" && {mark}',
        "load": " && ".join(f'test -s "$1/transform{i}"' for i in range(SIZE)) + f" && {mark}",
        "steps": 'i=$AWS_BATCH_JOB_ARRAY_INDEX; { [ "$i" = 0 ] || test -s "$1/steps$((i - 1))"; }'
        f" && {mark}",
        "c1": mark,
        "c2": f'test -s "$1/c1" && {mark}',
        "c3": f'test -s "$1/c2" && {mark}',
        "fan": f'test -s "$1/c3" && {mark}',
    }
    return {
        name: register(
            batch,
            unique,
            ["sh", "-c", script, "sh", "Ref::dir", "Ref::name"],
            vcpus="0.25",
            parameters={"dir": "/nonexistent", "name": name},
        )
        for name, script in scripts.items()
    }


def _run_rounds(server: Any, where: Path, unique: Any) -> None:
    batch = server.client()
    queue = setup_queue(batch, unique, max_vcpus=2)
    jds = _definitions(batch, unique)
    rounds = []
    for n in range(ROUNDS):
        here = where / f"round-{n}"
        here.mkdir()
        here.chmod(where.stat().st_mode & 0o7777)  # whoever the jobs run as may write there
        rounds.append(_submit_round(batch, queue, jds, str(here)))
    with server.http() as http:
        for r in rounds:
            for root in r["roots"]:
                job = wait_job(batch, root, timeout=180)
                assert job["status"] == "SUCCEEDED", (root, job.get("statusReason"))
            ids = sorted({j for pair in r["pairs"] for j in pair})
            jobs = {}
            for i in range(0, len(ids), 100):
                found = batch.describe_jobs(jobs=ids[i : i + 100])["jobs"]
                jobs.update({j["jobId"]: j for j in found})
            histories = {j: _history(http, j) for j in ids}
            for dependent, dependency in r["pairs"]:
                after, before = jobs[dependent], jobs[dependency]
                assert before["status"] == after["status"] == "SUCCEEDED", (dependent, dependency)
                assert before["stoppedAt"] <= after["startedAt"], (dependent, dependency)
                released = _first(histories[dependent], "RUNNABLE")
                assert _first(histories[dependency], "SUCCEEDED") <= released, (
                    dependent,
                    dependency,
                    histories[dependent],
                    histories[dependency],
                )


def test_dependents_start_only_after_their_dependencies_succeeded(
    server, unique, tmp_path, busy_host
):
    _run_rounds(server, tmp_path, unique)


@needs_isolation
def test_dependents_of_jobs_run_as_uids_of_their_own(new_server, unique, busy_host):
    """The same as a root server runs jobs by default (each attempt under a uid of its own,
    sharing files through their group), as examples/etl-pipeline meets it."""
    server = new_server(run_as=None)
    where = Path(tempfile.mkdtemp(prefix="batchyard-deps-"))
    try:
        os.chown(where, -1, grp.getgrnam("batchyard-jobs").gr_gid)
        where.chmod(0o2770)
        _run_rounds(server, where, unique)
    finally:
        shutil.rmtree(where, ignore_errors=True)
