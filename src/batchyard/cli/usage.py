"""``batchyard usage`` and ``batchyard cost``: what jobs reserved, used and cost, grouped by
queue, job definition, share identifier, tag, day or compute environment, from
``GET /batchyard/v1/usage``; ``usage`` ends with the right-sizing hints."""

from __future__ import annotations

import enum
import math
import sys
import time
import urllib.parse
from typing import Annotated, Any

import typer
from rich.table import Table

from batchyard.cli.common import Api, EndpointOpt, Usage, handle_errors, out, print_json
from batchyard.cli.events import parse_since


class TableOutput(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


GROUPS = {
    "queue": "queue",
    "job-definition": "job_definition",
    "definition": "job_definition",
    "share": "share_identifier",
    "share-identifier": "share_identifier",
    "day": "day",
    "compute-environment": "compute_environment",
    "ce": "compute_environment",
    "job": "job",
}

GroupOpt = Annotated[
    str,
    typer.Option(
        "--group-by",
        "-g",
        help="queue, job-definition, share, tag:<key>, day, compute-environment or job.",
    ),
]
SinceOpt = Annotated[
    str, typer.Option("--since", help="Start of the period: 7d, 24h, 30m, epoch ms or ISO 8601.")
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="End of the period (default: now).")]
OutOpt = Annotated[TableOutput, typer.Option("--output", "-o", help="table, json or csv.")]


def _group(value: str) -> str:
    key = value.replace("_", "-").lower()
    if value.startswith("tag:") and len(value) > 4:
        return value
    if key not in GROUPS:
        raise Usage(f"--group-by {value!r}: use {', '.join(sorted(set(GROUPS)))} or tag:<key>")
    return GROUPS[key]


def _query(api: Api, path: str, params: dict[str, str]) -> Any:
    return api.get(f"{path}?{urllib.parse.urlencode(params)}")


def _period(since: str, until: str | None) -> dict[str, str]:
    now = int(time.time() * 1000)
    params = {"since": str(parse_since(since, now))}
    if until:
        params["until"] = str(parse_since(until, now))
    return params


def _csv(api: Api, path: str, params: dict[str, str]) -> None:
    import urllib.request

    from batchyard.cli.signed import request_headers, ssl_context

    url = f"{api.endpoint}{path}?{urllib.parse.urlencode({**params, 'format': 'csv'})}"
    req = urllib.request.Request(url, headers=request_headers("GET", url, b""))
    with urllib.request.urlopen(req, timeout=60, context=ssl_context(api.endpoint)) as r:
        sys.stdout.write(r.read().decode())


def _money(v: float | None, currency: str) -> str:
    if v is None:
        return "-"
    sym = "$" if currency == "USD" else f"{currency} "
    if v == 0:
        return f"{sym}0"
    if abs(v) >= 0.01:
        return f"{sym}{v:,.2f}"
    digits = max(2, 1 - math.floor(math.log10(abs(v))))
    return f"{sym}{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


def _table(summary: dict[str, Any], cost: bool) -> Table:
    cur = summary.get("currency", "USD")
    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column(summary["groupBy"].replace("_", " ").upper(), no_wrap=True)
    for name in ("JOBS", "ATTEMPTS", "FAILED"):
        t.add_column(name, justify="right")
    if cost:
        for name in ("VCPU-H", "GIB-H", "COST", "WASTE", "WASTE %"):
            t.add_column(name, justify="right")
    else:
        for name in ("WALL-H", "VCPU-H", "CPU USED", "GIB-H", "MEM USED"):
            t.add_column(name, justify="right")
    rows = [*summary["groups"], {**summary["total"], "key": "total"}]
    for i, g in enumerate(rows):
        label = g.get("label") or g["key"]
        cells = [label, str(g["jobs"]), str(g["attempts"]), str(g["failedAttempts"])]
        if cost:
            share = g["waste"] / g["cost"] if g["cost"] else None
            cells += [
                f"{g['vcpuHours']:.3f}",
                f"{g['gibHours']:.3f}",
                _money(g["cost"], cur),
                _money(g["waste"], cur),
                _pct(share),
            ]
        else:
            cells += [
                f"{g['wallHours']:.3f}",
                f"{g['vcpuHours']:.3f}",
                _pct(g["cpuEfficiency"]),
                f"{g['gibHours']:.3f}",
                _pct(g["memoryEfficiency"]),
            ]
        t.add_row(*cells, style="bold" if i == len(rows) - 1 else None)
    return t


PRICE_SETTINGS = (
    "Prices are the server's settings price_vcpu_hour and price_gib_hour (config file, or "
    "BATCHYARD_PRICE_VCPU_HOUR / BATCHYARD_PRICE_GIB_HOUR), compute_environment_prices and "
    "instance_prices (config file); see docs/observability.md. GPUs are not priced."
)


def _prices(summary: dict[str, Any]) -> None:
    """The prices the costs were computed with, per compute environment, and where they are
    set, so that a figure can be checked and changed."""
    cur = summary.get("currency", "USD")
    sym = "$" if cur == "USD" else f"{cur} "
    out.print("\n[bold]Prices applied[/] (per hour):")
    t = Table(box=None, show_header=False, pad_edge=False)
    for _ in range(4):
        t.add_column(no_wrap=False)
    for p in summary.get("prices") or []:
        t.add_row(
            "  " + p["computeEnvironment"],
            f"{sym}{p['vcpuHour']:g} per vCPU",
            f"{sym}{p['gibHour']:g} per GiB",
            p["source"],
        )
    out.print(t)
    out.print(f"[dim]{PRICE_SETTINGS}[/]", highlight=False, soft_wrap=True)


def _run(
    cost: bool, group_by: str, since: str, until: str | None, output: TableOutput, api: Api
) -> None:
    params = {**_period(since, until), "groupBy": _group(group_by)}
    path = "/batchyard/v1/usage"
    if output == TableOutput.csv:
        _csv(api, path, params)
        return
    summary = _query(api, path, params)
    hints = None
    if not cost:
        hints = _query(api, "/batchyard/v1/usage/hints", _period(since, until))["hints"]
    if output == TableOutput.json:
        print_json({**summary, **({"hints": hints} if hints is not None else {})})
        return
    if not summary["groups"]:
        out.print(f"No attempt ended in the period (since {since}).")
        return
    out.print(_table(summary, cost))
    _prices(summary)
    if hints:
        out.print("\n[bold]Right-sizing[/] (95th percentile of use against the request):")
        for h in hints:
            mark = "[red]▲[/]" if h["kind"] == "under-request" else "[yellow]▼[/]"
            out.print(f"  {mark} {h['message']}", highlight=False, soft_wrap=True)


@handle_errors
def usage(
    group_by: GroupOpt = "queue",
    since: SinceOpt = "7d",
    until: UntilOpt = None,
    output: OutOpt = TableOutput.table,
    endpoint: EndpointOpt = None,
) -> None:
    """What jobs reserved and really used (CPU, memory); right-sizing hints.

    Names the job definitions that over- or under-request vCPUs and memory.
    """
    _run(False, group_by, since, until, output, Api(endpoint))


@handle_errors
def cost(
    group_by: GroupOpt = "queue",
    since: SinceOpt = "7d",
    until: UntilOpt = None,
    output: OutOpt = TableOutput.table,
    endpoint: EndpointOpt = None,
) -> None:
    """What jobs cost, and how much of it paid for capacity they did not use.

    Cost is reserved vCPUs and memory × time, at the compute environments' prices.
    """
    _run(True, group_by, since, until, output, Api(endpoint))
