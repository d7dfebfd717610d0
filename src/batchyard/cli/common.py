"""What every client command shares: the server's address, the API clients, the consoles,
``--output``, and turning failures into a message and an exit code.

Exit codes (also in ``batchyard --help`` and docs/cli.md):

    0  success
    1  the operation failed: a job that did not succeed, a request the server refused
    2  bad usage or bad input: an unknown option, a malformed argument, an invalid stack file
    3  the server could not be reached (or could not start)
"""

from __future__ import annotations

import enum
import functools
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 the operation failed (a job that did not succeed, a request "
    "the server refused); 2 bad usage or input (unknown option, malformed argument, invalid "
    "stack file); 3 the server could not be reached or could not start."
)


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty() and "COLUMNS" not in os.environ:
        width = 160  # piped output: wide enough that tables are not squeezed
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=False)


out = _console()
err = _console(stderr=True)


class Output(enum.StrEnum):
    table = "table"
    json = "json"


EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        "-e",
        envvar="BATCHYARD_ENDPOINT",
        show_envvar=True,
        help="The server's URL (default: the local server of ~/.batchyard, or the config "
        "file's host and port, or http://127.0.0.1:8130).",
        show_default=False,
    ),
]
OutputOpt = Annotated[
    Output,
    typer.Option("--output", "-o", help="table (for people) or json (for scripts)."),
]


class Failed(Exception):
    """The operation failed (exit 1); the message says why and what to do."""

    code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class Usage(Failed):
    """Bad usage or bad input (exit 2)."""

    code = EXIT_USAGE


class Unreachable(Failed):
    """The server does not answer (exit 3)."""

    code = EXIT_UNREACHABLE


def print_error(message: str) -> None:
    """The one ``error:`` line on stderr that every failure ends with."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def die(message: str, code: int = EXIT_FAILED) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


# click's exception classes as Typer raises them: Typer ships its own copy of click, so
# ``import click`` would not catch them; Typer exports only BadParameter of the family.
_CLICK = {c.__name__: c for c in typer.BadParameter.__mro__}
ClickException: type[Exception] = _CLICK["ClickException"]
UsageError: type[Exception] = _CLICK["UsageError"]


def usage_message(e: Exception) -> str:
    """click's message for a bad command line (unknown option, missing argument, bad value)
    on one line, with the command whose --help tells the usage."""
    message = " ".join(e.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(e, "ctx", None)
    if isinstance(e, UsageError) and ctx is not None:
        message = f"{message.rstrip('.')} (see {ctx.command_path} --help)"
    return message


F = TypeVar("F", bound=Callable[..., Any])


def _unreachable_message(endpoint: str, detail: str) -> str:
    return (
        f"cannot reach the batchyard server at {endpoint} ({detail}). Start one with "
        "`batchyard server --detach` (or `batchyard quickstart`), or point --endpoint / "
        "BATCHYARD_ENDPOINT at a running one."
    )


def handle_errors(fn: F) -> F:
    """Run a command; any failure becomes one ``error:`` line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        from batchyard.config import ConfigError
        from batchyard.errors import BatchyardError

        try:
            return fn(*args, **kwargs)
        except Failed as e:
            die(e.message, e.code)
        except ClientError as e:
            error = e.response.get("Error", {})
            die(error.get("Message") or str(e), EXIT_FAILED)
        except (BotoConnectionError, HTTPClientError) as e:
            detail = str(getattr(e, "kwargs", {}).get("error") or type(e).__name__)
            if "[Errno" in detail:  # urllib3's wrapping says nothing more useful
                detail = detail[detail.index("[Errno") :]
            die(_unreachable_message(Api.last_endpoint, detail), EXIT_UNREACHABLE)
        except NoCredentialsError as e:
            die(str(e), EXIT_USAGE)
        except ConfigError as e:
            die(str(e), EXIT_USAGE)
        except BatchyardError as e:  # the server's own checks, run in-process (--local)
            die(e.message, EXIT_USAGE)
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # `batchyard jobs | head`: the reader left; nothing more to say
            sys.stderr.close()
            raise typer.Exit(0) from None

    return wrapper  # type: ignore[return-value]


class Api:
    """The server, through unmodified AWS clients and batchyard's own JSON endpoints."""

    last_endpoint = ""

    def __init__(self, endpoint: str | None) -> None:
        from batchyard.cli.client import resolve_endpoint

        self.endpoint = resolve_endpoint(endpoint)
        Api.last_endpoint = self.endpoint
        self._batch: Any = None
        self._logs: Any = None

    @property
    def batch(self) -> Any:
        if self._batch is None:
            from batchyard.cli.client import client

            self._batch = client("batch", self.endpoint)
        return self._batch

    @property
    def logs(self) -> Any:
        if self._logs is None:
            from batchyard.cli.client import client

            self._logs = client("logs", self.endpoint)
        return self._logs

    def get(self, path: str, timeout: float = 30.0) -> Any:
        """GET one of batchyard's own endpoints (``/batchyard/v1/...``) as JSON."""
        from batchyard.cli.signed import request_headers, ssl_context

        url = self.endpoint + path
        # signed like an AWS call: a server that requires authentication accepts it
        req = urllib.request.Request(url, headers=request_headers("GET", url, b""))
        try:
            with urllib.request.urlopen(
                req, timeout=timeout, context=ssl_context(self.endpoint)
            ) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                body = json.loads(e.read())
                message = body.get("message") or body.get("Message") or str(e)
            except ValueError:
                message = f"{url} answered HTTP {e.code}"
            raise Failed(message) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise Unreachable(_unreachable_message(self.endpoint, str(reason))) from None

    def job(self, job_id: str) -> dict[str, Any]:
        """DescribeJobs for one job; a :class:`Failed` naming it when it does not exist."""
        found = self.batch.describe_jobs(jobs=[job_id])["jobs"]
        if not found:
            raise Failed(f"job {job_id} does not exist (see `batchyard jobs`)")
        return found[0]

    def explain(self, job_id: str) -> dict[str, Any]:
        return self.get(f"/batchyard/v1/jobs/{urllib.parse.quote(job_id, safe=':')}/explain")

    def history(self, job_id: str) -> list[dict[str, Any]]:
        path = f"/batchyard/v1/jobs/{urllib.parse.quote(job_id, safe=':')}/history"
        return self.get(path)["transitions"]

    def status(self) -> dict[str, Any]:
        return self.get("/batchyard/v1/status")


def print_json(value: Any) -> None:
    """JSON on stdout, one document, for scripts (timestamps stay epoch milliseconds)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# ---- formatting ---------------------------------------------------------------------------

STATUS_STYLE = {
    "SUBMITTED": "bright_black",
    "PENDING": "yellow",
    "RUNNABLE": "cyan",
    "STARTING": "blue",
    "RUNNING": "bold blue",
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "VALID": "green",
    "INVALID": "bold red",
    "ENABLED": "green",
    "DISABLED": "yellow",
    "CREATING": "cyan",
    "UPDATING": "cyan",
    "DELETING": "yellow",
}
JOB_STATUSES = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
FINISHED = {"SUCCEEDED", "FAILED"}


def styled(status: str | None) -> str:
    if not status:
        return "-"
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def now_ms() -> int:
    return int(time.time() * 1000)


def clock(ms: int | None) -> str:
    """An epoch-milliseconds time as local ``YYYY-MM-DD HH:MM:SS``."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def span(ms: float | None) -> str:
    """A duration in milliseconds, short: ``850ms``, ``12.3s``, ``4m05s``, ``2h10m``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def ago(ms: int | None) -> str:
    if not ms:
        return "-"
    return span(max(0, now_ms() - ms)) + " ago"


def run_time(job: dict[str, Any]) -> str:
    started, stopped = job.get("startedAt"), job.get("stoppedAt")
    if not started:
        return "-"
    return span((stopped or now_ms()) - started)


def array_progress(job: dict[str, Any]) -> str:
    """``7/10 done (1 failed, 2 running)`` for an array parent, '' otherwise."""
    props = job.get("arrayProperties") or {}
    size = props.get("size")
    if not size:
        return ""
    counts = props.get("statusSummary") or {}
    ok, failed = counts.get("SUCCEEDED", 0), counts.get("FAILED", 0)
    rest = [
        f"{counts[s]} {s.lower()}"
        for s in ("RUNNING", "STARTING", "RUNNABLE", "PENDING")
        if counts.get(s)
    ]
    extra = ([f"{failed} failed"] if failed else []) + rest
    return f"{ok + failed}/{size} done" + (f" ({', '.join(extra)})" if extra else "")


def short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def name_of(arn_or_name: str | None) -> str:
    """``arn:aws:batch:...:job-queue/etl`` -> ``etl`` (names pass through)."""
    if not arn_or_name:
        return "-"
    return arn_or_name.rsplit("/", 1)[-1] if arn_or_name.startswith("arn:") else arn_or_name


def outcome(job: dict[str, Any]) -> str:
    """How a finished job ended, for a closing line: ``SUCCEEDED <id> (exit code 0)``,
    ``FAILED <id> (exit code 4, Essential container in task exited)``, ``FAILED <id> without
    running: Dependent job … failed``."""
    said = f"{job['status']} {job['jobId']}"
    attempts = job.get("attempts") or []
    reason = job.get("statusReason")
    if (job.get("arrayProperties") or {}).get("size"):  # its children ran, not the parent
        return f"{said} ({array_progress(job)})" + (f": {reason}" if reason else "")
    if not attempts:
        return f"{said} without running" + (f": {reason}" if reason else "")
    container = attempts[-1].get("container") or {}
    details = []
    if container.get("exitCode") is not None:
        details.append(f"exit code {container['exitCode']}")
    if job["status"] == "FAILED":  # the attempt's own reason, then the job's, each once
        details += dict.fromkeys(r for r in (container.get("reason"), reason) if r)
    if len(attempts) > 1:
        details.append(f"after {len(attempts)} attempts")
    return f"{said} ({', '.join(details)})" if details else said
