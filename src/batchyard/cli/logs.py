"""``batchyard logs``: a job's output through the CloudWatch Logs API (GetLogEvents), read
from the start, and with ``--follow`` streamed as it is written, across retries, until the
job ends."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Annotated, Any

import typer

from batchyard.cli.common import FINISHED, Api, EndpointOpt, Failed, Usage, err, handle_errors

GROUP = "/aws/batch/job"


def _streams(job: dict[str, Any]) -> list[str]:
    """The log stream of each attempt that has one, in order."""
    return [
        a["container"]["logStreamName"]
        for a in job.get("attempts") or []
        if (a.get("container") or {}).get("logStreamName")
    ]


class _Reader:
    def __init__(self, api: Api, stream: str, timestamps: bool) -> None:
        self.api = api
        self.stream = stream
        self.timestamps = timestamps
        self.token: str | None = None

    def drain(self) -> int:
        """Print every event written since the last call; returns how many."""
        shown = 0
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
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
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
            "start; follows retries).",
        ),
    ] = False,
    timestamps: Annotated[
        bool, typer.Option("--timestamps", "-t", help="Prefix each line with the time it was read.")
    ] = False,
    endpoint: EndpointOpt = None,
) -> None:
    """Print a job's output (stdout and stderr, as one stream).

    Exits 0 once the output was printed (with --follow: once the job has ended), 1 if the
    job does not exist or has not run yet (without --follow)."""
    api = Api(endpoint)
    job = api.job(job_id)
    size = (job.get("arrayProperties") or {}).get("size")
    if size:
        raise Usage(
            f"{job_id} is an array job of {size} children; its output is theirs: "
            f"batchyard logs {job_id}:0 (list them with batchyard jobs --array {job_id})"
        )
    streams = _streams(job)
    if attempt is not None and attempt > len(streams) and (not follow or job["status"] in FINISHED):
        raise Failed(f"{job_id} has {len(streams)} attempt(s); there is no attempt {attempt}")
    if not streams and not follow:
        raise Failed(
            f"{job_id} has not run yet (it is {job['status']}"
            + (f": {job['statusReason']}" if job.get("statusReason") else "")
            + "); use --follow to wait for its output, or batchyard explain to see why"
        )
    if not follow:
        _Reader(api, streams[(attempt or len(streams)) - 1], timestamps).drain()
        return
    _follow(api, job_id, job, attempt, timestamps)


def _follow(
    api: Api, job_id: str, job: dict[str, Any], attempt: int | None, timestamps: bool
) -> None:
    """Print the attempt's output as it is written. Without ``attempt``: from the latest
    attempt (or the first, if none started yet), moving on to each retry in turn."""
    first = attempt or len(_streams(job)) or 1
    current = 0
    reader: _Reader | None = None
    last_check = time.monotonic()
    if not _streams(job):
        err.print(f"waiting for {job_id} to start (it is {job['status']})", highlight=False)
    while True:
        streams = _streams(job)
        if current == 0 and len(streams) >= first:
            current = first
        elif attempt is None and current and len(streams) > current:
            assert reader is not None
            reader.drain()
            current += 1
        if current and (reader is None or reader.stream != streams[current - 1]):
            if current > 1:
                err.print(f"── attempt {current} ──", highlight=False)
            reader = _Reader(api, streams[current - 1], timestamps)
        if reader is not None:
            reader.drain()
        done = job["status"] in FINISHED and current >= len(streams)
        if done or (attempt is not None and current == attempt and _attempt_ended(job, attempt)):
            if reader is not None:
                time.sleep(0.2)  # the last lines may still be on their way to the log
                reader.drain()
            else:
                reason = job.get("statusReason") or "no reason recorded"
                err.print(f"{job_id} ended {job['status']} without running: {reason}")
            return
        time.sleep(0.2)
        if time.monotonic() - last_check >= 0.5:
            job = api.job(job_id)
            last_check = time.monotonic()


def _attempt_ended(job: dict[str, Any], number: int) -> bool:
    attempts = job.get("attempts") or []
    return len(attempts) >= number and bool(attempts[number - 1].get("stoppedAt"))
