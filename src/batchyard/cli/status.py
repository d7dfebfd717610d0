"""``batchyard status``: the server, its queues and compute environments at a glance, from
``GET /batchyard/v1/status``."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from batchyard.cli.common import (
    Api,
    EndpointOpt,
    Output,
    OutputOpt,
    handle_errors,
    out,
    print_json,
    short,
    styled,
)
from batchyard.cli.fit import Col, fitted

_COUNT_STYLE = {"RUNNABLE": "cyan", "RUNNING": "bold blue", "FAILED": "red", "SUCCEEDED": "green"}


def bar(used: float, total: float | None, width: int = 10) -> str:
    """A small text bar ``[████░░░░]`` for ``used`` of ``total``."""
    if not total:
        return ""
    filled = max(0, min(width, round(width * used / total)))
    color = "green" if used < total * 0.75 else ("yellow" if used < total else "red")
    return f"[{color}]{'█' * filled}[/][bright_black]{'░' * (width - filled)}[/]"


# The queue table's columns: each a label and the statuses it adds up (JSON has them all).
_COUNTS = [
    ("PENDING", ("SUBMITTED", "PENDING")),
    ("RUNNABLE", ("RUNNABLE",)),
    ("RUNNING", ("STARTING", "RUNNING")),
    ("SUCCEEDED", ("SUCCEEDED",)),
    ("FAILED", ("FAILED",)),
]


def queues_table(queues: list[dict[str, Any]], width: int) -> Table:
    """A line per queue: its state, priority, jobs per status and compute environments,
    fitted to ``width`` (the compute environments cut or left out first, then the priority)."""
    counts: list[Col] = []
    for label, statuses in _COUNTS:
        cells = []
        for q in queues:
            n = sum((q.get("jobs") or {}).get(s, 0) for s in statuses)
            style = _COUNT_STYLE.get(label) if n else "bright_black"
            cells.append(f"[{style}]{n}[/]" if style else str(n))
        counts.append(Col(label, cells, justify="right"))
    return fitted(
        [
            Col("QUEUE", [q["name"] for q in queues]),
            Col(
                "STATE",
                [
                    styled(q["state"])
                    + ("" if q["status"] == "VALID" else " " + styled(q["status"]))
                    for q in queues
                ],
            ),
            Col("PRIO", [str(q["priority"]) for q in queues], justify="right", drop=1),
            *counts,
            Col(
                "COMPUTE ENVIRONMENTS",
                [", ".join(q.get("computeEnvironments") or []) for q in queues],
                cut_to=12,
                drop=2,
            ),
        ],
        width,
    )


def environments_table(ces: list[dict[str, Any]], width: int) -> Table:
    """A line per compute environment: vCPUs in use of what it can use, memory, attempts,
    fitted to ``width`` (the provider, the bar, then memory left out first)."""
    vcpus, bars, memory = [], [], []
    for c in ces:
        cap = c.get("capacityVcpus")
        used = c.get("vcpusInUse") or 0
        limit = f"{cap:g}" if cap is not None else "?"
        if c.get("maxVcpus") is not None and cap is not None and c["maxVcpus"] != cap:
            limit += f" (maxvCpus {c['maxVcpus']})"
        vcpus.append(f"{used:g} / {limit}")
        bars.append(bar(used, cap))
        mem_cap = c.get("capacityMemoryMib")
        memory.append(f"{c.get('memoryMibInUse') or 0:,} / {mem_cap:,} MiB" if mem_cap else "-")
    cols = [
        Col("COMPUTE ENV", [c["name"] for c in ces]),
        Col("STATE", [styled(c["state"]) for c in ces]),
        Col("STATUS", [styled(c["status"]) for c in ces]),
        Col("PROVIDER", [c.get("provider") or "-" for c in ces], drop=5),
        Col("vCPUs IN USE", vcpus),
        Col("", bars, drop=4),
        Col("MEMORY IN USE", memory, drop=3),
        Col("RUNNING", [str(c.get("running") or 0) for c in ces], justify="right"),
    ]
    if any(c["status"] != "VALID" for c in ces):
        notes = ["" if c["status"] == "VALID" else short(c.get("statusReason"), 80) for c in ces]
        cols.append(Col("NOTE", notes, cut_to=20, wrap=True))
    return fitted(cols, width)


def render(status: dict[str, Any], endpoint: str) -> Group:
    head = Text.assemble(
        ("batchyard ", "bold"),
        (status.get("version", "?"), "bold"),
        f" at {endpoint}  (store: {status.get('store', '?')})",
    )
    parts: list[Any] = [head, Text("")]
    queues = status.get("queues") or []
    ces = status.get("computeEnvironments") or []
    width = out.width
    parts.append(queues_table(queues, width) if queues else Text("no job queues yet", style="dim"))
    parts.append(Text(""))
    parts.append(
        environments_table(ces, width) if ces else Text("no compute environments yet", style="dim")
    )
    return Group(*parts)


@handle_errors
def status(output: OutputOpt = Output.table, endpoint: EndpointOpt = None) -> None:
    """The server at a glance: jobs per status per queue, vCPUs in use per compute environment."""
    api = Api(endpoint)
    data = api.status()
    if output == Output.json:
        print_json({"endpoint": api.endpoint, **data})
        return
    out.print(render(data, api.endpoint))
