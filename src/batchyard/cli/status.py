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


def queues_table(queues: list[dict[str, Any]]) -> Table:
    """A line per queue: its state, priority, jobs per status and compute environments."""
    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column("QUEUE", no_wrap=True)
    t.add_column("STATE", no_wrap=True)
    t.add_column("PRIO", justify="right")
    for label, _ in _COUNTS:
        t.add_column(label, justify="right", no_wrap=True)
    t.add_column("COMPUTE ENVIRONMENTS", overflow="fold", min_width=12)
    for q in queues:
        counts = q.get("jobs") or {}
        cells = []
        for label, statuses in _COUNTS:
            n = sum(counts.get(s, 0) for s in statuses)
            style = _COUNT_STYLE.get(label) if n else "bright_black"
            cells.append(f"[{style}]{n}[/]" if style else str(n))
        state = styled(q["state"]) + ("" if q["status"] == "VALID" else " " + styled(q["status"]))
        t.add_row(
            q["name"],
            state,
            str(q["priority"]),
            *cells,
            ", ".join(q.get("computeEnvironments") or []),
        )
    return t


def environments_table(ces: list[dict[str, Any]]) -> Table:
    """A line per compute environment: vCPUs in use of what it can use, memory, attempts."""
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("COMPUTE ENV", "STATE", "STATUS", "PROVIDER", "vCPUs IN USE", "", "MEMORY IN USE"):
        t.add_column(col, no_wrap=True)
    t.add_column("RUNNING", no_wrap=True, justify="right")
    notes = any(c["status"] != "VALID" for c in ces)
    if notes:
        t.add_column("NOTE", overflow="fold", min_width=20)
    for c in ces:
        cap = c.get("capacityVcpus")
        used = c.get("vcpusInUse") or 0
        limit = f"{cap:g}" if cap is not None else "?"
        if c.get("maxVcpus") is not None and cap is not None and c["maxVcpus"] != cap:
            limit += f" (maxvCpus {c['maxVcpus']})"
        mem_cap = c.get("capacityMemoryMib")
        mem = f"{c.get('memoryMibInUse') or 0:,} / {mem_cap:,} MiB" if mem_cap else "-"
        row = [
            c["name"],
            styled(c["state"]),
            styled(c["status"]),
            c.get("provider") or "-",
            f"{used:g} / {limit}",
            bar(used, cap),
            mem,
            str(c.get("running") or 0),
        ]
        if notes:
            row.append("" if c["status"] == "VALID" else short(c.get("statusReason"), 80))
        t.add_row(*row)
    return t


def render(status: dict[str, Any], endpoint: str) -> Group:
    head = Text.assemble(
        ("batchyard ", "bold"),
        (status.get("version", "?"), "bold"),
        f" at {endpoint}  (store: {status.get('store', '?')})",
    )
    parts: list[Any] = [head, Text("")]
    queues = status.get("queues") or []
    ces = status.get("computeEnvironments") or []
    parts.append(queues_table(queues) if queues else Text("no job queues yet", style="dim"))
    parts.append(Text(""))
    parts.append(
        environments_table(ces) if ces else Text("no compute environments yet", style="dim")
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
