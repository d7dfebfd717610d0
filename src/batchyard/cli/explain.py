"""``batchyard explain JOB``: why a job is where it is, from the server's explain endpoint
(``GET /batchyard/v1/jobs/{id}/explain``) and its history, with what to do about it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from batchyard.cli.common import (
    Api,
    EndpointOpt,
    Output,
    OutputOpt,
    clock,
    handle_errors,
    out,
    print_json,
    span,
    styled,
)

BORDER = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "RUNNING": "blue",
    "STARTING": "blue",
    "RUNNABLE": "cyan",
    "PENDING": "yellow",
    "SUBMITTED": "yellow",
}


def _mark(ok: bool | None) -> str:
    return "[green]yes[/]" if ok else "[red]no[/]"


def _amount(a: dict[str, Any] | None) -> str:
    if not a:
        return "-"
    text = f"{a.get('vcpus', 0):g} vCPU, {a.get('memoryMib', 0):,} MiB"
    if a.get("gpus"):
        text += f", {a['gpus']:g} GPU"
    return text


def _section(title: str, body: Any) -> Group:
    return Group(Text(title, style="bold underline"), body, Text(""))


def _environments(fits: list[dict[str, Any]], request: dict[str, Any] | None) -> Table:
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in (
        "COMPUTE ENV",
        "STATE",
        "STATUS",
        "CAN EVER GIVE",
        "IN USE",
        "FITS EVER",
        "FITS NOW",
        "WHY",
    ):
        t.add_column(col, overflow="fold", no_wrap=col not in ("WHY", "CAN EVER GIVE", "IN USE"))
    for f in fits:
        used = f.get("inUse") or {}
        in_use = _amount(used) + (f", {used.get('attempts', 0)} running" if used else "")
        t.add_row(
            f["name"],
            styled(f["state"]),
            styled(f["status"]),
            _amount(f.get("capacity")),
            in_use,
            _mark(f.get("canEverFit")),
            _mark(f.get("fitsNow")),
            f.get("note") or "",
        )
    return t


def _dependencies(deps: list[dict[str, Any]]) -> Table:
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("JOB", "NAME", "TYPE", "STATUS", "REASON"):
        t.add_column(col, overflow="fold")
    for d in deps:
        t.add_row(
            d["jobId"],
            d.get("name") or "",
            d.get("type") or "-",
            styled(d["status"]),
            d.get("statusReason") or "",
        )
    return t


AS_ABOVE = "(as above)"


def _attempts(attempts: list[dict[str, Any]], shown: str | None) -> Table:
    """The attempts; a reason already shown above (the job's own) is not repeated."""
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("#", "COMPUTE ENV", "STATUS", "STARTED", "RAN", "EXIT", "REASON", "LOG STREAM"):
        t.add_column(col, overflow="fold")
    for a in attempts:
        ran = (
            span(a["stoppedAt"] - a["startedAt"])
            if a.get("startedAt") and a.get("stoppedAt")
            else "-"
        )
        reason = a.get("why") or "; ".join(x for x in (a.get("statusReason"), a.get("reason")) if x)
        if shown and reason == shown:
            reason = AS_ABOVE
        t.add_row(
            str(a["number"]),
            a.get("computeEnvironment") or "-",
            styled(a.get("status")),
            clock(a.get("startedAt")),
            ran,
            "-" if a.get("exitCode") is None else str(a["exitCode"]),
            reason,
            a.get("logStream") or "-",
        )
    return t


def _history(transitions: list[dict[str, Any]], told: str | None, limit: int = 12) -> Table:
    """The last transitions; a reason already shown above (the job's own) is not repeated."""
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("AT", "CHANGE", "REASON"):
        t.add_column(col, overflow="fold", no_wrap=col != "REASON")
    shown = transitions[-limit:]
    if len(transitions) > limit:
        t.add_row("…", f"{len(transitions) - limit} earlier", "")
    for h in shown:
        change = f"{h['from'] or '·'} → {h['to']}"
        reason = h.get("reason") or ""
        t.add_row(clock(h["at"]), change, AS_ABOVE if told and reason == told else reason)
    return t


def next_steps(e: dict[str, Any], job: dict[str, Any] | None) -> list[str]:
    """What the user can do about the situation the explanation describes."""
    job_id, status = e["jobId"], e["status"]
    steps: list[str] = []
    queue = e.get("queue") or {}
    fits = e.get("computeEnvironments") or []
    if (job or {}).get("arrayProperties", {}).get("size"):
        steps.append(f"batchyard jobs --array {job_id}   (the children, with their status)")
        if status == "FAILED":
            steps.append(f"batchyard jobs --array {job_id} --status FAILED")
    if status in ("SUBMITTED", "PENDING"):
        for d in e.get("dependencies") or []:
            if d["status"] not in ("SUCCEEDED",):
                steps.append(f"batchyard explain {d['jobId']}   (the job it waits for)")
    elif status == "RUNNABLE":
        usable = [f for f in fits if f["state"] == "ENABLED" and f["status"] == "VALID"]
        if not usable:
            for f in fits:
                if f["state"] != "ENABLED":
                    steps.append(
                        "enable the compute environment: aws batch update-compute-environment "
                        f"--compute-environment {f['name']} --state ENABLED (or state: ENABLED "
                        "in your stack, then batchyard apply)"
                    )
        elif not any(f.get("canEverFit") for f in usable):
            most = max((f.get("capacity") or {}).get("vcpus", 0) for f in usable)
            steps.append(
                f"resubmit with a smaller request (at most {most:g} vCPUs here), or raise "
                "maxvCpus of a compute environment of the queue (batchyard apply)"
            )
            steps.append(f"batchyard cancel {job_id}   (it will never start as it is)")
        elif not any(f.get("fitsNow") for f in usable):
            steps.append(
                f"batchyard jobs --queue {queue.get('name')} --status RUNNING   (what holds the "
                "capacity)"
            )
        if queue.get("ahead"):
            steps.append(f"batchyard explain {queue['ahead'][0]}   (the first job ahead of it)")
    elif status in ("STARTING", "RUNNING"):
        steps.append(f"batchyard logs --follow {job_id}")
    elif status == "FAILED":
        attempts = e.get("attempts") or []
        if attempts and attempts[-1].get("startedAt") is not None:  # else it wrote nothing
            steps.append(f"batchyard logs {job_id} --attempt {attempts[-1]['number']}")
        for d in e.get("dependencies") or []:
            if d["status"] == "FAILED":
                steps.append(f"batchyard explain {d['jobId']}   (the dependency that failed)")
    elif status == "SUCCEEDED" and e.get("attempts"):
        steps.append(f"batchyard logs {job_id}")
    return steps


def render(e: dict[str, Any], job: dict[str, Any] | None, history: list[dict[str, Any]]) -> Group:
    status = e["status"]
    name = (job or {}).get("jobName")
    title = f"[bold]{name}[/]  {e['jobId']}" if name else e["jobId"]
    head = Panel(
        Text(e["summary"], style="bold"),
        title=title,
        title_align="left",
        subtitle=styled(status),
        subtitle_align="right",
        border_style=BORDER.get(status, "white"),
    )
    parts: list[Any] = [head]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    if e.get("statusReason") and e["statusReason"] not in e["summary"]:
        facts.add_row("statusReason", e["statusReason"])
    if e.get("request"):
        facts.add_row("requests", _amount(e["request"]))
    if e.get("ranAs"):
        facts.add_row("ran as", e["ranAs"])
    q = e.get("queue")
    if q:
        line = f"{q['name']}  {styled(q['state'])} {styled(q['status'])}  priority {q['priority']}"
        if q.get("position"):
            ahead = q.get("aheadCount", 0)
            line += f"  position {q['position']}"
            if ahead:
                first = ", ".join(q.get("ahead") or [])
                more = ahead - len(q.get("ahead") or [])
                line += f" ({ahead} ahead: {first}{f' and {more} more' if more > 0 else ''})"
            else:
                line += " (first in line)"
        facts.add_row("queue", line)
    if facts.row_count:
        parts.append(facts)
        parts.append(Text(""))
    if e.get("details"):
        body = Group(*(Text(f"• {d}") for d in e["details"]))
        parts.append(_section("Why", body))
    if e.get("computeEnvironments"):
        parts.append(
            _section(
                "Compute environments of the queue",
                _environments(e["computeEnvironments"], e.get("request")),
            )
        )
    if e.get("dependencies"):
        parts.append(_section("Dependencies", _dependencies(e["dependencies"])))
    shown = e.get("statusReason")  # in the summary or the facts above
    if e.get("attempts"):
        parts.append(_section("Attempts", _attempts(e["attempts"], shown)))
    if history:
        parts.append(_section("History", _history(history, shown)))
    steps = next_steps(e, job)
    if steps:
        parts.append(_section("Next", Group(*(Text(f"→ {s}") for s in steps))))
    return Group(*parts)


@handle_errors
def explain(
    job_id: Annotated[
        str,
        typer.Argument(
            help="The job (an array child is PARENT:INDEX).", metavar="JOB", show_default=False
        ),
    ],
    output: OutputOpt = Output.table,
    endpoint: EndpointOpt = None,
) -> None:
    """Why a job is where it is, and what to do about it.

    What it waits for, the capacity it needs against what each compute environment of its
    queue can ever give and gives now, its place in the queue and what is ahead, its
    attempts, the retry rule that fired, the reason it failed, its history.

    --output json prints the server's explain document (GET /batchyard/v1/jobs/JOB/explain)."""
    api = Api(endpoint)
    e = api.explain(job_id)
    if output == Output.json:
        print_json(e)
        return
    found = api.batch.describe_jobs(jobs=[job_id])["jobs"]
    history = api.history(job_id)
    out.print(render(e, found[0] if found else None, history))
