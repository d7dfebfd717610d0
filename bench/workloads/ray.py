"""Ray: the ray provider next to the local one, on one server (SQLite), with a Ray cluster of
a head node (no CPUs) and two one-CPU worker nodes on this host, inside private network
namespaces (tests/ray/netns.py; Ray binds some agents to the host's address otherwise).

It runs tests/ray/measure.py twice: with 1 vCPU per job (two at a time on each provider, as
in the throughput workload) and with 0.25 vCPU (eight at a time). Each gives the latency of
single jobs (submit → RUNNING, RUNNING → SUCCEEDED, submit → SUCCEEDED seen by a client),
the throughput of an array of `true`, a 2-node multi-node job whose nodes talk over TCP, and
(the 0.25 run) the Ray head node's memory with 1,000 jobs queued on the cluster. Needs the
extra ``[ray]``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.context import Context
from harness.report import md_table
from harness.stats import fmt

NAME = "ray"
TITLE = "Ray: the ray provider next to the local one"
PER_STORE = False
REPO = Path(__file__).resolve().parents[2]


def run(ctx: Context) -> dict[str, Any]:
    if importlib.util.find_spec("ray") is None:
        raise RuntimeError("Ray is not installed: pip install -e '.[ray]' (docs/ray.md)")
    jobs, runs, queued = ctx.size(400, 100, 20), ctx.size(20, 10, 3), ctx.size(1000, 200, 20)
    out: dict[str, Any] = {"jobs": jobs, "runs": runs, "variants": {}}
    for vcpus in ("1", "0.25"):
        path = ctx.root / f"ray-{vcpus}.json"
        cmd = [
            sys.executable,
            str(REPO / "tests/ray/netns.py"),
            sys.executable,
            str(REPO / "tests/ray/measure.py"),
            f"--jobs={jobs}",
            f"--runs={runs}",
            f"--vcpus={vcpus}",
            f"--queued={queued if vcpus == '0.25' else 0}",
            f"--mnp-runs={runs // 2 if vcpus == '0.25' else 0}",
            f"--json={path}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        if proc.returncode != 0 or not path.exists():
            raise RuntimeError(f"measure.py failed ({proc.returncode}): {proc.stderr[-2000:]}")
        out["variants"][vcpus] = json.loads(path.read_text())
        for provider in ("local", "ray"):
            r = out["variants"][vcpus][provider]
            ctx.log(
                f"ray [{vcpus} vCPU] {provider}: {r['throughput']['jobs_per_second']:,.0f} jobs/s, "
                f"submit→RUNNING {r['latency']['submit_to_running_ms_median']:.0f} ms"
            )
    return out


def markdown(r: dict[str, Any]) -> list[str]:
    lines = [
        f"Arrays of {r['jobs']} `true`; latency: the median of {r['runs']} single jobs, one at "
        "a time, seen through boto3 (`createdAt`/`startedAt`/`stoppedAt` and the client's "
        "clock). Both compute environments have 2 vCPUs: the host's two cores, and two "
        "one-CPU Ray workers on the same host. All in ms unless said.",
        "",
    ]
    rows = []
    for vcpus, v in r["variants"].items():
        for provider in ("local", "ray"):
            p = v[provider]
            lat, tp = p["latency"], p["throughput"]
            mnp = p.get("multinode") or {}
            rows.append(
                [
                    f"{vcpus} vCPU",
                    provider,
                    f"**{tp['jobs_per_second']:,.0f}**",
                    fmt(lat["submit_to_running_ms_median"], 0),
                    fmt(lat["running_to_succeeded_ms_median"], 0),
                    fmt(lat["submit_to_succeeded_seen_ms_median"], 0),
                    fmt(mnp.get("submit_to_succeeded_seen_ms_median"), 0),
                ]
            )
    lines += md_table(
        [
            "jobs",
            "provider",
            "throughput jobs/s",
            "submit → RUNNING",
            "RUNNING → SUCCEEDED",
            "submit → SUCCEEDED seen",
            "2-node job, submit → SUCCEEDED",
        ],
        rows,
    )
    mem = (r["variants"].get("0.25") or {}).get("ray", {}).get("memory")
    if mem:
        lines += [
            f"With {mem['queued_jobs']:,} jobs queued on the Ray compute environment (RUNNING "
            f"{mem['status_summary'].get('RUNNING', 0)}): the Ray head node's processes "
            f"{fmt(mem['head_node_rss_mib_with_queue'], 0)} MiB RSS (idle "
            f"{fmt(mem['head_node_rss_mib_idle'], 0)}), of which the supervisor actors "
            f"{fmt(mem['supervisor_actors_rss_mib'], 0)} MiB; the batchyard server "
            f"{fmt(mem['batchyard_server_rss_mib'], 0)} MiB and its Ray bridge "
            f"{fmt(mem['ray_bridge_rss_mib'], 0)} MiB.",
            "",
        ]
    return lines
