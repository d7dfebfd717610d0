"""``batchyard quickstart``: a working installation in one command.

Starts the server in the background (unless one already answers), creates a compute
environment and a job queue named ``quickstart`` on this host, then runs a real workload on
them (:func:`run_workload`): an array job counts the Python standard library's source shard
by shard, a dependent job merges the shards and prints the result; then it says what to do
next.
"""

from __future__ import annotations

import os
import pwd
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from botocore.exceptions import ClientError

from batchyard.cli.client import client

NAME = "quickstart"


def _wait_valid(describe: Any, key: str, name: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        items = describe()[key]
        if items and items[0]["status"] in ("VALID", "INVALID"):
            return items[0]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not become VALID within {timeout:.0f} s")
        time.sleep(0.05)


def ensure_queue(endpoint: str) -> str:
    """Create (or reuse) the quickstart compute environment and queue; returns the queue ARN."""
    batch = client("batch", endpoint)
    if not batch.describe_compute_environments(computeEnvironments=[NAME])["computeEnvironments"]:
        batch.create_compute_environment(
            computeEnvironmentName=NAME,
            type="MANAGED",
            computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": os.cpu_count() or 1},
            tags={"batchyard:provider": "local"},
        )
    ce = _wait_valid(
        lambda: batch.describe_compute_environments(computeEnvironments=[NAME]),
        "computeEnvironments",
        "the quickstart compute environment",
    )
    if ce["status"] != "VALID":
        raise RuntimeError(f"compute environment {NAME} is INVALID: {ce.get('statusReason')}")
    typer.echo(f"compute environment {NAME}: {ce['statusReason']}")
    queues = batch.describe_job_queues(jobQueues=[NAME])["jobQueues"]
    if not queues:
        try:
            batch.create_job_queue(
                jobQueueName=NAME,
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": NAME}],
            )
        except ClientError as e:  # created meanwhile by someone else: fine
            if "already exists" not in str(e):
                raise
    queue = _wait_valid(
        lambda: batch.describe_job_queues(jobQueues=[NAME]), "jobQueues", "the quickstart queue"
    )
    typer.echo(f"job queue {NAME}: {queue['status']} ({queue['jobQueueArn']})")
    return queue["jobQueueArn"]


# ---- the workload ---------------------------------------------------------------------------

COUNT, MERGE = "quickstart-count", "quickstart-merge"
SHARDS = 8


def workspace() -> Path:
    """Where the workload's script and each run's files live: a directory of ours under the
    temporary directory that the jobs can reach. (Not the data dir: the server keeps that
    to itself, and jobs may run as another user; see :func:`_shared`.)"""
    base = Path(tempfile.gettempdir()) / f"batchyard-quickstart-{os.geteuid()}"
    base.mkdir(mode=0o755, exist_ok=True)
    st = base.lstat()
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise RuntimeError(f"{base} is not a directory of this user's; remove it and retry")
    os.chmod(base, 0o755)
    script = base / "workload.py"
    source = Path(__file__).with_name("quickstart_workload.py").read_text()
    if not script.exists() or script.read_text() != source:
        tmp = base / ".workload.py.tmp"
        tmp.write_text(source)
        os.chmod(tmp, 0o644)
        tmp.replace(script)
    return base


def _shared(path: Path, run_as: str | None) -> None:
    """Let the jobs write into ``path``. A server running as root runs jobs as another user
    (``run_as``, by default each job a uid of its own in the group of ``batchyard-jobs``;
    docs/security.md): give that user's group the directory."""
    name = run_as or ("batchyard-jobs" if os.geteuid() == 0 else None)
    if name is None or name in ("root", "0"):
        return
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        return
    if entry.pw_uid == os.geteuid():
        return
    os.chown(path, -1, entry.pw_gid)
    os.chmod(path, 0o2770)


def interpreter() -> str:
    """The Python the jobs run: batchyard's own when any user may execute it, else the
    ``python3`` the job's user finds on its PATH (a job may run as another user, and
    batchyard's interpreter may live in a private home). The workload needs only the
    standard library."""
    path = Path(os.path.realpath(sys.executable))
    usable = all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])
    return sys.executable if usable else "python3"


def _definition(name: str, step: str, vcpus: str, script: Path) -> dict[str, Any]:
    command = [interpreter(), str(script), step, "--out", "Ref::out", "--shards", "Ref::shards"]
    return {
        "jobDefinitionName": name,
        "type": "container",
        "parameters": {"out": "", "shards": str(SHARDS)},
        "containerProperties": {
            "command": command,
            "resourceRequirements": [
                {"type": "VCPU", "value": vcpus},
                {"type": "MEMORY", "value": "256"},
            ],
        },
        "retryStrategy": {"attempts": 2},
        "tags": {"batchyard:example": "quickstart"},
    }


def ensure_definitions(batch: Any, script: Path) -> list[str]:
    """Register the workload's two job definitions through the stack machinery: a new
    revision only when they changed (a new interpreter path, say). Returns name:revision."""
    from batchyard.cli.stack.apply import Applier
    from batchyard.cli.stack.loader import from_data
    from batchyard.cli.stack.plan import Planner, Remote

    stack = from_data(
        {
            "jobDefinitions": [
                _definition(COUNT, "count", "0.5", script),
                _definition(MERGE, "merge", "1", script),
            ]
        }
    )
    changes = Planner(stack, Remote(batch)).plan_apply()
    applier = Applier(batch, stack, lambda _: None)
    applier.apply(changes)
    refs = []
    for c in changes:
        arn = applier.arns.get(c.name) or (c.current or {}).get("jobDefinitionArn", c.name)
        refs.append(arn.rsplit("/", 1)[-1])
    return refs


def run_workload(endpoint: str, console: Any, run_as: str | None = None) -> int:
    """Submit the array job and the merge that depends on it, show their progress, print the
    result; the exit code (0 when the merge SUCCEEDED)."""
    from batchyard.cli.common import Api
    from batchyard.cli.jobs import report_end
    from batchyard.cli.logs import LogReader
    from batchyard.cli.progress import wait

    api = Api(endpoint)
    batch = api.batch
    base = workspace()
    refs = ensure_definitions(batch, base / "workload.py")
    console.print(f"job definitions: {', '.join(refs)}", highlight=False)
    run = base / time.strftime("run-%Y%m%d-%H%M%S")
    run.mkdir(exist_ok=True)
    _shared(run, run_as)
    params = {"out": str(run), "shards": str(SHARDS)}
    count = batch.submit_job(
        jobName="count-stdlib",
        jobQueue=NAME,
        jobDefinition=COUNT,
        arrayProperties={"size": SHARDS},
        parameters=params,
    )["jobId"]
    merge = batch.submit_job(
        jobName="merge-counts",
        jobQueue=NAME,
        jobDefinition=MERGE,
        dependsOn=[{"jobId": count}],
        parameters=params,
    )["jobId"]
    console.print(
        f"\nCounting the Python standard library's source in {SHARDS} shards, then merging:\n"
        f"  array job {count}  count-stdlib, {SHARDS} children\n"
        f"  job       {merge}  merge-counts, depends on the array\n",
        highlight=False,
    )
    labels = {count: f"count, {SHARDS} shards", merge: "merge"}
    jobs = wait(batch, [count, merge], console, labels, timeout=600)
    if jobs[merge]["status"] != "SUCCEEDED":
        report_end(jobs[count] if jobs[count]["status"] == "FAILED" else jobs[merge])
        return 1
    console.print(f"\nResult (the output of job {merge}):\n", highlight=False)
    stream = jobs[merge]["attempts"][-1]["container"]["logStreamName"]
    LogReader(api, stream, timestamps=False).drain()
    console.print("\nWhat ran, and how to look at it:", highlight=False)
    hints = [
        (f"batchyard jobs --queue {NAME}", "the jobs, newest first"),
        (f"batchyard jobs --array {count}", f"the {SHARDS} shards"),
        (f"batchyard logs {count}:0", "the output of shard 0"),
        (f"batchyard describe {merge}", "one job in detail"),
        (f"batchyard explain {merge}", "why a job is (or was) where it is"),
        ("batchyard status", "queues and compute environments"),
        ("batchyard watch", "the same, live (q quits)"),
    ]
    width = max(len(c) for c, _ in hints) + 3
    for command, what in hints:
        console.print(f"  {command:<{width}}{what}", highlight=False, markup=False)
    console.print(
        f"Run your own:\n  batchyard submit --queue {NAME} --wait -- echo hello\n"
        f"The shards' files are in {run}",
        highlight=False,
        markup=False,
    )
    return 0


def closing(endpoint: str, stop: str) -> str:
    """What quickstart ends with: where the server and its dashboard are, the setting the
    other commands need when they would not find it by themselves, lines for the AWS
    clients that work as pasted, and how to stop it."""
    from batchyard.cli.startup import aws_clients, client_setting, dashboard

    lines = [
        f"batchyard keeps running in the background at {endpoint}.",
        f"The dashboard: {dashboard(endpoint)}",
    ]
    setting = client_setting(endpoint)
    if setting:
        lines += [
            "The other batchyard commands find this server with (in each new shell):",
            f"  {setting}",
        ]
    lines += ["Point any AWS Batch client at it, e.g."]
    lines += [f"  {line}" for line in aws_clients(endpoint)]
    lines += [f"Stop the server with: {stop}"]
    return "\n".join(lines)
