"""Resources: the latency of the resource API, one call at a time on an idle server.

N DescribeJobQueues (one named queue) and N CreateJobQueue calls (each a new queue on the same
compute environment), timed around each call, through two clients: boto3 (what users run:
its own building, signing and parsing included) and the suite's lean HTTP client (the server's
share of it). CreateJobQueue is a durable write: the figure includes the commit's fsync.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.context import Context
from harness.report import md_table
from harness.stats import fmt, others, summary

NAME = "resources"
TITLE = "Resources: DescribeJobQueues and CreateJobQueue latency"
PER_STORE = True


def _timed(n: int, call: Callable[[int], Any]) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run(ctx: Context, store: str) -> dict[str, Any]:
    n = ctx.size(1000, 300, 20)
    out: dict[str, Any] = {"n": n, "points": {}}
    with ctx.server(store) as srv:
        names = srv.setup(ce_state="DISABLED")
        batch, wire = srv.client(), srv.wire()
        order = [{"order": 1, "computeEnvironment": names["ce"]}]

        def boto_create(i: int) -> None:
            batch.create_job_queue(jobQueueName=f"b{i}", priority=1, computeEnvironmentOrder=order)

        def wire_create(i: int) -> None:
            wire.request(
                "POST",
                "/v1/createjobqueue",
                {"jobQueueName": f"w{i}", "priority": 1, "computeEnvironmentOrder": order},
            )

        calls: dict[str, dict[str, Callable[[int], Any]]] = {
            "DescribeJobQueues": {
                "boto3": lambda _i: batch.describe_job_queues(jobQueues=[names["queue"]]),
                "http": lambda _i: wire.request(
                    "POST", "/v1/describejobqueues", {"jobQueues": [names["queue"]]}
                ),
            },
            "CreateJobQueue": {"boto3": boto_create, "http": wire_create},
        }
        for call in calls["DescribeJobQueues"].values():  # warm-up: connections, caches
            _timed(20, call)
        for op, clients in calls.items():
            for client, call in clients.items():
                with ctx.meter(srv) as meter:
                    samples = _timed(n, call)
                point = summary(samples)
                point["load"] = meter.result
                out["points"].setdefault(op, {})[client] = point
                ctx.log(
                    f"resources {store} {op} ({client}): p50 {point['p50']:.2f} ms, "
                    f"p99 {point['p99']:.2f} ms"
                )
        wire.close()
        ctx.check_server(srv, "resources")
    return out


def markdown(by_store: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(by_store.values()))
    lines = [
        f"{first['n']:,} calls of each, one at a time, on an idle server. *boto3*: the "
        "call as a user's program makes it (boto3's own CPU included); *HTTP*: the suite's "
        "lean keep-alive client (the server's part). CreateJobQueue creates a new queue each "
        "time and is durable when it returns. All in ms.",
        "",
    ]
    rows = []
    for store, r in by_store.items():
        for op, points in r["points"].items():
            for client, p in points.items():
                rows.append(
                    [
                        store,
                        op,
                        "boto3" if client == "boto3" else "HTTP",
                        f"**{fmt(p['p50'], 2)}**",
                        fmt(p["p95"], 2),
                        f"**{fmt(p['p99'], 2)}**",
                        fmt(p["max"], 2),
                        others(p.get("load")),
                    ]
                )
    lines += md_table(
        ["store", "operation", "client", "p50", "p95", "p99", "max", "other load (cores)"], rows
    )
    return lines
