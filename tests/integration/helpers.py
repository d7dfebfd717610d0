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
