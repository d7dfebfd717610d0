"""Jobs: statuses, the one table of allowed transitions, and the job entity.

AWS Batch's lifecycle is SUBMITTED → PENDING → RUNNABLE → STARTING → RUNNING → SUCCEEDED or
FAILED. A retry sends a failed attempt back to RUNNABLE; cancelling fails a job that has not
started; a dependency that fails fails its dependents. An array parent moves SUBMITTED →
PENDING → SUCCEEDED | FAILED while its children do the work (AWS's rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from batchyard.errors import Conflict


class JobStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


S = JobStatus
TERMINAL = frozenset({S.SUCCEEDED, S.FAILED})
ACTIVE = frozenset(set(S) - TERMINAL)
NOT_STARTED = frozenset({S.SUBMITTED, S.PENDING, S.RUNNABLE})
STARTED = frozenset({S.STARTING, S.RUNNING})

# The allowed transitions, and the only ones. None is "not yet a job".
TRANSITIONS: dict[JobStatus | None, frozenset[JobStatus]] = {
    None: frozenset({S.SUBMITTED, S.PENDING, S.RUNNABLE}),
    S.SUBMITTED: frozenset({S.PENDING, S.RUNNABLE, S.FAILED}),
    S.PENDING: frozenset({S.RUNNABLE, S.SUCCEEDED, S.FAILED}),
    S.RUNNABLE: frozenset({S.STARTING, S.FAILED}),
    S.STARTING: frozenset({S.RUNNING, S.RUNNABLE, S.FAILED}),
    S.RUNNING: frozenset({S.RUNNABLE, S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
}


# A multi-node parallel job is retried as a whole: its nodes, which ended with the attempt,
# start over (AWS: "each new attempt ... updates the corresponding attempt of its nodes").
NODE_TRANSITIONS: dict[JobStatus | None, frozenset[JobStatus]] = {
    **TRANSITIONS,
    S.SUCCEEDED: frozenset({S.RUNNABLE}),
    S.FAILED: frozenset({S.RUNNABLE}),
}


def allowed(src: JobStatus | None, dst: JobStatus, node: bool = False) -> bool:
    return dst in (NODE_TRANSITIONS if node else TRANSITIONS)[src]


def check_transition(
    job_id: str, src: JobStatus | None, dst: JobStatus, node: bool = False
) -> None:
    if not allowed(src, dst, node):
        raise Conflict(f"job {job_id} cannot go from {src} to {dst}")


@dataclass(slots=True)
class Job:
    """A job row: a single job, an array parent, a materialized array child or an MNP node."""

    seq: int
    id: str
    name: str
    queue_id: int
    definition_id: int
    status: JobStatus
    status_reason: str | None
    created_at: int
    started_at: int | None
    stopped_at: int | None
    updated_at: int
    parent_seq: int | None
    array_size: int | None
    array_index: int | None
    num_nodes: int | None
    node_index: int | None
    rank: int
    root_seq: int
    pos: int
    scheduling_priority: int | None
    share_identifier: str | None
    vcpus: float
    memory_mib: int
    gpus: int
    attempt_count: int
    is_cancelled: bool
    is_terminated: bool
    array_counts: dict[str, int] | None
    tags: dict[str, str]
    spec: dict[str, Any] = field(default_factory=dict)


def child_id(parent_id: str, index: int) -> str:
    return f"{parent_id}:{index}"


def node_id(parent_id: str, index: int) -> str:
    return f"{parent_id}#{index}"


def split_child_id(job_id: str) -> tuple[str, int] | None:
    """``"<parent>:<index>"`` -> (parent, index); None for any other id."""
    parent, sep, index = job_id.rpartition(":")
    if not sep or not index.isdigit():
        return None
    return parent, int(index)


def empty_counts() -> dict[str, int]:
    return {s.value: 0 for s in JobStatus}
