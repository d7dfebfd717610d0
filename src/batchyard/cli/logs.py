"""``batchyard logs``: a job's output through the CloudWatch Logs API (GetLogEvents), read
from the start, and with ``--follow`` streamed as it is written, across retries, until the
job ends."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Annotated, Any

import typer

from batchyard.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    FINISHED,
    Api,
    EndpointOpt,
    Failed,
    Usage,
    err,
    handle_errors,
    outcome,
)

GROUP = "/aws/batch/job"


def log_streams(job: dict[str, Any]) -> list[str]:
    """The log stream of each attempt that has one, in order."""
    return [
        a["container"]["logStreamName"]
        for a in job.get("attempts") or []
        if (a.get("container") or {}).get("logStreamName")
    ]


class LogReader:
    """One log stream read through GetLogEvents from its start; each :meth:`drain` prints
    what was written since the last (on stdout, or on stderr with ``to_stderr``)."""

    def __init__(self, api: Api, stream: str, timestamps: bool, to_stderr: bool = False) -> None:
        self.api = api
        self.stream = stream
        self.timestamps = timestamps
        self.to_stderr = to_stderr
        self.token: str | None = None

    def drain(self) -> int:
        """Print every event written since the last call; returns how many."""
        shown = 0
        to = sys.stderr if self.to_stderr else sys.stdout
        while True:
            request: dict[str, Any] = {"logGroupName": GROUP, "logStreamName": self.stream}
            if self.token:
                request["nextToken"] = self.token
            else:
                request["startFromHead"] = True
            page = self.api.logs.get_log_events(**request)
            events = page["events"]
            for e in events:
                line = e["message"]
                if self.timestamps:
                    at = datetime.fromtimestamp(e["timestamp"] / 1000).isoformat(
                        sep=" ", timespec="milliseconds"
                    )
                    line = f"{at}  {line}"
                to.write(line + "\n")
            to.flush()
            shown += len(events)
            same = page.get("nextForwardToken") == self.token
            self.token = page.get("nextForwardToken")
            if not events or same:
                return shown


@handle_errors
def logs(
    job_id: Annotated[
        str,
        typer.Argument(
            help="The job (an array child is PARENT:INDEX).", metavar="JOB", show_default=False
        ),
    ],
    attempt: Annotated[
        int | None,
        typer.Option(
            "--attempt",
            "-a",
            help="Show this attempt (1 is the first) (default: the latest).",
            min=1,
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep printing output as it is written until the job ends (waits for it to "
            "start; follows retries), then say how it ended; exit 1 if it did not succeed.",
        ),
    ] = False,
    timestamps: Annotated[
        bool, typer.Option("--timestamps", "-t", help="Prefix each line with the time it was read.")
    ] = False,
    endpoint: EndpointOpt = None,
) -> None:
    """Print a job's output (stdout and stderr, as one stream).

    Exits 0 once the output was printed, 1 if the job does not exist or has not run yet
    (without --follow). With --follow it ends with a line on stderr saying how the job ended
    (status, exit code, reason) and exits 0 if it SUCCEEDED, 1 if it FAILED (with --attempt:
    1 if that attempt did not exit 0)."""
    api = Api(endpoint)
    job = api.job(job_id)
    size = (job.get("arrayProperties") or {}).get("size")
    if size:
        raise Usage(
            f"{job_id} is an array job of {size} children; its output is theirs: "
            f"batchyard logs {job_id}:0 (list them with batchyard jobs --array {job_id})"
        )
    streams = log_streams(job)
    if attempt is not None and attempt > len(streams) and (not follow or job["status"] in FINISHED):
        raise Failed(f"{job_id} has {len(streams)} attempt(s); there is no attempt {attempt}")
    if not streams and not follow:
        raise Failed(
            f"{job_id} has not run yet (it is {job['status']}"
            + (f": {job['statusReason']}" if job.get("statusReason") else "")
            + "); use --follow to wait for its output, or batchyard explain to see why"
        )
    if not follow:
        LogReader(api, streams[(attempt or len(streams)) - 1], timestamps).drain()
        return
    raise typer.Exit(_follow(api, job_id, job, attempt, timestamps))


def _follow(
    api: Api, job_id: str, job: dict[str, Any], attempt: int | None, timestamps: bool
) -> int:
    """Print the attempt's output as it is written. Without ``attempt``: from the latest
    attempt (or the first, if none started yet), moving on to each retry in turn. Returns
    the exit code (see :func:`_closing`)."""
    first = attempt or len(log_streams(job)) or 1
    current = 0
    reader: LogReader | None = None
    last_check = time.monotonic()
    if not log_streams(job):
        err.print(f"waiting for {job_id} to start (it is {job['status']})", highlight=False)
    while True:
        streams = log_streams(job)
        if current == 0 and len(streams) >= first:
            current = first
        elif attempt is None and current and len(streams) > current:
            assert reader is not None
            reader.drain()
            current += 1
        if current and (reader is None or reader.stream != streams[current - 1]):
            if current > 1:
                err.print(f"── attempt {current} ──", highlight=False)
            reader = LogReader(api, streams[current - 1], timestamps)
        if reader is not None:
            reader.drain()
        done = job["status"] in FINISHED and current >= len(streams)
        if done or (attempt is not None and current == attempt and _attempt_ended(job, attempt)):
            if reader is not None:
                time.sleep(0.2)  # the last lines may still be on their way to the log
                reader.drain()
            return _closing(job_id, job, attempt)
        time.sleep(0.2)
        if time.monotonic() - last_check >= 0.5:
            job = api.job(job_id)
            last_check = time.monotonic()


def _closing(job_id: str, job: dict[str, Any], attempt: int | None) -> int:
    """Say how the job (or the attempt followed) ended, on stderr so that stdout stays the
    job's output; the exit code: 0 for a job that SUCCEEDED (an attempt that exited 0)."""
    attempts = job.get("attempts") or []
    if attempt is None or (job["status"] in FINISHED and attempt == len(attempts)):
        err.print(f"── {outcome(job)} ──", markup=False, highlight=False, soft_wrap=True)
        return EXIT_OK if job["status"] == "SUCCEEDED" else EXIT_FAILED
    container = attempts[attempt - 1].get("container") or {}
    code = container.get("exitCode")
    said = [f"exit code {code}" if code is not None else "no exit code", container.get("reason")]
    err.print(
        f"── attempt {attempt} of {job_id} ended ({', '.join(filter(None, said))}); the job is "
        f"{job['status']} ──",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return EXIT_OK if code == 0 else EXIT_FAILED


def _attempt_ended(job: dict[str, Any], number: int) -> bool:
    attempts = job.get("attempts") or []
    return len(attempts) >= number and bool(attempts[number - 1].get("stoppedAt"))
