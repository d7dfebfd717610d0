"""Latency: N single jobs of ``true``, one at a time on an otherwise idle server, each timed
from the client's SubmitJob start to RUNNING and to SUCCEEDED.

Three views of each step, all on this host's clock:
- *recorded*: the server's own timestamp of the transition (``GET
  /batchyard/v1/jobs/{id}/history``) minus the client's submit start — no polling bias;
- *process start*: the job's ``startedAt``, the moment the agent spawned the process;
- *observed*: the first DescribeJobs poll (every ``POLL`` s, lean HTTP client) that saw the
  status (RUNNING or later) — what a polling client experiences.
The server stamps times in whole milliseconds, so recorded figures carry ±1 ms.
"""

from __future__ import annotations

import time
from typing import Any

from harness.context import Context
from harness.report import md_table
from harness.server import wait_job
from harness.stats import fmt, others, summary
from harness.wire import transition_at

NAME = "latency"
TITLE = "Latency: single jobs, one at a time"
PER_STORE = True
POLL = 0.001  # between DescribeJobs polls
GAP = 0.05  # idle time between jobs, so each one meets an idle server
STARTED = {"RUNNING", "SUCCEEDED", "FAILED"}
DONE = {"SUCCEEDED", "FAILED"}


KEYS = (
    "submit_call_ms",
    "submit_to_process_start_ms",
    "submit_to_running_recorded_ms",
    "submit_to_running_observed_ms",
    "submit_to_succeeded_recorded_ms",
    "submit_to_succeeded_observed_ms",
)


def _series(
    w: Any, names: dict[str, str], n: int, gap: float
) -> tuple[dict[str, list[float]], int]:
    """n jobs one at a time, ``gap`` s of idleness before each; (samples by key, failures)."""
    samples: dict[str, list[float]] = {k: [] for k in KEYS}
    failed = 0
    for i in range(n):
        if gap:
            time.sleep(gap)
        t0 = time.time()
        job_id = w.submit(f"lat-{i}", names["queue"], names["definition"])
        t1 = time.time()
        running_seen = None
        deadline = time.monotonic() + 60
        while True:
            job = w.describe([job_id])[0]
            now = time.time()
            if running_seen is None and job["status"] in STARTED:
                running_seen = now
            if job["status"] in DONE:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after 60 s")
            time.sleep(POLL)
        if job["status"] != "SUCCEEDED":
            failed += 1
        hist = w.history(job_id)
        running_at = transition_at(hist, "RUNNING")
        done_at = transition_at(hist, job["status"])
        samples["submit_call_ms"].append((t1 - t0) * 1000)
        if job.get("startedAt"):
            samples["submit_to_process_start_ms"].append(job["startedAt"] - t0 * 1000)
        if running_at is not None:
            samples["submit_to_running_recorded_ms"].append(running_at - t0 * 1000)
        samples["submit_to_running_observed_ms"].append((running_seen - t0) * 1000)
        if done_at is not None:
            samples["submit_to_succeeded_recorded_ms"].append(done_at - t0 * 1000)
        samples["submit_to_succeeded_observed_ms"].append((now - t0) * 1000)
    return samples, failed


def run(ctx: Context, store: str) -> dict[str, Any]:
    n = ctx.size(200, 50, 10)
    with ctx.server(store) as srv:
        names = srv.setup(command=["true"], vcpus="1")
        w = srv.wire()
        for _ in range(3):  # warm-up: the agent starts on the first job
            wait_job(w, w.submit("warm-up", names["queue"], names["definition"]), 60, 0.01)
        meter = ctx.meter(srv).__enter__()
        samples, failed = _series(w, names, n, GAP)
        meter.__exit__(None, None, None)
        # the next job submitted as soon as the last one is seen done: what a script that
        # runs jobs one after another meets (the scheduler has just had work)
        back, failed_back = _series(w, names, n // 2, 0.0)
        w.close()
        ctx.check_server(srv, "latency")
    if failed or failed_back:
        ctx.problem(
            f"latency ({store}): {failed + failed_back} of {n + n // 2} single `true` jobs FAILED"
        )
    out: dict[str, Any] = {
        "n": n,
        "n_back_to_back": n // 2,
        "failed": failed + failed_back,
        "poll_seconds": POLL,
        "gap_seconds": GAP,
        "load": meter.result,
    }
    out.update({k: summary(v) for k, v in samples.items()})
    out["back_to_back"] = {k: summary(v) for k, v in back.items()}
    out["raw_ms"] = {k: [round(x, 3) for x in v] for k, v in samples.items()}
    ctx.log(
        f"latency {store}: p50 submit→RUNNING recorded "
        f"{out['submit_to_running_recorded_ms']['p50']:.1f} ms, SUCCEEDED "
        f"{out['submit_to_succeeded_recorded_ms']['p50']:.1f} ms; back to back "
        f"{out['back_to_back']['submit_to_running_recorded_ms']['p50']:.1f} ms"
    )
    return out


LABELS = [
    ("submit_call_ms", "SubmitJob round trip"),
    ("submit_to_process_start_ms", "submit → process spawned (startedAt)"),
    ("submit_to_running_recorded_ms", "submit → RUNNING, recorded"),
    ("submit_to_running_observed_ms", "submit → RUNNING, observed by polling"),
    ("submit_to_succeeded_recorded_ms", "submit → SUCCEEDED, recorded"),
    ("submit_to_succeeded_observed_ms", "submit → SUCCEEDED, observed by polling"),
]

BACK_TO_BACK_LABELS = [
    ("submit_to_running_recorded_ms", "back to back: submit → RUNNING, recorded"),
    ("submit_to_succeeded_recorded_ms", "back to back: submit → SUCCEEDED, recorded"),
]


def markdown(by_store: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(by_store.values()))
    lines = [
        f"{first['n']} single jobs of `true` (1 vCPU), one at a time, "
        f"{first['gap_seconds'] * 1000:.0f} ms "
        "apart, after 3 warm-up jobs. *Recorded* = the server's own timestamp of the "
        "transition (its history endpoint) minus the client's submit start, both on this "
        "host's clock, ±1 ms (the server stamps whole ms); *observed* = the first DescribeJobs "
        f"poll (every {first['poll_seconds'] * 1000:.0f} ms) that saw it. *Back to back*: "
        f"{first.get('n_back_to_back', 0)} more, each submitted as soon as the one before was "
        "seen done. All in ms.",
        "",
    ]
    rows = []
    for store, r in by_store.items():
        series = [(r, LABELS), (r.get("back_to_back") or {}, BACK_TO_BACK_LABELS)]
        for stats, labels in series:
            for key, label in labels:
                if key in stats:
                    row = (fmt(stats[key][k], 2) for k in ("p50", "p95", "p99", "max"))
                    rows.append([store, label, *row])
    lines += md_table(["store", "step", "p50", "p95", "p99", "max"], rows)
    lines += [
        "Other load during the measurement (cores): "
        + ", ".join(f"{s} {others(r.get('load'))}" for s, r in by_store.items())
        + ".",
        "",
    ]
    return lines
