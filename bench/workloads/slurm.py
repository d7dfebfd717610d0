"""Slurm on the same machine: the throughput and latency workloads through sbatch, with
Slurm's defaults and with the tuning of its High Throughput Computing Administration Guide.

bench/slurm/setup.sh starts a private single-node Slurm (its own munge key and socket, its
own slurm.conf, state and logs in a scratch dir) and teardown.sh stops it; nothing in /etc is
used. Slurm is slow to start trivial jobs on this machine, so each measurement is bounded in
time: when the bound is reached the rate so far is reported and the rest is cancelled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.context import Context
from harness.report import md_table
from harness.stats import fmt, summary

NAME = "slurm"
TITLE = "Slurm on the same machine"
PER_STORE = False
HERE = Path(__file__).resolve().parent.parent / "slurm"
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED"}


def _sh(cmd: list[str], env: dict[str, str], timeout: float = 60) -> str:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}… failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def _sbatch(env: dict[str, str], *args: str) -> str:
    return (
        _sh(["sbatch", "--parsable", "-c1", "-o", "/dev/null", "-e", "/dev/null", *args], env)
        .strip()
        .split(";")[0]
    )


def _remaining(env: dict[str, str], job: str) -> int:
    out = subprocess.run(
        ["squeue", "-h", "-r", "-j", job, "-t", "PD,R,CG,CF,S", "-o", "%i"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return len(out.stdout.split())


def _active(env: dict[str, str], job: str) -> bool:
    out = subprocess.run(
        ["squeue", "-h", "-j", job, "-o", "%T"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return bool(set(out.stdout.split()) & ACTIVE)


def _throughput(ctx: Context, env: dict[str, str], n: int, bound: float) -> dict[str, Any]:
    t0 = time.time()
    job = _sbatch(env, f"--array=0-{n - 1}", "-J", "throughput", "--wrap", "true")
    submitted = time.time()
    remaining = n
    while True:
        time.sleep(1.0)
        remaining = _remaining(env, job)
        elapsed = time.time() - t0
        if remaining == 0 or elapsed > bound:
            break
    done = n - remaining
    if remaining:
        subprocess.run(["scancel", job], env=env, timeout=60, check=False)
    return {
        "n": n,
        "completed": done,
        "bounded": remaining > 0,
        "seconds": elapsed,
        "bound_seconds": bound,
        "submit_seconds": submitted - t0,
        "jobs_per_second": done / elapsed,
    }


def _latency(
    ctx: Context, env: dict[str, str], n: int, bound: float, where: Path
) -> dict[str, Any]:
    where.mkdir(parents=True, exist_ok=True)
    sbatch_ms, start_ms, done_ms = [], [], []
    began = time.time()
    for i in range(n):
        if time.time() - began > bound:
            break
        stamp = where / f"start.{i}"
        time.sleep(0.05)
        t0 = time.time()
        job = _sbatch(env, "-J", f"lat{i}", "--wrap", f"date +%s.%N > {stamp}")
        t1 = time.time()
        deadline = time.monotonic() + 120
        while _active(env, job):
            if time.monotonic() > deadline:
                raise TimeoutError(f"Slurm job {job} did not finish within 120 s")
            time.sleep(0.02)
        t2 = time.time()
        sbatch_ms.append((t1 - t0) * 1000)
        done_ms.append((t2 - t0) * 1000)
        try:
            start_ms.append((float(stamp.read_text()) - t0) * 1000)
        except (OSError, ValueError):
            ctx.problem(f"slurm: job {job} left no start stamp")
    return {
        "n_planned": n,
        "n": len(done_ms),
        "bound_seconds": bound,
        "sbatch_call_ms": summary(sbatch_ms),
        "submit_to_start_ms": summary(start_ms),
        "submit_to_done_observed_ms": summary(done_ms),
    }


def run(ctx: Context) -> dict[str, Any]:
    if os.geteuid() != 0:
        raise RuntimeError("the Slurm workload needs root (slurmd, munged); run it as root")
    n = ctx.size(10_000, 1_000, 100)
    tp_bound = ctx.size(180, 40, 15)
    lat_n = ctx.size(50, 10, 3)
    lat_bound = ctx.size(180, 45, 20)
    out: dict[str, Any] = {"profiles": {}}
    for profile in ("default", "htc"):
        d = ctx.root / f"slurm-{profile}"
        env = {**os.environ, "SLURM_CONF": str(d / "slurm.conf")}
        ctx.log(f"slurm {profile}: starting")
        try:
            subprocess.run(
                [str(HERE / "setup.sh"), str(d), profile],
                check=True,
                timeout=600,
                capture_output=True,
                text=True,
            )
            conf = (d / "slurm.conf").read_text()
            r: dict[str, Any] = {
                "version": _sh(["sinfo", "-V"], env).strip(),
                "conf": [ln for ln in conf.splitlines() if ln and not ln.startswith("#")],
            }
            r["throughput"] = _throughput(ctx, env, n, tp_bound)
            ctx.log(
                f"slurm {profile}: throughput {r['throughput']['jobs_per_second']:.2f} "
                f"jobs/s ({r['throughput']['completed']} of {n} in "
                f"{r['throughput']['seconds']:.0f} s)"
            )
            r["latency"] = _latency(ctx, env, lat_n, lat_bound, d / "stamps")
            ctx.log(
                f"slurm {profile}: p50 submit→start "
                f"{r['latency']['submit_to_start_ms']['p50'] or 0:,.0f} ms "
                f"({r['latency']['n']} jobs)"
            )
            out["profiles"][profile] = r
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"bench/slurm/setup.sh failed: {e.stderr.strip()[-800:]}") from None
        finally:
            logs = d / "log"
            if ctx.keep and logs.exists():
                shutil.copytree(logs, ctx.root / f"slurm-{profile}-logs", dirs_exist_ok=True)
            subprocess.run([str(HERE / "teardown.sh"), str(d)], timeout=120, check=False)
    return out


def markdown(r: dict[str, Any]) -> list[str]:
    lines = [
        "A private single-node Slurm (bench/slurm/setup.sh): 2 CPUs, `SelectType=select/cons_tres` "
        "with `CR_CPU`, `ProctrackType=proctrack/linuxproc`, `TaskPlugin=task/none`, no "
        "accounting storage, `MaxArraySize=10001`, `MaxJobCount=200000`. *default* is Slurm's "
        "defaults otherwise; *htc* adds the High Throughput Computing guide's settings "
        "(`sched/builtin`, `priority/basic`, no job accounting gathering or completion logging, "
        "`MinJobAge=2`, `SlurmctldDebug=error`, 4 controller ports, munged with 10 threads, "
        "and the example `SchedulerParameters` the guide gives for sustained hundreds of jobs "
        "per second, less its backfill options, which do not apply to `sched/builtin`). "
        "Jobs: `sbatch -c1 --wrap true` (array "
        "for throughput; single jobs, one at a time, for latency; start = a timestamp the job "
        "script writes first thing; done = the first `squeue` poll, every 20 ms, that no longer "
        "lists it as active).",
        "",
    ]
    rows = []
    for profile, p in r["profiles"].items():
        tp, lat = p["throughput"], p["latency"]
        bounded = (
            f"{tp['completed']:,} of {tp['n']:,} in {tp['seconds']:.0f} s "
            f"(stopped at the {tp['bound_seconds']:.0f} s bound)"
            if tp["bounded"]
            else f"all {tp['n']:,} in {tp['seconds']:.0f} s"
        )
        rows.append(
            [
                profile,
                f"**{tp['jobs_per_second']:.2f}**",
                bounded,
                fmt(lat["submit_to_start_ms"]["p50"], 0),
                fmt(lat["submit_to_start_ms"]["p95"], 0),
                fmt(lat["submit_to_done_observed_ms"]["p50"], 0),
                fmt(lat["sbatch_call_ms"]["p50"], 0),
                lat["n"],
            ]
        )
    lines += md_table(
        [
            "profile",
            "array throughput jobs/s",
            "array progress",
            "p50 submit→start ms",
            "p95 submit→start ms",
            "p50 submit→done ms",
            "p50 sbatch call ms",
            "latency jobs",
        ],
        rows,
    )
    return lines
