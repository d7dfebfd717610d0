"""Jobs from the terminal: ``submit``, ``jobs``, ``describe``, ``cancel``, ``terminate``.

Everything goes through the AWS Batch API (SubmitJob, DescribeJobs, ListJobs, CancelJob,
TerminateJob, RegisterJobDefinition), as any other client would.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from batchyard.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    FINISHED,
    JOB_STATUSES,
    Api,
    EndpointOpt,
    Failed,
    Output,
    OutputOpt,
    ago,
    array_progress,
    clock,
    err,
    handle_errors,
    name_of,
    out,
    outcome,
    print_json,
    run_time,
    short,
    span,
    styled,
)
from batchyard.domain.resources import INLINE_PREFIX

_JOB_NAME = re.compile(r"[^A-Za-z0-9_-]+")
DEP_TYPES = ("N_TO_N", "SEQUENTIAL")


# ---- parsing the command line ---------------------------------------------------------------


def parse_pairs(values: list[str] | None, option: str, what: str) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; a malformed entry is a usage error (exit 2)."""
    out_: dict[str, str] = {}
    for raw in values or []:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise typer.BadParameter(
                f"{raw!r} is not {what}=VALUE (example: {option} threads=4)", param_hint=option
            )
        out_[key] = value
    return out_


def parse_depends_on(values: list[str] | None) -> list[dict[str, str]]:
    """``JOB``, ``JOB:N_TO_N``, ``JOB:SEQUENTIAL`` or ``SEQUENTIAL`` -> SubmitJob's dependsOn.

    A job id may itself contain ``:`` (an array child ``parent:3``), so only a known type
    after the last ``:`` is read as the type.
    """
    deps: list[dict[str, str]] = []
    for raw in values or []:
        if raw.upper() == "SEQUENTIAL":
            deps.append({"type": "SEQUENTIAL"})
            continue
        job, sep, kind = raw.rpartition(":")
        if sep and kind.upper() in DEP_TYPES:
            if not job:
                raise typer.BadParameter(f"{raw!r} names no job", param_hint="--depends-on")
            deps.append({"jobId": job, "type": kind.upper()})
        elif sep and kind and not kind.isdigit():
            raise typer.BadParameter(
                f"{raw!r}: the dependency type {kind!r} is not N_TO_N or SEQUENTIAL",
                param_hint="--depends-on",
            )
        else:
            deps.append({"jobId": raw})
    return deps


def job_name_for(command: list[str] | None, definition: str | None) -> str:
    if definition:
        base = name_of(definition).split(":", 1)[0]
    else:
        base = os.path.basename((command or ["job"])[0]) or "job"
    name = _JOB_NAME.sub("-", base).strip("-")[:128]
    return name or "job"


def inline_definition(command: list[str], image: str | None) -> dict[str, Any]:
    """The job definition an inline command runs with: the command, nothing else, so that one
    definition serves every submission of the same command (resources, environment,
    retries and timeout travel with each job as overrides)."""
    container: dict[str, Any] = {"command": list(command)}
    if image:
        container["image"] = image
    spec = {"type": "container", "containerProperties": container}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return {"jobDefinitionName": INLINE_PREFIX + digest, **spec}


def ensure_inline_definition(batch: Any, spec: dict[str, Any]) -> str:
    """An ACTIVE revision with exactly this spec (reused), else a newly registered one."""
    from batchyard.api.defaults import without_defaults

    name = spec["jobDefinitionName"]
    # described back, a container also carries the empty lists AWS fills in
    shape = batch.meta.service_model.shape_for("ContainerProperties")
    pages = batch.get_paginator("describe_job_definitions").paginate(
        jobDefinitionName=name, status="ACTIVE"
    )
    for page in pages:
        for jd in sorted(page["jobDefinitions"], key=lambda d: -d["revision"]):
            if (
                without_defaults(jd.get("containerProperties"), shape)
                == spec["containerProperties"]
                and jd["type"] == (spec["type"])
            ):
                return f"{name}:{jd['revision']}"
    made = batch.register_job_definition(**spec)
    return f"{name}:{made['revision']}"


# ---- submit -------------------------------------------------------------------------------


@handle_errors
def submit(
    queue: Annotated[str, typer.Option("--queue", "-q", help="The job queue (name or ARN).")],
    command: Annotated[
        list[str] | None,
        typer.Argument(
            help="The command to run, after `--` (e.g. `-- python3 train.py --lr 0.1`). "
            "Without --job-definition it runs under a job definition registered (or "
            "reused) for this command; with one it overrides the definition's command.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", "-n", help="The job name (default: from the definition or command)."
        ),
    ] = None,
    job_definition: Annotated[
        str | None,
        typer.Option(
            "--job-definition", "-d", help="A job definition: name, name:revision or ARN."
        ),
    ] = None,
    array_size: Annotated[
        int | None,
        typer.Option(
            "--array-size",
            help="Run an array job of N children (2..10000); each sees AWS_BATCH_JOB_ARRAY_INDEX.",
            min=2,
            max=10_000,
        ),
    ] = None,
    depends_on: Annotated[
        list[str] | None,
        typer.Option(
            "--depends-on",
            metavar="JOB[:N_TO_N|:SEQUENTIAL]",
            help="Wait for a job: JOB, JOB:N_TO_N (child i waits for child i of JOB), or "
            "SEQUENTIAL (the array's children one after another; JOB:SEQUENTIAL waits for JOB, "
            "as on AWS). Repeatable.",
            show_default=False,
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="KEY=VALUE",
            help="A parameter k=v, substituted for Ref::k in the command. Repeatable.",
            show_default=False,
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            metavar="NAME=VALUE",
            help="An environment variable. Repeatable.",
            show_default=False,
        ),
    ] = None,
    vcpus: Annotated[
        float | None, typer.Option("--vcpus", help="vCPUs to reserve (may be fractional).")
    ] = None,
    memory: Annotated[int | None, typer.Option("--memory", help="Memory in MiB.", min=4)] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="GPUs to reserve.", min=0)] = None,
    retries: Annotated[
        int | None,
        typer.Option(
            "--retries",
            help="Retry a failed attempt up to N times (retryStrategy.attempts = N + 1).",
            min=0,
            max=9,
        ),
    ] = None,
    timeout: Annotated[
        int | None,
        typer.Option(
            "--timeout", help="Stop an attempt that runs longer than this many seconds.", min=1
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", metavar="KEY=VALUE", help="A tag for the job. Repeatable.", show_default=False
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            help="Container image recorded in an inline definition (batchyard's local "
            "provider runs the command on the host and ignores it).",
        ),
    ] = None,
    wait_: Annotated[
        bool,
        typer.Option(
            "--wait",
            "-w",
            help="Wait for the job, showing progress, then print its output (an array: none, "
            "there is one per child) and say how it ended, all on stderr (stdout stays the "
            "id); exit 0 only if it SUCCEEDED.",
        ),
    ] = False,
    endpoint: EndpointOpt = None,
) -> None:
    """Submit a job: a job definition, or any command (after --). Prints the job id (stdout
    holds nothing else; with --wait, progress and the job's output go to stderr).

    Examples:

      batchyard submit -q quickstart -- echo hello

      batchyard submit -q etl --array-size 8 --wait -- python3 shard.py

      batchyard submit -q etl -d aggregate --depends-on 6f1c…:N_TO_N -p day=2024-01-31
    """
    parameters = parse_pairs(param, "--param", "KEY")
    environment = parse_pairs(env, "--env", "NAME")
    tags = parse_pairs(tag, "--tag", "KEY")
    deps = parse_depends_on(depends_on)
    if vcpus is not None and vcpus <= 0:
        raise typer.BadParameter(f"{vcpus:g} is not above 0", param_hint="--vcpus")
    if not command and not job_definition:
        raise typer.BadParameter(
            "give a command after -- (batchyard submit -q QUEUE -- echo hello) or --job-definition",
            param_hint="COMMAND",
        )
    bad = [k for k in environment if k.startswith("AWS_BATCH")]
    if bad:
        raise typer.BadParameter(
            f"{bad[0]}: names starting with AWS_BATCH are set by batchyard itself",
            param_hint="--env",
        )
    api = Api(endpoint)
    definition = job_definition
    overrides: dict[str, Any] = {}
    if command:
        if definition is None:
            definition = ensure_inline_definition(api.batch, inline_definition(command, image))
        else:
            overrides["command"] = list(command)
    if environment:
        overrides["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
    requirements = [
        {"type": kind, "value": f"{value:g}" if isinstance(value, float) else str(value)}
        for kind, value in (("VCPU", vcpus), ("MEMORY", memory), ("GPU", gpus))
        if value is not None
    ]
    if requirements:
        overrides["resourceRequirements"] = requirements
    request: dict[str, Any] = {
        "jobName": name or job_name_for(command, job_definition),
        "jobQueue": queue,
        "jobDefinition": definition,
    }
    if overrides:
        request["containerOverrides"] = overrides
    if parameters:
        request["parameters"] = parameters
    if array_size is not None:
        request["arrayProperties"] = {"size": array_size}
    if deps:
        request["dependsOn"] = deps
    if retries is not None:
        request["retryStrategy"] = {"attempts": retries + 1}
    if timeout is not None:
        request["timeout"] = {"attemptDurationSeconds": timeout}
    if tags:
        request["tags"] = tags
    job_id = api.batch.submit_job(**request)["jobId"]
    print(job_id, flush=True)
    if not wait_:
        return
    raise typer.Exit(wait_and_report(api, job_id, request["jobName"]))


def wait_and_report(api: Api, job_id: str, label: str) -> int:
    """Show progress until the job ends; say how it ended; the exit code for it."""
    from batchyard.cli.progress import wait

    try:
        job = wait(api.batch, [job_id], err, {job_id: label})[job_id]
    except KeyboardInterrupt:
        err.print(
            f"stopped waiting; job {job_id} goes on (batchyard logs -f {job_id}, "
            f"batchyard cancel/terminate {job_id})",
            highlight=False,
        )
        return 130
    print_output(api, job)
    return report_end(job)


def print_output(api: Api, job: dict[str, Any]) -> None:
    """A finished single job's output, on stderr with the rest of what --wait reports (so
    that stdout stays the job id, for ``job=$(batchyard submit --wait ...)``): its latest
    attempt's (an earlier attempt's is a ``batchyard logs --attempt`` away). An array prints
    none: its children may be thousands, each with an output of its own."""
    from batchyard.cli.logs import LogReader, log_streams

    streams = log_streams(job)
    if not streams or (job.get("arrayProperties") or {}).get("size"):
        return
    if len(streams) > 1:
        err.print(
            f"the output of attempt {len(streams)} (attempt 1: batchyard logs {job['jobId']} "
            "--attempt 1):",
            highlight=False,
        )
    LogReader(api, streams[-1], timestamps=False, to_stderr=True).drain()


def report_end(job: dict[str, Any]) -> int:
    job_id = job["jobId"]
    size = (job.get("arrayProperties") or {}).get("size")
    if job["status"] == "SUCCEEDED":
        took = (
            f"all {size} children, in {span((job.get('stoppedAt') or 0) - job['createdAt'])}"
            if size and job.get("createdAt")
            else f"in {run_time(job)}"
        )
        err.print(f"[green]SUCCEEDED[/] {job_id} ({took})", highlight=False)
        return EXIT_OK
    said = outcome(job).removeprefix("FAILED")
    err.print(f"[bold red]FAILED[/]{escape(said)}", highlight=False, soft_wrap=True)
    if size:
        err.print(f"  failed children: batchyard jobs --array {job_id} --status FAILED")
        err.print(f"  a child's output: batchyard logs {job_id}:INDEX")
    err.print(f"  why:    batchyard explain {job_id}")
    if job.get("attempts"):
        err.print(f"  output: batchyard logs {job_id}")
    return EXIT_FAILED


# ---- jobs (list) ---------------------------------------------------------------------------


def _queues(api: Api, given: list[str] | None) -> list[str]:
    if given:
        return given
    names: list[str] = []
    for page in api.batch.get_paginator("describe_job_queues").paginate():
        names += [q["jobQueueName"] for q in page["jobQueues"]]
    return names


def _list(api: Api, limit: int, **request: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = None
    while len(found) < limit:
        page = api.batch.list_jobs(**request, **({"nextToken": token} if token else {}))
        found += page["jobSummaryList"]
        token = page.get("nextToken")
        if not token:
            break
    return found


def collect_jobs(
    api: Api,
    queues: list[str] | None,
    statuses: list[str],
    name: str | None,
    array: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """ListJobs over the queues (newest first), filtered, up to ``limit`` jobs."""
    if array:
        jobs: list[dict[str, Any]] = []
        for status in statuses or JOB_STATUSES:
            for j in _list(api, 10**9, arrayJobId=array, jobStatus=status):
                j["jobQueue"] = None
                jobs.append(j)
        jobs.sort(key=lambda j: (j.get("arrayProperties") or {}).get("index", 0))
        return jobs[:limit]
    jobs = []
    for queue in _queues(api, queues):
        if name:
            found = _list(
                api, limit, jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}]
            )
            found = [j for j in found if not statuses or j["status"] in statuses]
        elif statuses:
            found = [j for s in statuses for j in _list(api, limit, jobQueue=queue, jobStatus=s)]
        else:
            found = _list(
                api,
                limit,
                jobQueue=queue,
                filters=[{"name": "AFTER_CREATED_AT", "values": ["0"]}],
            )
        for j in found:
            j["jobQueue"] = name_of(queue)
        jobs += found
    jobs.sort(key=lambda j: j.get("createdAt") or 0, reverse=True)
    return jobs[:limit]


def _statuses(values: list[str] | None) -> list[str]:
    out_: list[str] = []
    for v in values or []:
        for s in v.split(","):
            s = s.strip().upper()
            if s not in JOB_STATUSES:
                raise typer.BadParameter(
                    f"{s!r} is not one of {', '.join(JOB_STATUSES)}", param_hint="--status"
                )
            out_.append(s)
    return out_


@handle_errors
def list_jobs(
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            "-q",
            metavar="QUEUE",
            help="Only this queue (repeatable; default: all).",
            show_default=False,
        ),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            metavar="STATUS",
            help="Only jobs in this status (repeatable, or comma-separated; default: all).",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", "-n", help="Only jobs of this name (a trailing * matches a prefix)."
        ),
    ] = None,
    array: Annotated[
        str | None,
        typer.Option("--array", "-a", help="List the children of this array job instead."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="At most this many jobs, newest first.", min=1)
    ] = 50,
    output: OutputOpt = Output.table,
    endpoint: EndpointOpt = None,
) -> None:
    """List jobs, newest first; an array job is one line with its children's progress."""
    statuses = _statuses(status)
    api = Api(endpoint)
    jobs = collect_jobs(api, queue, statuses, name, array, limit)
    if output == Output.json:
        print_json(jobs)
        return
    if not jobs:
        err.print("no jobs" + (" match" if (status or name) else ""))
        return

    def reason(j: dict[str, Any]) -> str:
        shown = j["status"] in ("FAILED", "RUNNABLE", "PENDING")
        return short(j.get("statusReason"), 70) if shown else ""

    # leave out what says nothing, so that the reasons get the room on a narrow terminal
    one_queue = not array and len({j.get("jobQueue") for j in jobs}) == 1 and bool(queue)
    arrays = any((j.get("arrayProperties") or {}).get("size") for j in jobs)
    columns = ["JOB ID", "NAME"] + ([] if one_queue else ["INDEX" if array else "QUEUE"])
    columns += ["STATUS"] + (["ARRAY"] if arrays else []) + ["CREATED", "RAN", "EXIT"]
    reasons = [(j["jobId"], j["statusReason"]) for j in jobs if reason(j)]
    if reasons and out.width - _width(jobs, columns, array) >= 30:
        columns.append("REASON")
        reasons = []
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in columns:
        if col == "REASON":
            table.add_column(col, overflow="fold", min_width=20)
        elif col == "JOB ID":  # never cut an id: it is what the user copies
            table.add_column(col, no_wrap=True, min_width=max(len(j["jobId"]) for j in jobs))
        else:
            table.add_column(col, no_wrap=True, overflow="ellipsis")
    for j in jobs:
        exit_code = (j.get("container") or {}).get("exitCode")
        where = (
            str((j.get("arrayProperties") or {}).get("index", "-"))
            if array
            else j.get("jobQueue") or "-"
        )
        cells = {
            "JOB ID": j["jobId"],
            "NAME": j.get("jobName", ""),
            "QUEUE": where,
            "INDEX": where,
            "STATUS": styled(j["status"]),
            "ARRAY": array_progress(j),
            "CREATED": ago(j.get("createdAt")),
            "RAN": run_time(j),
            "EXIT": "-" if exit_code is None else str(exit_code),
            "REASON": reason(j),
        }
        table.add_row(*(cells[c] for c in columns))
    out.print(table)
    if reasons:  # no room for a column: below the table, one per line
        out.print("\n[bold]REASON[/]")
        for job_id, text in reasons:
            out.print(f"{job_id}  {text}", highlight=False)


def _width(jobs: list[dict[str, Any]], columns: list[str], array: str | None) -> int:
    """How wide the table is without a REASON column (the widest cell of each column)."""
    values = {
        "JOB ID": [j["jobId"] for j in jobs],
        "NAME": [j.get("jobName", "") for j in jobs],
        "QUEUE": [j.get("jobQueue") or "-" for j in jobs],
        "INDEX": ["00000"],
        "STATUS": ["SUCCEEDED"],
        "ARRAY": [array_progress(j) for j in jobs],
        "CREATED": ["59.9s ago"],
        "RAN": ["59.9s"],
        "EXIT": ["EXIT"],
    }
    return sum(max(len(c), *(len(v) for v in values[c])) + 2 for c in columns)


# ---- describe --------------------------------------------------------------------------------


def _requirements(container: dict[str, Any]) -> str:
    reqs = {r["type"]: r["value"] for r in container.get("resourceRequirements") or []}
    vcpu = reqs.get("VCPU", container.get("vcpus"))
    mem = reqs.get("MEMORY", container.get("memory"))
    parts = [
        f"{vcpu} vCPU" if vcpu else "1 vCPU (default)",
        f"{mem} MiB" if mem else "2048 MiB (default)",
    ]
    if reqs.get("GPU"):
        parts.append(f"{reqs['GPU']} GPU")
    return ", ".join(parts)


def render_job(job: dict[str, Any], explained: dict[str, Any] | None = None) -> Panel:
    """The job as DescribeJobs has it; ``explained`` (the server's explain document) adds
    who its attempts ran as and, for a failure on a permission, how to grant access."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    container = job.get("container") or {}
    rows: list[tuple[str, str]] = [
        (
            "status",
            styled(job["status"]) + (f"  {job['statusReason']}" if job.get("statusReason") else ""),
        ),
        ("queue", name_of(job.get("jobQueue"))),
        ("definition", name_of(job.get("jobDefinition"))),
        ("created", clock(job.get("createdAt"))),
        ("started", clock(job.get("startedAt"))),
        ("stopped", clock(job.get("stoppedAt"))),
        ("run time", run_time(job)),
    ]
    props = job.get("arrayProperties") or {}
    if props.get("size"):
        rows.append(("array", f"{props['size']} children: {array_progress(job)}"))
    elif "index" in props:
        rows.append(("array index", str(props["index"])))
    if container.get("command"):
        rows.append(
            (
                "command",
                " ".join(json.dumps(a) if " " in a or not a else a for a in container["command"]),
            )
        )
    rows.append(("resources", _requirements(container)))
    env = container.get("environment") or []
    if env:
        rows.append(("environment", ", ".join(f"{e['name']}={e.get('value', '')}" for e in env)))
    if job.get("parameters"):
        rows.append(("parameters", ", ".join(f"{k}={v}" for k, v in job["parameters"].items())))
    for dep in job.get("dependsOn") or []:
        rows.append(
            ("depends on", f"{dep.get('jobId', '(previous child)')} {dep.get('type', '')}".strip())
        )
    retry = job.get("retryStrategy") or {}
    if retry.get("attempts"):
        rules = retry.get("evaluateOnExit") or []
        extra = f", {len(rules)} evaluateOnExit rule(s)" if rules else ""
        rows.append(("retries", f"up to {retry['attempts']} attempts{extra}"))
    if (job.get("timeout") or {}).get("attemptDurationSeconds"):
        rows.append(("timeout", f"{job['timeout']['attemptDurationSeconds']} s per attempt"))
    if job.get("isCancelled") or job.get("isTerminated"):
        rows.append(("stopped by", "cancel" if job.get("isCancelled") else "terminate"))
    if job.get("tags"):
        rows.append(("tags", ", ".join(f"{k}={v}" for k, v in job["tags"].items())))
    ran_as = (explained or {}).get("ranAs")
    if ran_as:
        rows.append(("ran as", ran_as))
    permission = (explained or {}).get("permission")
    if permission:
        rows.append(("permission", f"[red]{escape(permission['fix'])}[/]"))
    for k, v in rows:
        grid.add_row(k, v)
    parts: list[Any] = [grid]
    attempts = job.get("attempts") or []
    if attempts:
        t = Table(title="attempts", title_justify="left", box=None, header_style="bold")
        for col in ("#", "STARTED", "RAN", "EXIT", "REASON", "LOG STREAM"):
            t.add_column(col, overflow="fold")
        for i, a in enumerate(attempts, 1):
            c = a.get("container") or {}
            ran = (
                span(a["stoppedAt"] - a["startedAt"])
                if a.get("startedAt") and a.get("stoppedAt")
                else "-"
            )
            t.add_row(
                str(i),
                clock(a.get("startedAt")),
                ran,
                "-" if c.get("exitCode") is None else str(c["exitCode"]),
                a.get("statusReason") or c.get("reason") or "",
                c.get("logStreamName") or "-",
            )
        parts.append(t)
    from rich.console import Group

    title = f"[bold]{job.get('jobName', '')}[/]  {job['jobId']}"
    return Panel(Group(*parts), title=title, title_align="left")


def _explained(api: Api, job: dict[str, Any]) -> dict[str, Any] | None:
    """The explain document of a job that ran (batchyard's own endpoint: who its attempts ran
    as); None from a server without it."""
    if not job.get("attempts"):
        return None
    try:
        return api.explain(job["jobId"])
    except Failed:
        return None


@handle_errors
def describe(
    job_ids: Annotated[
        list[str],
        typer.Argument(
            help="Job ids (an array child is PARENT:INDEX).", metavar="JOB...", show_default=False
        ),
    ],
    output: OutputOpt = Output.table,
    endpoint: EndpointOpt = None,
) -> None:
    """Show a job: status and reason, command, resources, dependencies, attempts."""
    api = Api(endpoint)
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(job_ids), 100):
        for j in api.batch.describe_jobs(jobs=job_ids[i : i + 100])["jobs"]:
            found[j["jobId"]] = j
    missing = [j for j in job_ids if j not in found]
    if output == Output.json:
        print_json([found[j] for j in job_ids if j in found])
    else:
        # who the attempts ran as comes from explain: one more request, so for one job only
        one = len(job_ids) == 1
        for j in job_ids:
            if j in found:
                out.print(render_job(found[j], _explained(api, found[j]) if one else None))
    if missing:
        raise Failed(f"no such job: {', '.join(missing)}")


# ---- cancel / terminate ----------------------------------------------------------------------


def _stop(api: Api, job_ids: list[str], reason: str, terminate: bool, wait_: bool) -> int:
    before: dict[str, dict[str, Any]] = {}
    for i in range(0, len(job_ids), 100):
        for j in api.batch.describe_jobs(jobs=job_ids[i : i + 100])["jobs"]:
            before[j["jobId"]] = j
    code = EXIT_OK
    acted: list[str] = []
    for job_id in job_ids:
        job = before.get(job_id)
        if job is None:
            err.print(f"[red]{job_id}[/]: no such job")
            code = EXIT_FAILED
            continue
        if job["status"] in FINISHED:
            out.print(f"{job_id}: already {job['status']}; nothing to do", highlight=False)
            continue
        if terminate:
            api.batch.terminate_job(jobId=job_id, reason=reason)
        else:
            api.batch.cancel_job(jobId=job_id, reason=reason)
        acted.append(job_id)
    if wait_ and acted:
        from batchyard.cli.progress import wait

        wait(api.batch, acted, err, timeout=120)
    after = {j["jobId"]: j for j in api.batch.describe_jobs(jobs=acted)["jobs"]} if acted else {}
    for job_id in acted:
        job = after[job_id]
        status = job["status"]
        if status == "FAILED":
            out.print(
                f"{job_id}: {'terminated' if terminate else 'cancelled'} (FAILED)", highlight=False
            )
        elif terminate:
            out.print(
                f"{job_id}: termination requested; it is {status} and stops shortly "
                "(--wait waits for it)",
                highlight=False,
            )
        elif status in ("STARTING", "RUNNING"):
            err.print(
                f"[yellow]{job_id}[/]: not cancelled: it is already {status} and cancel stops "
                f"only jobs that have not started; use `batchyard terminate {job_id}`"
            )
            code = EXIT_FAILED
        else:
            out.print(f"{job_id}: cancel requested ({status})", highlight=False)
    return code


ReasonOpt = Annotated[
    str, typer.Option("--reason", "-r", help="Recorded as the job's statusReason.")
]


@handle_errors
def cancel(
    job_ids: Annotated[
        list[str], typer.Argument(help="Job ids.", metavar="JOB...", show_default=False)
    ],
    reason: ReasonOpt = "Cancelled with batchyard cancel",
    endpoint: EndpointOpt = None,
) -> None:
    """Cancel jobs that have not started yet (use terminate for running ones).

    Exits 1 if a job does not exist or had already started."""
    raise typer.Exit(_stop(Api(endpoint), job_ids, reason, terminate=False, wait_=False))


@handle_errors
def terminate(
    job_ids: Annotated[
        list[str], typer.Argument(help="Job ids.", metavar="JOB...", show_default=False)
    ],
    reason: ReasonOpt = "Terminated with batchyard terminate",
    wait_: Annotated[
        bool, typer.Option("--wait", "-w", help="Wait until the jobs have stopped.")
    ] = False,
    endpoint: EndpointOpt = None,
) -> None:
    """Stop jobs whatever their status: running ones get SIGTERM, then SIGKILL."""
    raise typer.Exit(_stop(Api(endpoint), job_ids, reason, terminate=True, wait_=wait_))
