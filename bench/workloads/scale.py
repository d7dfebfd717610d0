"""Scale: a large backlog of queued jobs (full size: 100 arrays × 10,000 = 1,000,000) on a
DISABLED compute environment. Measures submission, the server's RSS, ListJobs latency with
the backlog, the time from enabling the compute environment to the first job RUNNING, and the
dispatch throughput while the backlog drains against the same server's empty-queue figure.
"""

from __future__ import annotations

import time
from typing import Any

from harness.context import Context
from harness.report import md_table
from harness.server import wait_job
from harness.stats import fmt, others, summary
from harness.wire import Wire

NAME = "scale"
TITLE = "Scale: a million queued jobs"
PER_STORE = True
STARTED = {"RUNNING", "SUCCEEDED", "FAILED"}


def _finished(w: Wire, parents: list[str]) -> int:
    done = 0
    for i in range(0, len(parents), 100):
        for job in w.describe(parents[i : i + 100]):
            s = job["arrayProperties"]["statusSummary"]
            done += s.get("SUCCEEDED", 0) + s.get("FAILED", 0)
    return done


def _list_latency(w: Wire, queue: str, parents: list[str], reps: int) -> dict[str, Any]:
    queries = {
        "queue, PENDING (the array parents)": {"jobQueue": queue, "jobStatus": "PENDING"},
        "first array's children, RUNNABLE, 100": {
            "arrayJobId": parents[0],
            "jobStatus": "RUNNABLE",
            "maxResults": 100,
        },
        "last array's children, RUNNABLE, 100": {
            "arrayJobId": parents[-1],
            "jobStatus": "RUNNABLE",
            "maxResults": 100,
        },
    }
    out: dict[str, Any] = {}
    for name, params in queries.items():
        ms, items = [], 0
        for _ in range(reps):
            t0 = time.perf_counter()
            r = w.list_jobs(**params)
            ms.append((time.perf_counter() - t0) * 1000)
            items = len(r["jobSummaryList"])
        out[name] = {**summary(ms), "items": items}
    return out


def _rate(samples: list[tuple[float, int]]) -> float | None:
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return None
    return (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])


def run(ctx: Context, store: str) -> dict[str, Any]:
    arrays, size = ctx.size((100, 10_000), (10, 1_000), (2, 300))
    window = ctx.size(60, 15, 5)
    empty_n = ctx.size(10_000, 1_000, 300)
    reps = ctx.size(20, 10, 3)
    out: dict[str, Any] = {
        "arrays": arrays,
        "array_size": size,
        "backlog_jobs": arrays * size,
        "window_seconds": window,
        "empty_queue_jobs": empty_n,
    }
    rss: list[float] = []
    with ctx.server(store) as srv:
        out["server_rss_mib_at_start"] = srv.rss_mib()
        empty = srv.setup(name="empty", command=["true"])
        backlog = srv.setup(name="backlog", command=["true"], ce_state="DISABLED")
        w = srv.wire()
        wait_job(w, w.submit("warm-up", empty["queue"], empty["definition"]), 60, 0.02)

        # the empty-queue figure, on this same server: one array, nothing else queued
        meter = ctx.meter(srv).__enter__()
        cpu_e0 = srv.cpu_seconds()
        t0 = time.time()
        parent = w.submit("empty", empty["queue"], empty["definition"], array_size=empty_n)
        samples: list[tuple[float, int]] = []
        while True:
            samples.append((time.time(), _finished(w, [parent])))
            if samples[-1][1] >= empty_n:
                break
            if time.time() - t0 > max(600, empty_n / 5):
                raise TimeoutError(f"the empty-queue array did not finish: {samples[-1]}")
            time.sleep(0.5)
        meter.__exit__(None, None, None)
        out["empty_queue_load"] = meter.result
        cpu_e1 = srv.cpu_seconds()
        out["empty_queue_cpu_ms_per_job"] = {
            k: (cpu_e1.get(k, 0) - cpu_e0.get(k, 0)) * 1000 / empty_n for k in cpu_e1
        }
        job = w.describe([parent])[0]
        wall = (job["stoppedAt"] / 1000 - t0) if job.get("stoppedAt") else samples[-1][0] - t0
        out["empty_queue_jobs_per_second"] = empty_n / wall
        steady = [s for s in samples if 0 < s[1] < empty_n]
        out["empty_queue_steady_jobs_per_second"] = _rate(steady) or empty_n / wall
        ctx.log(f"scale {store}: empty queue {out['empty_queue_jobs_per_second']:,.0f} jobs/s")

        # the backlog
        submit_ms: list[float] = []
        parents: list[str] = []
        t_sub = time.perf_counter()
        for i in range(arrays):
            t = time.perf_counter()
            parents.append(
                w.submit(f"backlog-{i}", backlog["queue"], backlog["definition"], array_size=size)
            )
            submit_ms.append((time.perf_counter() - t) * 1000)
            if (i + 1) % max(1, arrays // 10) == 0:
                rss.append(srv.rss_mib())
                ctx.log(
                    f"scale {store}: {(i + 1) * size:,} jobs queued, server RSS {rss[-1]:,.0f} MiB"
                )
        out["submit_seconds"] = time.perf_counter() - t_sub
        out["submit_ms_per_array"] = summary(submit_ms)
        out["queued_jobs_per_second"] = arrays * size / out["submit_seconds"]
        time.sleep(2)  # let the scheduler pass that the submissions woke settle
        out["server_rss_mib_with_backlog"] = srv.rss_mib()
        rss.append(out["server_rss_mib_with_backlog"])
        out["database_bytes"] = (
            srv.sqlite_bytes()
            if store == "sqlite"
            else ctx.pg().database_size(srv.database_url or "")
        )
        out["list_jobs_ms_idle"] = _list_latency(w, backlog["queue"], parents, reps)

        # enable the compute environment: time to the first job RUNNING
        cpu0 = srv.cpu_seconds()
        t_enable = time.time()
        w.update_ce(backlog["ce"], state="ENABLED")
        heads = [f"{parents[0]}:0", f"{parents[0]}:1"]
        while True:
            jobs = w.describe(heads)
            if any(j["status"] in STARTED for j in jobs):
                seen = time.time()
                break
            if time.time() - t_enable > 300:
                raise TimeoutError("no job started within 300 s of enabling the CE")
            time.sleep(0.001)
        starts = [j["startedAt"] for j in w.describe(heads) if j.get("startedAt")]
        out["enable_to_first_running_ms_observed"] = (seen - t_enable) * 1000
        out["enable_to_first_running_ms_recorded"] = (
            min(starts) - t_enable * 1000 if starts else None
        )

        # dispatch throughput while the backlog drains
        drain: list[tuple[float, int]] = []
        list_during: dict[str, Any] = {}
        t_end = time.time() + window
        meter = ctx.meter(srv).__enter__()
        while time.time() < t_end:
            drain.append((time.time(), _finished(w, parents)))
            rss.append(srv.rss_mib())
            if not list_during and time.time() > t_enable + window / 2:
                list_during = _list_latency(w, backlog["queue"], parents, reps)
            time.sleep(1.0)
        drain.append((time.time(), _finished(w, parents)))
        meter.__exit__(None, None, None)
        out["drain_load"] = meter.result
        cpu1 = srv.cpu_seconds()
        out["drain_jobs_per_second"] = _rate(drain)
        out["drained_in_window"] = drain[-1][1]
        out["list_jobs_ms_draining"] = list_during
        out["drain_cpu_seconds"] = {k: cpu1.get(k, 0) - cpu0.get(k, 0) for k in cpu1}
        drained = drain[-1][1] or 1  # nothing had finished before the enable
        out["drain_cpu_ms_per_job"] = {
            k: v * 1000 / drained for k, v in out["drain_cpu_seconds"].items()
        }
        base = out["empty_queue_steady_jobs_per_second"]
        out["drain_vs_empty"] = (
            out["drain_jobs_per_second"] / base if out["drain_jobs_per_second"] and base else None
        )
        out["server_rss_mib"] = {"max": max(rss), "samples": [round(x, 1) for x in rss]}
        ctx.log(
            f"scale {store}: draining {out['drain_jobs_per_second'] or 0:,.0f} jobs/s "
            f"({(out['drain_vs_empty'] or 0):.0%} of empty), RSS max {max(rss):,.0f} MiB, "
            f"first RUNNING {out['enable_to_first_running_ms_observed']:.0f} ms after enable"
        )
        w.close()
        ctx.check_server(srv, "scale")
    out["server_stop_seconds_with_backlog"] = srv.stop_seconds
    return out


def _cpu(ms: dict[str, float] | None) -> str:
    return f"{sum(ms.values()):.2f}" if ms else "–"


def markdown(by_store: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(by_store.values()))
    lines = [
        f"{first['arrays']} arrays × {first['array_size']:,} = **{first['backlog_jobs']:,} "
        "queued jobs** of `true` (1 vCPU) on a DISABLED compute environment, then enabled. The "
        f"empty-queue figure is one array of {first['empty_queue_jobs']:,} run on the same "
        "server before the backlog was queued (steady rate between its first and last "
        "finished child); the draining figure is the rate at which children finished over "
        f"the {first['window_seconds']} s after enabling (counted from the parents' "
        "statusSummary every second). The backlog is not drained to the end. The CPU the "
        "server and its agent spend per finished job is given for both phases: unlike the "
        "rates it hardly depends on what else the machine does, so it shows whether the "
        "backlog itself makes dispatching dearer.",
        "",
    ]
    rows = []
    for store, r in by_store.items():
        rows.append(
            [
                store,
                f"{r['submit_seconds']:.1f} s ({r['queued_jobs_per_second']:,.0f} jobs/s; "
                f"p50 {r['submit_ms_per_array']['p50']:,.0f} ms per array)",
                f"{r['server_rss_mib_at_start']:,.0f} → {r['server_rss_mib_with_backlog']:,.0f} "
                f"(max {r['server_rss_mib']['max']:,.0f})",
                fmt((r["database_bytes"] or 0) / 2**20, 0),
                f"{fmt(r['enable_to_first_running_ms_recorded'], 0)} / "
                f"{fmt(r['enable_to_first_running_ms_observed'], 0)}",
                fmt(r["empty_queue_steady_jobs_per_second"]),
                fmt(r["drain_jobs_per_second"]),
                f"**{r['drain_vs_empty']:.0%}**" if r["drain_vs_empty"] else "–",
                fmt(r["server_stop_seconds_with_backlog"], 1),
                f"{_cpu(r.get('empty_queue_cpu_ms_per_job'))} / "
                f"{_cpu(r.get('drain_cpu_ms_per_job'))}",
                f"{others(r.get('empty_queue_load'))} / {others(r.get('drain_load'))}",
            ]
        )
    lines += md_table(
        [
            "store",
            "queueing the backlog",
            "server RSS MiB (start → queued)",
            "database MiB",
            "enable → first RUNNING ms (recorded / observed)",
            "empty queue jobs/s",
            "draining jobs/s",
            "draining / empty",
            "SIGTERM → stopped s",
            "server + agent CPU ms/job, empty / draining",
            "other load, empty / draining (cores)",
        ],
        rows,
    )
    lrows = []
    for store, r in by_store.items():
        for when, key in (
            ("backlog idle", "list_jobs_ms_idle"),
            ("while draining", "list_jobs_ms_draining"),
        ):
            for q, s in (r.get(key) or {}).items():
                lrows.append(
                    [
                        store,
                        when,
                        q,
                        s["items"],
                        fmt(s["p50"], 1),
                        fmt(s["p95"], 1),
                        fmt(s["max"], 1),
                    ]
                )
    lines += [
        "ListJobs latency with the backlog (ms):",
        "",
        *md_table(["store", "when", "query", "items", "p50", "p95", "max"], lrows),
    ]
    return lines
