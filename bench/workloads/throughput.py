"""Throughput: one array job of N trivial children, from SubmitJob until the parent is
SUCCEEDED, next to xargs -P<cores> and GNU parallel doing the same launches (measured just
before, in the same run). The job definition asks for 1 vCPU per job, so on a 2-core host the
server runs 2 at a time, like xargs -P2."""

from __future__ import annotations

import time
from typing import Any

from harness import baselines
from harness.context import Context
from harness.report import md_table
from harness.server import wait_job
from harness.stats import fmt, others
from harness.wire import transition_at

NAME = "throughput"
TITLE = "Throughput: an array of trivial jobs"
PER_STORE = True

ECHO = ["sh", "-c", "echo $AWS_BATCH_JOB_ARRAY_INDEX"]
# name, command, vCPUs per job, server settings
VARIANTS: list[tuple[str, list[str], str, dict[str, Any]]] = [
    ("true", ["true"], "1", {}),
    ("echo", ECHO, "1", {}),
    ("true, 0.5 vCPU", ["true"], "0.5", {}),
    ("true, enforce_limits=false", ["true"], "1", {"enforce_limits": "false"}),
    # a root server's default: each attempt under a uid of its own, through setpriv
    ("true, isolated", ["true"], "1", {"run_as": None}),
]
# the same work for xargs (the item is $0) and GNU parallel (which runs it through sh)
SHELL = {"true": ("true", "true"), "echo": ("sh -c 'echo $0'", "echo {}")}


def run(ctx: Context, store: str) -> dict[str, Any]:
    n = ctx.size(10_000, 1_000, 100)
    out: dict[str, Any] = {"n": n, "cores": ctx.cores, "variants": {}, "baselines": {}}
    variants = VARIANTS[:2] if ctx.mode == "tiny" else VARIANTS
    for name, command, vcpus, settings in variants:
        key = "echo" if name == "echo" else "true"
        shell, par_shell = SHELL[key]
        if key not in out["baselines"]:
            with ctx.meter() as m:
                base: dict[str, Any] = {"xargs": baselines.xargs(n, ctx.cores, shell)}
            base["xargs"]["load"] = m.result
            # GNU parallel (perl) is slow to start: not in the smoke test's tiny runs
            par = baselines.parallel(n, ctx.cores, par_shell) if ctx.mode != "tiny" else None
            if par is not None:
                base["parallel"] = par
            out["baselines"][key] = base
            ctx.log(
                f"throughput {store}: baselines for {key}: xargs "
                f"{base['xargs']['per_second']:,.0f}/s"
                + (f", parallel {par['per_second']:,.0f}/s" if par else "")
            )
        else:
            # xargs again, right before this variant: the ratio uses adjacent measurements
            with ctx.meter() as m:
                out["baselines"][key]["xargs_again"] = baselines.xargs(n, ctx.cores, shell)
            out["baselines"][key]["xargs_again"]["load"] = m.result
        r = _measure(ctx, store, n, command, vcpus, settings)
        xr = out["baselines"][key].get("xargs_again") or out["baselines"][key]["xargs"]
        r["xargs_per_second"] = xr["per_second"]
        r["ratio_to_xargs"] = r["jobs_per_second"] / xr["per_second"]
        r["vcpus"] = vcpus
        r["settings"] = settings
        out["variants"][name] = r
        ctx.log(
            f"throughput {store} [{name}]: {r['jobs_per_second']:,.0f} jobs/s "
            f"({r['ratio_to_xargs']:.0%} of xargs), {r['status']}"
        )
    return out


def _measure(
    ctx: Context, store: str, n: int, command: list[str], vcpus: str, settings: dict[str, Any]
) -> dict[str, Any]:
    with ctx.server(store, **settings) as srv:
        names = srv.setup(command=command, vcpus=vcpus)
        w = srv.wire()
        # warm-up: the agent starts on the first job; xargs pays no such start-up
        warm = w.submit("warm-up", names["queue"], names["definition"])
        wait_job(w, warm, timeout=60, interval=0.02)
        cpu0 = srv.cpu_seconds()
        with ctx.meter(srv) as meter:
            t0 = time.time()
            parent = w.submit("throughput", names["queue"], names["definition"], array_size=n)
            submitted = time.time()
            job = wait_job(w, parent, timeout=max(600.0, n / 5), interval=0.1)
        cpu1 = srv.cpu_seconds()
        history = w.history(parent)
        end_ms = transition_at(history, job["status"])
        first = w.describe([f"{parent}:0"])[0]
        summary = job["arrayProperties"]["statusSummary"]
        wall = (end_ms / 1000 - t0) if end_ms else job["_observed_at"] - t0
        r: dict[str, Any] = {
            "status": job["status"],
            "succeeded": summary.get("SUCCEEDED", 0),
            "failed": summary.get("FAILED", 0),
            "submit_seconds": submitted - t0,
            "first_child_started_seconds": (first["startedAt"] / 1000 - t0)
            if first.get("startedAt")
            else None,
            "wall_seconds": wall,
            "wall_seconds_client_observed": job["_observed_at"] - t0,
            "jobs_per_second": n / wall,
            "cpu_seconds": {k: cpu1.get(k, 0) - cpu0.get(k, 0) for k in cpu1},
            "server_rss_mib": srv.rss_mib(),
            "load": meter.result,
        }
        r["cpu_ms_per_job"] = {k: v * 1000 / n for k, v in r["cpu_seconds"].items()}
        if store == "postgresql":  # SQLite's work is inside the server's own figure
            r["cpu_ms_per_job"]["database"] = meter.result["tree_seconds"] * 1000 / n
        # everything the machine did, the jobs themselves included
        r["cpu_ms_per_job"]["machine"] = meter.result["machine_busy_seconds"] * 1000 / n
        if job["status"] != "SUCCEEDED" or r["succeeded"] != n:
            ctx.problem(f"throughput ({store}): array of {n} ended {job['status']} with {summary}")
        if command is ECHO:
            r["output_check"] = _check_output(ctx, srv, parent, [0, n - 1])
        ctx.check_server(srv, "throughput")
        w.close()
    r["server_stop_seconds"] = srv.stop_seconds
    return r


def _check_output(ctx: Context, srv: Any, parent: str, indexes: list[int]) -> bool:
    """The children's output reached their log streams (each prints its index)."""
    logs = srv.client("logs")
    ok = True
    for i in indexes:
        child = srv.client().describe_jobs(jobs=[f"{parent}:{i}"])["jobs"][0]
        stream = child["container"].get("logStreamName")
        events = (
            logs.get_log_events(
                logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True
            )["events"]
            if stream
            else []
        )
        if [e["message"] for e in events] != [str(i)]:
            ctx.problem(f"throughput: child {i}'s log is {events[:3]} instead of [{i}]")
            ok = False
    return ok


def markdown(by_store: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(by_store.values()))
    lines = [
        f"One array job of {first['n']:,} children, timed from SubmitJob until the parent is "
        "SUCCEEDED (the server's own timestamp of that transition; the client's polling saw it "
        f"within 0.1 s). Compute environment maxvCpus = {first['cores']} (the host's cores); "
        "1 vCPU per job unless said otherwise, so batchyard runs "
        f"{first['cores']} at a time like `xargs -P{first['cores']}`. A warm-up job ran first "
        "(the agent starts on the first job). xargs ran right before each variant.",
        "",
    ]
    rows = []
    for store, r in by_store.items():
        for name, v in r["variants"].items():
            cpu = v["cpu_ms_per_job"]
            rows.append(
                [
                    store,
                    name,
                    fmt(v["jobs_per_second"]),
                    fmt(v["xargs_per_second"]),
                    f"**{v['ratio_to_xargs']:.0%}**",
                    fmt(v["wall_seconds"], 2),
                    fmt(v["submit_seconds"] * 1000, 0),
                    " / ".join(
                        fmt(cpu.get(k), 2) for k in ("server", "agent", "database", "machine")
                    ),
                    fmt(v["server_rss_mib"], 0),
                    f"{v['succeeded']:,}/{r['n']:,}",
                    others(v.get("load")),
                ]
            )
    lines += md_table(
        [
            "store",
            "variant",
            "jobs/s",
            "xargs/s",
            "batchyard/xargs",
            "wall s",
            "SubmitJob ms",
            "CPU ms/job server / agent / database / whole machine",
            "RSS MiB",
            "succeeded",
            "other load (cores)",
        ],
        rows,
    )
    brows = []
    for store, r in by_store.items():
        for key, b in r["baselines"].items():
            for tool in ("xargs", "xargs_again", "parallel"):
                if tool in b:
                    brows.append(
                        [
                            store,
                            key,
                            tool.replace("_again", " (again)"),
                            f"`{b[tool]['command']}`",
                            fmt(b[tool]["per_second"]),
                            others(b[tool].get("load")),
                        ]
                    )
    lines += [
        "Baselines (same run):",
        "",
        *md_table(
            ["store run", "work", "tool", "command", "launches/s", "other load (cores)"], brows
        ),
    ]
    return lines
