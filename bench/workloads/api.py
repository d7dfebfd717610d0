"""API: SubmitJob and DescribeJobs requests per second with 1, 4 and 16 concurrent clients.

The load generator is ``wrk`` (Debian's package): a C event loop that spends a few
microseconds of CPU per request, where boto3 spends about a millisecond building, signing
and parsing each call — on a 2-core machine a Python generator would take much of the CPU
the server is being measured on. Each client is one keep-alive connection sending unsigned
AWS REST-JSON requests (the server accepts unsigned requests on loopback) from one wrk
thread. The generator's own CPU per request is measured in the same run (rusage of the wrk
process), and so is boto3's, for comparison.

Submitted jobs go to a queue whose only compute environment is DISABLED, so nothing runs
and the figures are the API's (and the scheduler pass each submission wakes).
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.context import Context
from harness.report import md_table
from harness.server import BenchServer
from harness.stats import fmt, others

NAME = "api"
TITLE = "API: requests per second"
PER_STORE = True
CLIENTS = [1, 4, 16]
DESCRIBE_IDS = 500

_DONE = r"""
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _submit_script(queue: str, definition: str) -> str:
    body = json.dumps({"jobName": "api", "jobQueue": queue, "jobDefinition": definition})
    return (
        f'wrk.method = "POST"\nwrk.path = "/v1/submitjob"\n'
        f'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = '{body}'\n" + _DONE
    )


def _describe_script(ids: list[str]) -> str:
    bodies = ",\n".join("'" + json.dumps({"jobs": [i]}) + "'" for i in ids)
    return (
        f"local bodies = {{\n{bodies}\n}}\nlocal n = 0\n"
        "request = function()\n  n = n % #bodies + 1\n"
        '  return wrk.format("POST", "/v1/describejobs", '
        '{["Content-Type"] = "application/json"}, bodies[n])\nend\n' + _DONE
    )


def _wrk(endpoint: str, script: Path, clients: int, seconds: float) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            endpoint,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    r = json.loads(line[6:])
    gen_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    r["generator_cpu_seconds"] = gen_cpu
    r["requests_per_second"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = sum(
        r[k] for k in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return r


def _client_cost(srv: BenchServer, job_id: str, calls: int) -> dict[str, float]:
    """Client-side CPU per DescribeJobs call: boto3 against the lean HTTP client."""
    batch, wire = srv.client(), srv.wire()
    batch.describe_jobs(jobs=[job_id])
    t0 = time.process_time()
    for _ in range(calls):
        batch.describe_jobs(jobs=[job_id])
    boto = (time.process_time() - t0) / calls
    t0 = time.process_time()
    for _ in range(calls):
        wire.describe([job_id])
    lean = (time.process_time() - t0) / calls
    wire.close()
    return {"boto3_cpu_us_per_call": boto * 1e6, "http_client_cpu_us_per_call": lean * 1e6}


def run(ctx: Context, store: str) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed: apt-get install wrk (see docs/performance.md)")
    seconds = ctx.size(10, 3, 1)
    out: dict[str, Any] = {
        "seconds_per_point": seconds,
        "generator": "wrk -t1 -c<clients>",
        "points": {},
    }
    with ctx.server(store) as srv:
        names = srv.setup(ce_state="DISABLED")
        w = srv.wire()
        ids = [
            w.submit(f"d{i}", names["queue"], names["definition"])
            for i in range(ctx.size(DESCRIBE_IDS, 200, 50))
        ]
        w.close()
        scripts = {
            "SubmitJob": ctx.root / f"submit-{store}.lua",
            "DescribeJobs": ctx.root / f"describe-{store}.lua",
        }
        scripts["SubmitJob"].write_text(_submit_script(names["queue"], names["definition"]))
        scripts["DescribeJobs"].write_text(_describe_script(ids))
        out["client_cost"] = _client_cost(srv, ids[0], ctx.size(300, 100, 30))
        for op, script in scripts.items():
            _wrk(srv.endpoint, script, 4, 1)  # warm-up
            for c in CLIENTS:
                cpu0 = srv.cpu_seconds()["server"]
                with ctx.meter(srv) as meter:
                    r = _wrk(srv.endpoint, script, c, seconds)
                r["load"] = meter.result
                r["server_cpu_share"] = (srv.cpu_seconds()["server"] - cpu0) / (
                    r["duration_us"] / 1e6
                )
                r["server_rss_mib"] = srv.rss_mib()
                r["generator_cpu_us_per_request"] = (
                    r["generator_cpu_seconds"] * 1e6 / max(1, r["requests"])
                )
                out["points"].setdefault(op, {})[str(c)] = r
                if r["errors"]:
                    ctx.problem(
                        f"api ({store}): {op} with {c} clients: {r['errors']} errors "
                        f"of {r['requests']} requests"
                    )
                ctx.log(
                    f"api {store} {op} c={c}: {r['requests_per_second']:,.0f}/s, "
                    f"p99 {r['p99_us'] / 1000:.1f} ms, server CPU "
                    f"{r['server_cpu_share']:.0%} of a core"
                )
        out["jobs_in_store"] = sum(p["requests"] for p in out["points"]["SubmitJob"].values())
        ctx.check_server(srv, "api")
    return out


def markdown(by_store: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(by_store.values()))
    lines = [
        f"`wrk` ({first['seconds_per_point']} s per point, one thread, one keep-alive "
        "connection per client, unsigned REST-JSON requests). SubmitJob: single jobs to a "
        "queue whose compute environment is DISABLED (nothing runs). DescribeJobs: one job id "
        "per request, rotating over a few hundred jobs. *Server CPU* is the server process's "
        "CPU time over the run's wall time (100% = one core); *generator* is wrk's own CPU "
        "per request.",
        "",
    ]
    rows = []
    for store, r in by_store.items():
        for op, points in r["points"].items():
            for c, p in points.items():
                gen_us = p["generator_cpu_us_per_request"]
                rows.append(
                    [
                        store,
                        op,
                        c,
                        f"**{p['requests_per_second']:,.0f}**",
                        fmt(p["p50_us"] / 1000, 2),
                        fmt(p["p99_us"] / 1000, 2),
                        f"{p['server_cpu_share']:.0%}",
                        f"{gen_us:.0f} µs",
                        p["errors"],
                        others(p.get("load")),
                    ]
                )
    lines += md_table(
        [
            "store",
            "operation",
            "clients",
            "requests/s",
            "p50 ms",
            "p99 ms",
            "server CPU",
            "generator CPU/request",
            "errors",
            "other load (cores)",
        ],
        rows,
    )
    costs = []
    for store, r in by_store.items():
        cc = r["client_cost"]
        costs.append(
            [
                store,
                f"{cc['boto3_cpu_us_per_call']:,.0f} µs",
                f"{cc['http_client_cpu_us_per_call']:,.0f} µs",
            ]
        )
    lines += [
        "Client-side CPU per DescribeJobs call, measured in the same run (why the "
        "generator is not boto3):",
        "",
        *md_table(["store", "boto3", "http.client (no signing)"], costs),
    ]
    caps = []
    for store, r in by_store.items():
        for op, points in r["points"].items():
            best = min(p["generator_cpu_us_per_request"] for p in points.values())
            caps.append(f"{store} {op}: {1e6 / best:,.0f}/s")
    lines += [
        "What the generator alone could produce on one core (1 / its CPU per request): "
        + "; ".join(caps)
        + ".",
        "",
    ]
    return lines
