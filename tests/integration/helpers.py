"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time
from typing import Any


def wait_for(
    predicate: Any, timeout: float = 30.0, interval: float = 0.02, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def make_ce(batch: Any, name: str, max_vcpus: int = 2, state: str = "ENABLED", **extra: Any) -> str:
    """Create a managed compute environment and wait until it is VALID; returns its ARN."""
    arn = batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        state=state,
        computeResources={"type": "EC2", "maxvCpus": max_vcpus, "minvCpus": 0},
        **extra,
    )["computeEnvironmentArn"]
    wait_for(
        lambda: (
            batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][
                0
            ]["status"]
            == "VALID"
        ),
        what=f"compute environment {name} to become VALID",
    )
    return arn


def make_queue(batch: Any, name: str, ces: list[str], priority: int = 1, **extra: Any) -> str:
    arn = batch.create_job_queue(
        jobQueueName=name,
        priority=priority,
        computeEnvironmentOrder=[
            {"order": i + 1, "computeEnvironment": ce} for i, ce in enumerate(ces)
        ],
        **extra,
    )["jobQueueArn"]
    wait_for(
        lambda: batch.describe_job_queues(jobQueues=[name])["jobQueues"][0]["status"] == "VALID",
        what=f"job queue {name} to become VALID",
    )
    return arn


def client_error(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run a call expected to fail; return botocore's error dict (Code, Message) and status."""
    from botocore.exceptions import ClientError

    try:
        call(*args, **kwargs)
    except ClientError as e:
        err = dict(e.response["Error"])
        err["Status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
        return err
    raise AssertionError(f"{getattr(call, '__name__', call)} succeeded but was expected to fail")


ACCOUNT_PREFIX = "arn:aws:batch:us-east-1:000000000000:"


def arn(kind: str, resource: str) -> str:
    """The ARN the test servers (region us-east-1, account 000000000000) give a resource."""
    return f"{ACCOUNT_PREFIX}{kind}/{resource}"


def paginate(call: Any, key: str, page_size: int, **kwargs: Any) -> list[Any]:
    """Every item of a paginated listing, fetched ``page_size`` at a time; checks each page."""
    items: list[Any] = []
    token = None
    while True:
        page = call(maxResults=page_size, **kwargs, **({"nextToken": token} if token else {}))
        assert len(page[key]) <= page_size
        items += page[key]
        token = page.get("nextToken")
        if not token:
            return items
        assert page[key], "a page with a nextToken must not be empty"


def tamper(token: str) -> str:
    """The token with its first character changed: what an edited token looks like."""
    return ("B" if token[0] == "A" else "A") + token[1:]


def describe_ce(batch: Any, name: str) -> dict[str, Any] | None:
    found = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"]
    return found[0] if found else None


def describe_queue(batch: Any, name: str) -> dict[str, Any] | None:
    found = batch.describe_job_queues(jobQueues=[name])["jobQueues"]
    return found[0] if found else None


def settled_queue(batch: Any, name: str) -> dict[str, Any]:
    """Wait until the queue is VALID again after a change; returns its description."""

    def valid() -> dict[str, Any] | None:
        queue = describe_queue(batch, name)
        return queue if queue is not None and queue["status"] == "VALID" else None

    return wait_for(valid, what=f"job queue {name} to become VALID")


def delete_queue(batch: Any, name: str) -> None:
    """Disable, delete and wait until the queue is gone."""
    batch.update_job_queue(jobQueue=name, state="DISABLED")
    batch.delete_job_queue(jobQueue=name)
    wait_for(lambda: describe_queue(batch, name) is None, what=f"job queue {name} to go")


def delete_ce(batch: Any, name: str) -> None:
    """Disable, delete and wait until the compute environment is gone."""
    batch.update_compute_environment(computeEnvironment=name, state="DISABLED")
    batch.delete_compute_environment(computeEnvironment=name)
    wait_for(lambda: describe_ce(batch, name) is None, what=f"compute environment {name} to go")


CONTAINER = {
    "image": "busybox",
    "command": ["echo", "Ref::message"],
    "resourceRequirements": [
        {"type": "VCPU", "value": "1"},
        {"type": "MEMORY", "value": "512"},
    ],
}


# What AWS answers for a container's lists left unset (docs/api-compatibility.md, "Response
# defaults"): {**EMPTY_CONTAINER, **what_was_registered} is what DescribeJobDefinitions shows.
_CONTAINER_LISTS = "command environment mountPoints ulimits volumes resourceRequirements secrets"
EMPTY_CONTAINER: dict[str, Any] = {k: [] for k in _CONTAINER_LISTS.split()}
EMPTY_EKS_CONTAINER: dict[str, Any] = {k: [] for k in ("command", "args", "env", "volumeMounts")}


def register_jd(batch: Any, name: str, **extra: Any) -> dict[str, Any]:
    """Register a small container job definition; returns RegisterJobDefinition's answer."""
    extra.setdefault("containerProperties", CONTAINER)
    return batch.register_job_definition(jobDefinitionName=name, type="container", **extra)


# ---- jobs ------------------------------------------------------------------------------

TERMINAL = {"SUCCEEDED", "FAILED"}


def _reachable() -> dict[str | None, set[str]]:
    from batchyard.domain.jobs import TRANSITIONS

    graph = {k.value if k else None: {v.value for v in vs} for k, vs in TRANSITIONS.items()}
    closure: dict[str | None, set[str]] = {}
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo += graph[s]
        closure[start] = seen
    return closure


REACHABLE = _reachable()


def wait_job(
    batch: Any, job_id: str, until: set[str] | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll a job until its status is in ``until`` (default: finished). Every status seen must
    be reachable from the one seen before it through the allowed transitions (polling may
    miss steps in between, never go where the table does not lead)."""
    until = until or TERMINAL
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
        assert jobs, f"job {job_id} is not known to the server"
        job = jobs[0]
        status = job["status"]
        if not seen or seen[-1] != status:
            prev = seen[-1] if seen else None
            assert prev is None or status in REACHABLE[prev], (
                f"{job_id}: {prev} -> {status} is not allowed (seen {seen})"
            )
            seen.append(status)
        if status in until:
            job["_seen"] = seen
            return job
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job_id} still {status} after {timeout} s (seen {seen}; reason {job.get('statusReason')})"
            )
        time.sleep(0.02)


def setup_queue(
    batch: Any, unique: Any, max_vcpus: int = 2, priority: int = 1, **queue_extra: Any
) -> str:
    """A fresh compute environment and queue; returns the queue name."""
    ce = unique("ce")
    make_ce(batch, ce, max_vcpus=max_vcpus)
    queue = unique("q")
    make_queue(batch, queue, [ce], priority=priority, **queue_extra)
    return queue


def register(
    batch: Any,
    unique: Any,
    command: list[str],
    vcpus: str = "0.5",
    memory: str = "64",
    container: dict[str, Any] | None = None,
    **extra: Any,
) -> str:
    """A fresh container job definition running ``command`` (``container``: more of its
    containerProperties); returns its name."""
    name = unique("jd")
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "busybox",
            "command": command,
            "resourceRequirements": [
                {"type": "VCPU", "value": vcpus},
                {"type": "MEMORY", "value": memory},
            ],
            **(container or {}),
        },
        **extra,
    )
    return name


def assert_children_ran_once(batch: Any, parent: str, size: int) -> None:
    """Every child of the array SUCCEEDED on its first and only attempt (exit 0)."""
    for i in range(0, size, 100):
        ids = [f"{parent}:{k}" for k in range(i, min(i + 100, size))]
        for j in batch.describe_jobs(jobs=ids)["jobs"]:
            assert j["status"] == "SUCCEEDED", j["jobId"]
            assert [a["container"]["exitCode"] for a in j["attempts"]] == [0], j["jobId"]


def log_lines(server: Any, job: dict[str, Any], attempt: int = -1) -> list[str]:
    stream = job["attempts"][attempt]["container"]["logStreamName"]
    logs = server.client("logs")
    events = logs.get_log_events(
        logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True
    )["events"]
    return [e["message"] for e in events]


def all_log_events(server: Any, stream: str) -> list[dict[str, Any]]:
    """Every event of a log stream, read from its head through GetLogEvents, page by page."""
    logs = server.client("logs")
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = logs.get_log_events(
            logGroupName="/aws/batch/job",
            logStreamName=stream,
            startFromHead=True,
            **({"nextToken": token} if token else {}),
        )
        if not page["events"]:
            return events
        events += page["events"]
        token = page["nextForwardToken"]
