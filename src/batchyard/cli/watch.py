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
from batchyard.cli.fit import Col, fitted
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


def _running_table(jobs: list[dict[str, Any]], rows: int, width: int, queue: bool) -> Table:
    shown = jobs[:rows] if len(jobs) <= rows else jobs[: max(1, rows - 1)]
    more = len(jobs) - len(shown)
    ids = [j["jobId"] for j in shown] + (["…"] if more else [])
    names = [j.get("jobName", "") for j in shown] + ([f"and {more} more"] if more else [])
    cols = [
        Col("JOB ID", ids),
        Col("NAME", names, cut_to=8, drop=1),
        Col("STATUS", [j["status"] for j in shown]),
        Col("RUNNING FOR", [run_time(j) for j in shown]),
    ]
    if queue:
        cols.insert(2, Col("QUEUE", [j.get("jobQueue", "") for j in shown], cut_to=8, drop=2))
    return fitted(cols, width)


def _arrays_table(arrays: list[dict[str, Any]], rows: int, width: int, queue: bool) -> Table:
    arrays = arrays[:rows]
    bars = []
    for a in arrays:
        props = a.get("arrayProperties") or {}
        counts = props.get("statusSummary") or {}
        done = counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0)
        bars.append(ProgressBar(total=props.get("size") or 1, completed=done, width=None))
    cols = [
        Col("ARRAY JOB", [a["jobId"] for a in arrays]),
        Col("NAME", [a.get("jobName", "") for a in arrays], cut_to=8, drop=2),
        Col("PROGRESS", bars, natural=30, cut_to=10, drop=1),
        Col("", [array_progress(a) for a in arrays], cut_to=20),
    ]
    if queue:
        cols.insert(2, Col("QUEUE", [a.get("jobQueue", "") for a in arrays], cut_to=8, drop=3))
    return fitted(cols, width)


def _failed_table(jobs: list[dict[str, Any]], rows: int, width: int, queue: bool) -> Table:
    jobs = jobs[:rows]
    codes = [(j.get("container") or {}).get("exitCode") for j in jobs]
    cols = [
        Col("JOB ID", [j["jobId"] for j in jobs]),
        Col("NAME", [j.get("jobName", "") for j in jobs], cut_to=8, drop=1),
        Col("ENDED", [ago(j.get("stoppedAt")) for j in jobs]),
        Col("EXIT", ["-" if code is None else str(code) for code in codes]),
        Col("REASON", [short(j.get("statusReason"), 70) for j in jobs], cut_to=10),
    ]
    if queue:
        cols.insert(2, Col("QUEUE", [j.get("jobQueue", "") for j in jobs], cut_to=8, drop=2))
    return fitted(cols, width)


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


def _head(endpoint: str, queue: str | None, interval: float, width: int) -> Text:
    """The first line: what is watched and when; the date and the keys only when they fit."""
    scope = f"queue {queue}" if queue else "all queues"
    now = clock(now_ms())
    line = f"  {endpoint}  {scope}  {now}  (every {interval:g} s; q or Ctrl-C quits)"
    for shorter in (
        f"  {endpoint}  {scope}  {now[-8:]}  (q quits)",
        f"  {endpoint}  {scope}  {now[-8:]}",
    ):
        if len("batchyard watch") + len(line) <= width:
            break
        line = shorter
    return Text.assemble(("batchyard watch", "bold"), line, no_wrap=True, overflow="ellipsis")


def frame(
    api: Api, queue: str | None, interval: float, height: int = 10_000, width: int = 160
) -> Group:
    """One screen of the watch, fitted to ``height`` lines and ``width`` columns."""
    data = snapshot(api, queue)
    status = data["status"]
    running_rows, array_rows, failure_rows = _budget(height, data)
    head = _head(api.endpoint, queue, interval, width)
    inner = width - 4  # a panel's borders and padding
    many = queue is None  # watching one queue: no QUEUE columns
    queues = status.get("queues") or []
    ces = status.get("computeEnvironments") or []
    running, arrays, failed = data["running"], data["arrays"], data["failed"]
    panels: list[tuple[str, Any]] = [
        ("queues", queues_table(queues, inner) if queues else Text("no job queues")),
        (
            "compute environments",
            environments_table(ces, inner) if ces else Text("no compute environments"),
        ),
        (
            f"running ({len(running)})",
            _running_table(running, running_rows, inner, many)
            if running
            else Text("nothing is running", style="dim"),
        ),
    ]
    if arrays:
        panels.append(("array jobs", _arrays_table(arrays, array_rows, inner, many)))
    panels.append(
        (
            "recent failures",
            _failed_table(failed, failure_rows, inner, many)
            if failed
            else Text("no failures", style="dim"),
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
        out.print(frame(api, queue, interval, width=out.width))
        return
    first = frame(api, queue, interval, out.size.height, out.size.width)
    with _keys() as keys, Live(first, console=out, screen=True, auto_refresh=False) as live:
        try:
            while not _quit_pressed(interval, keys):
                screen = frame(api, queue, interval, out.size.height, out.size.width)
                live.update(screen, refresh=True)
        except KeyboardInterrupt:
            pass
