"""The ceiling: how fast this machine launches processes at all, 2 (= cores) at a time —
from Python (os.posix_spawn, subprocess.Popen; batchyard's agent uses posix_spawn) and from
xargs. Whatever batchyard does above this is bookkeeping."""

from __future__ import annotations

import statistics
from typing import Any

from harness import baselines
from harness.context import Context
from harness.report import md_table
from harness.stats import fmt, others

NAME = "ceiling"
TITLE = "Ceiling: the machine's own process launch rate"
PER_STORE = False


def run(ctx: Context) -> dict[str, Any]:
    n = ctx.size(10_000, 2_000, 300)
    repeats = ctx.size(3, 1, 1)
    conc = ctx.cores
    out: dict[str, Any] = {"n": n, "concurrency": conc, "repeats": repeats, "methods": {}}
    baselines.spawn_rate(min(n, 500), conc, "posix_spawn")  # warm-up
    for method in ("posix_spawn", "popen", "xargs"):
        runs = []
        with ctx.meter() as meter:
            for _ in range(repeats):
                if method == "xargs":
                    runs.append(baselines.xargs(n, conc))
                else:
                    runs.append(baselines.spawn_rate(n, conc, method))
        rates = [r["per_second"] for r in runs]
        out["methods"][method] = {
            "command": runs[0]["command"],
            "per_second": statistics.median(rates),
            "runs": rates,
            "load": meter.result,
        }
        ctx.log(f"ceiling {method}: {statistics.median(rates):,.0f}/s")
    return out


def markdown(r: dict[str, Any]) -> list[str]:
    rows = [
        [
            m,
            f"`{v['command']}`",
            fmt(v["per_second"]),
            ", ".join(f"{x:,.0f}" for x in v["runs"]),
            others(v.get("load")),
        ]
        for m, v in r["methods"].items()
    ]
    return [
        f"{r['n']:,} launches of `true`, {r['concurrency']} at a time, median of "
        f"{r['repeats']} run(s).",
        "",
        *md_table(["method", "what", "launches/s", "runs", "other load (cores)"], rows),
    ]
