"""Throughput and latency of the ray provider next to the local provider, multi-node jobs on
both, and the Ray head node's memory with 1,000 queued jobs (the numbers in docs/ray.md).

    python3 tests/ray/netns.py python3 tests/ray/measure.py [--jobs 400] [--queued 1000]
        [--vcpus 0.25] [--mnp-runs 10]

One batchyard server (SQLite) with two compute environments of the same size, one local and
one on a Ray cluster started here (a head node without CPUs and two worker nodes of one CPU
each, all on this host, inside the private network namespace netns.py makes), so both run
eight 0.25-vCPU jobs at once (``--vcpus 1``: two, like the benchmark suite's throughput).
The multi-node figure is a 2-node job whose second node connects to the main node over TCP
(0.5 vCPU each; on Ray a STRICT_SPREAD placement group over the two workers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "integration")]

import psutil  # noqa: E402
from helpers import make_ce, make_queue, wait_for, wait_job  # noqa: E402
from raycluster import RayCluster, ray_ce, ray_server_settings  # noqa: E402
from test_ray_multinode import CHILD, MAIN  # noqa: E402

from support.server import ServerProcess  # noqa: E402

VCPUS = "0.25"


def register(batch, name: str, command: list[str]) -> str:
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "command": command,
            "resourceRequirements": [
                {"type": "VCPU", "value": VCPUS},
                {"type": "MEMORY", "value": "32"},
            ],
        },
    )
    return name


def latency(batch, queue: str, jd: str, runs: int) -> dict[str, float]:
    """Jobs one at a time on an idle environment: submit → RUNNING → SUCCEEDED (ms)."""
    to_start, to_end, run = [], [], []
    for i in range(runs):
        t0 = time.time() * 1000
        job_id = batch.submit_job(jobName=f"lat{i}", jobQueue=queue, jobDefinition=jd)["jobId"]
        job = wait_job(batch, job_id, timeout=120)
        assert job["status"] == "SUCCEEDED", job.get("statusReason")
        to_start.append(job["startedAt"] - job["createdAt"])
        run.append(job["stoppedAt"] - job["startedAt"])
        to_end.append(time.time() * 1000 - t0)
    return {
        "submit_to_running_ms_median": statistics.median(to_start),
        "running_to_succeeded_ms_median": statistics.median(run),
        "submit_to_succeeded_seen_ms_median": statistics.median(to_end),
        "submit_to_succeeded_seen_ms_p90": sorted(to_end)[int(0.9 * (runs - 1))],
    }


def throughput(batch, queue: str, jd: str, jobs: int) -> dict[str, float]:
    """An array of ``jobs`` children of `true`: children finished per second."""
    t0 = time.monotonic()
    parent = batch.submit_job(
        jobName="tp", jobQueue=queue, jobDefinition=jd, arrayProperties={"size": jobs}
    )["jobId"]
    job = wait_job(batch, parent, timeout=1800)
    took = time.monotonic() - t0
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    return {"jobs": jobs, "seconds": round(took, 2), "jobs_per_second": round(jobs / took, 2)}


def multinode(batch, queue: str, runs: int, port: int) -> dict[str, float]:
    """2-node jobs one at a time: submit → main node RUNNING, main RUNNING → other node
    RUNNING (its launch waits for the main node's start), submit → SUCCEEDED seen (ms)."""
    name = f"mnp-{queue}"
    res = [{"type": "VCPU", "value": "0.5"}, {"type": "MEMORY", "value": "32"}]
    batch.register_job_definition(
        jobDefinitionName=name,
        type="multinode",
        parameters={"port": "0", "linger": "0"},
        nodeProperties={
            "numNodes": 2,
            "mainNode": 0,
            "nodeRangeProperties": [
                {"targetNodes": "0", "container": {"command": ["python3", "-c", MAIN, "Ref::port", "Ref::linger"], "resourceRequirements": res}},
                {"targetNodes": "1", "container": {"command": ["python3", "-c", CHILD, "Ref::port"], "resourceRequirements": res}},
            ],
        },
    )  # fmt: skip
    to_main, to_other, to_end = [], [], []
    for i in range(runs):
        t0 = time.time() * 1000
        job_id = batch.submit_job(
            jobName=f"mnp{i}", jobQueue=queue, jobDefinition=name,
            parameters={"port": str(port + i)},
        )["jobId"]  # fmt: skip
        job = wait_job(batch, job_id, timeout=120)
        seen = time.time() * 1000
        assert job["status"] == "SUCCEEDED", job.get("statusReason")
        main, other = batch.describe_jobs(jobs=[f"{job_id}#0", f"{job_id}#1"])["jobs"]
        to_main.append(main["startedAt"] - job["createdAt"])
        to_other.append(other["startedAt"] - main["startedAt"])
        to_end.append(seen - t0)
    return {
        "submit_to_main_running_ms_median": statistics.median(to_main),
        "main_to_other_running_ms_median": statistics.median(to_other),
        "submit_to_succeeded_seen_ms_median": statistics.median(to_end),
    }


def rss_mib(pids: list[int]) -> float:
    total = 0
    seen: set[int] = set()
    for pid in pids:
        try:
            procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
    return round(total / 2**20, 1)


def head_pids(cluster: RayCluster) -> list[int]:
    """The head node's Ray processes (GCS, raylet and its workers — the supervisors —,
    dashboard, monitor…)."""
    pids = []
    for infos in cluster.cluster.head_node.all_processes.values():
        pids += [i.process.pid for i in infos]
    return pids


def head_memory(batch, cluster: RayCluster, server: ServerProcess, queue: str, n: int) -> dict:
    before = rss_mib(head_pids(cluster))
    jd = register(batch, "mem-sleep", ["sleep", "5"])
    parent = batch.submit_job(
        jobName="mem", jobQueue=queue, jobDefinition=jd, arrayProperties={"size": n}
    )["jobId"]
    wait_for(
        lambda: (
            batch.describe_jobs(jobs=[parent])["jobs"][0]["arrayProperties"]["statusSummary"].get(
                "RUNNING", 0
            )
            >= 8
        ),
        timeout=120,
        what="the first children to run",
    )
    time.sleep(3)
    summary = batch.describe_jobs(jobs=[parent])["jobs"][0]["arrayProperties"]["statusSummary"]
    during = rss_mib(head_pids(cluster))
    server_pid = server.proc.pid
    bridge = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if "batchyard.providers.ray.bridge" in " ".join(p.info["cmdline"] or [])
    ]
    supervisors = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if (p.info["cmdline"] or [""])[0].startswith("ray::Supervisor")
    ]
    result = {
        "queued_jobs": n,
        "supervisor_actors_rss_mib": rss_mib(supervisors),
        "status_summary": summary,
        "head_node_rss_mib_idle": before,
        "head_node_rss_mib_with_queue": during,
        "batchyard_server_rss_mib": rss_mib([server_pid]) - rss_mib(bridge),
        "ray_bridge_rss_mib": rss_mib(bridge),
    }
    batch.terminate_job(jobId=parent, reason="measurement done")
    wait_job(batch, parent, timeout=300)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--vcpus", default="0.25", help="each job's vCPUs")
    parser.add_argument("--mnp-runs", type=int, default=10, help="2-node jobs (0: none)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    global VCPUS
    VCPUS = args.vcpus
    tmp = tempfile.mkdtemp(prefix="byray-", dir="/tmp")
    os.environ.update(RAY_TMPDIR=tmp, RAY_USAGE_STATS_ENABLED="0")
    os.environ.update(
        AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1"
    )
    cluster = RayCluster()
    server = ServerProcess(
        Path(tmp) / "server", **ray_server_settings(cluster), log_level="warning"
    )
    server.start()
    results: dict[str, dict] = {}
    try:
        batch = server.client(check=False)
        make_ce(batch, "local-ce", max_vcpus=2)
        make_queue(batch, "local-q", ["local-ce"])
        ray_ce(batch, "ray-ce", max_vcpus=2)
        make_queue(batch, "ray-q", ["ray-ce"])
        jd = register(batch, "true", ["true"])
        for provider, queue in (("local", "local-q"), ("ray", "ray-q")):
            latency(batch, queue, jd, 3)  # warm up (Ray starts its workers)
            results[provider] = {
                "latency": latency(batch, queue, jd, args.runs),
                "throughput": throughput(batch, queue, jd, args.jobs),
            }
            if args.mnp_runs:
                port = 20000 if provider == "local" else 21000
                results[provider]["multinode"] = multinode(batch, queue, args.mnp_runs, port)
            print(provider, json.dumps(results[provider]), flush=True)
        if args.queued:
            memory = head_memory(batch, cluster, server, "ray-q", args.queued)
            results["ray"]["memory"] = memory
            print("memory", json.dumps(memory), flush=True)
    finally:
        server.shutdown()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
