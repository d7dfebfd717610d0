"""Waiting for jobs with live progress: a bar per job (over the children for an array) on a
terminal, one line per change otherwise (logs, CI, pipes)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from batchyard.cli.common import FINISHED, Failed, array_progress, clock, now_ms, short


def _state(job: dict[str, Any]) -> tuple[str, int, int]:
    """(status text, completed, total) of a job for the display."""
    props = job.get("arrayProperties") or {}
    size = props.get("size")
    if size:
        counts = props.get("statusSummary") or {}
        done = counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0)
        status = job["status"] if job["status"] in FINISHED else array_progress(job)
        return status, done, size
    status = job["status"]
    if status == "RUNNABLE" and job.get("statusReason"):
        status = f"RUNNABLE ({short(job['statusReason'], 50)})"
    return status, 1 if job["status"] in FINISHED else 0, 1


def wait(
    batch: Any,
    job_ids: list[str],
    console: Console,
    labels: dict[str, str] | None = None,
    poll: float = 0.25,
    timeout: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Poll DescribeJobs until every job has finished; returns their last descriptions.

    Raises TimeoutError after ``timeout`` seconds (None: wait as long as it takes).
    """
    labels = labels or {}
    deadline = None if timeout is None else time.monotonic() + timeout
    if console.is_terminal:
        return _wait_live(batch, job_ids, console, labels, poll, deadline)
    return _wait_lines(batch, job_ids, console, labels, poll, deadline)


def _describe(batch: Any, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    found = {j["jobId"]: j for j in batch.describe_jobs(jobs=job_ids)["jobs"]}
    missing = [j for j in job_ids if j not in found]
    if missing:
        raise Failed(f"job {missing[0]} does not exist")
    return found


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError


def _wait_live(
    batch: Any,
    job_ids: list[str],
    console: Console,
    labels: dict[str, str],
    poll: float,
    deadline: float | None,
) -> dict[str, dict[str, Any]]:
    columns = (
        SpinnerColumn(finished_text="[green]✔[/]"),
        TextColumn("{task.description}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {
            j: progress.add_task(labels.get(j, j), total=1, status="SUBMITTED") for j in job_ids
        }
        while True:
            jobs = _describe(batch, job_ids)
            for j, job in jobs.items():
                status, done, total = _state(job)
                if job["status"] == "FAILED":
                    status = f"[bold red]{status}[/]"
                elif job["status"] == "SUCCEEDED":
                    status = f"[green]{status}[/]"
                progress.update(tasks[j], completed=done, total=total, status=status)
                if job["status"] in FINISHED:
                    progress.stop_task(tasks[j])
            if all(job["status"] in FINISHED for job in jobs.values()):
                return jobs
            _check(deadline)
            time.sleep(poll)


def _wait_lines(
    batch: Any,
    job_ids: list[str],
    console: Console,
    labels: dict[str, str],
    poll: float,
    deadline: float | None,
) -> dict[str, dict[str, Any]]:
    last: dict[str, str] = {}
    while True:
        jobs = _describe(batch, job_ids)
        for j in job_ids:
            status, _, _ = _state(jobs[j])
            if last.get(j) != status:
                last[j] = status
                console.print(f"{clock(now_ms())}  {labels.get(j, j)}  {status}", markup=False)
        if all(job["status"] in FINISHED for job in jobs.values()):
            return jobs
        _check(deadline)
        time.sleep(poll)
