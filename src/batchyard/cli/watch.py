"""``batchyard watch [QUEUE]``: a live view of queues, compute environments, running jobs,
array progress and recent failures, redrawn every second (rich Live, full screen). ``q`` or
Ctrl-C quits."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from batchyard.cli.common import (
    Api,
    EndpointOpt,
    Failed,
    ago,
    array_progress,
    clock,
    handle_errors,
    name_of,
    now_ms,
    out,
    run_time,
    short,
)
from batchyard.cli.status import environments_table, queues_table

MAX_ROWS = 10


def _list(api: Api, **request: Any) -> list[dict[str, Any]]:
    return api.batch.list_jobs(**request)["jobSummaryList"]


def snapshot(api: Api, queue: str | None) -> dict[str, Any]:
    """Everything one frame shows, read through the API."""
    status = api.status()
    queues = status.get("queues") or []
    if queue is not None:
        queues = [q for q in queues if q["name"] == name_of(queue)]
        if not queues:
            raise Failed(f"job queue {queue!r} does not exist")
        wanted = set(queues[0].get("computeEnvironments") or [])
        status["computeEnvironments"] = [
            c for c in status.get("computeEnvironments") or [] if c["name"] in wanted
        ]
    status["queues"] = queues
    running: list[dict[str, Any]] = []
    arrays: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for q in queues:
        counts = q.get("jobs") or {}
        for s in ("STARTING", "RUNNING"):
            if counts.get(s):
                for j in _list(api, jobQueue=q["name"], jobStatus=s, maxResults=MAX_ROWS * 2):
                    j["jobQueue"] = q["name"]
                    running.append(j)
        if counts.get("PENDING") or counts.get("RUNNABLE") or counts.get("RUNNING"):
            for j in _list(api, jobQueue=q["name"], jobStatus="PENDING", maxResults=50):
                if (j.get("arrayProperties") or {}).get("size"):
                    j["jobQueue"] = q["name"]
                    arrays.append(j)
        if counts.get("FAILED"):
            for j in _list(api, jobQueue=q["name"], jobStatus="FAILED", maxResults=MAX_ROWS):
                j["jobQueue"] = q["name"]
                failed.append(j)
    for a in arrays[:MAX_ROWS]:
        summary = (a.get("arrayProperties") or {}).get("statusSummary") or {}
        if summary.get("RUNNING") or summary.get("STARTING"):
            for s in ("STARTING", "RUNNING"):
                for j in _list(api, arrayJobId=a["jobId"], jobStatus=s, maxResults=MAX_ROWS):
                    j["jobQueue"] = a["jobQueue"]
                    running.append(j)
    running.sort(key=lambda j: j.get("startedAt") or j.get("createdAt") or 0)
    failed.sort(key=lambda j: j.get("stoppedAt") or 0, reverse=True)
    return {"status": status, "running": running, "arrays": arrays, "failed": failed}


def _running_table(jobs: list[dict[str, Any]], rows: int) -> Table:
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("JOB ID", "NAME", "QUEUE", "STATUS", "RUNNING FOR"):
        t.add_column(col, no_wrap=True)
    shown = jobs[:rows] if len(jobs) <= rows else jobs[: max(1, rows - 1)]
    for j in shown:
        t.add_row(j["jobId"], j.get("jobName", ""), j.get("jobQueue", ""), j["status"], run_time(j))
    if len(jobs) > len(shown):
        t.add_row("…", f"and {len(jobs) - len(shown)} more", "", "", "")
    return t


def _arrays_table(arrays: list[dict[str, Any]], rows: int) -> Table:
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ARRAY JOB", "NAME", "QUEUE", "PROGRESS", ""):
        t.add_column(col, no_wrap=True)
    for a in arrays[:rows]:
        props = a.get("arrayProperties") or {}
        size = props.get("size") or 1
        counts = props.get("statusSummary") or {}
        done = counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0)
        t.add_row(
            a["jobId"],
            a.get("jobName", ""),
            a.get("jobQueue", ""),
            ProgressBar(total=size, completed=done, width=30),
            array_progress(a),
        )
    return t


def _failed_table(jobs: list[dict[str, Any]], rows: int) -> Table:
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("JOB ID", "NAME", "QUEUE", "ENDED", "EXIT", "REASON"):
        t.add_column(col, no_wrap=col != "REASON", overflow="fold")
    for j in jobs[:rows]:
        code = (j.get("container") or {}).get("exitCode")
        t.add_row(
            j["jobId"],
            j.get("jobName", ""),
            j.get("jobQueue", ""),
            ago(j.get("stoppedAt")),
            "-" if code is None else str(code),
            short(j.get("statusReason"), 70),
        )
    return t


def _budget(height: int, data: dict[str, Any]) -> tuple[int, int, int]:
    """Rows for running jobs, arrays and failures so that a frame fits in ``height`` lines
    (each panel costs 3 lines of borders and header; queues and environments come first)."""
    status = data["status"]
    fixed = 1 + 3 * 5 + len(status.get("queues") or [])
    fixed += len(status.get("computeEnvironments") or [])
    room = max(6, height - fixed)
    failures = min(5, len(data["failed"]), room // 3) or 1
    arrays = min(5, len(data["arrays"]), room // 3) or 1
    return max(1, room - failures - arrays), arrays, failures


def frame(api: Api, queue: str | None, interval: float, height: int = 10_000) -> Group:
    """One screen of the watch, fitted to ``height`` lines."""
    data = snapshot(api, queue)
    status = data["status"]
    running_rows, array_rows, failure_rows = _budget(height, data)
    scope = f"queue {queue}" if queue else "all queues"
    head = Text.assemble(
        ("batchyard watch", "bold"),
        f"  {api.endpoint}  {scope}  {clock(now_ms())}  (every {interval:g} s; q or Ctrl-C quits)",
    )
    queues = status.get("queues") or []
    ces = status.get("computeEnvironments") or []
    running, arrays, failed = data["running"], data["arrays"], data["failed"]
    panels: list[tuple[str, Any]] = [
        ("queues", queues_table(queues) if queues else Text("no job queues")),
        (
            "compute environments",
            environments_table(ces) if ces else Text("no compute environments"),
        ),
        (
            f"running ({len(running)})",
            _running_table(running, running_rows)
            if running
            else Text("nothing is running", style="dim"),
        ),
    ]
    if arrays:
        panels.append(("array jobs", _arrays_table(arrays, array_rows)))
    panels.append(
        (
            "recent failures",
            _failed_table(failed, failure_rows) if failed else Text("no failures", style="dim"),
        )
    )
    return Group(head, *(Panel(body, title=title, title_align="left") for title, body in panels))


@contextlib.contextmanager
def _keys() -> Iterator[bool]:
    """stdin in cbreak mode (keys arrive one at a time, unechoed) when it is a terminal."""
    if not sys.stdin.isatty():
        yield False
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _quit_pressed(timeout: float, keys: bool) -> bool:
    if not keys:
        time.sleep(timeout)
        return False
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if ready:
        return os.read(sys.stdin.fileno(), 16).strip().lower().startswith(b"q")
    return False


@handle_errors
def watch(
    queue: Annotated[
        str | None, typer.Argument(help="Only this queue (default: all).", show_default=False)
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", "-n", help="Seconds between refreshes.", min=0.2)
    ] = 1.0,
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame and exit (also when not on a terminal).")
    ] = False,
    endpoint: EndpointOpt = None,
) -> None:
    """A live view of queues, compute environments, running jobs, arrays and failures.

    Redrawn every --interval seconds; press q (or Ctrl-C) to quit."""
    api = Api(endpoint)
    if once or not out.is_terminal:
        out.print(frame(api, queue, interval))
        return
    first = frame(api, queue, interval, out.size.height)
    with _keys() as keys, Live(first, console=out, screen=True, auto_refresh=False) as live:
        try:
            while not _quit_pressed(interval, keys):
                live.update(frame(api, queue, interval, out.size.height), refresh=True)
        except KeyboardInterrupt:
            pass
