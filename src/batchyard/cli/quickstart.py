"""``batchyard quickstart``: a working installation in one command.

Starts the server in the background (unless one already answers), creates a compute
environment and a job queue named ``quickstart`` on this host, and says what to do next.
"""

from __future__ import annotations

import os
import time
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
