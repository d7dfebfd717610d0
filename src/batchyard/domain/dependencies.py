"""When may a job run? A pure reading of its dependencies' statuses.

AWS's rules: a job stays PENDING until every job it depends on has SUCCEEDED; if one of them
FAILED, the job fails too. An array child waits for its parent's dependencies and for its own
(N_TO_N: the same index of another array; SEQUENTIAL without a job id: the previous index).
SEQUENTIAL with a job id is a plain dependency on that job, for an array the whole array's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from batchyard.domain.jobs import JobStatus

MAX_DEPENDENCIES = 20


@dataclass(frozen=True, slots=True)
class Readiness:
    status: JobStatus  # RUNNABLE, PENDING or FAILED
    reason: str | None


def readiness(deps: Iterable[tuple[str, JobStatus]]) -> Readiness:
    """``deps``: (job id, status) of every job this one waits for."""
    waiting = []
    for job_id, status in deps:
        if status == JobStatus.FAILED:
            return Readiness(JobStatus.FAILED, f"Dependent job {job_id} failed")
        if status != JobStatus.SUCCEEDED:
            waiting.append(job_id)
    if waiting:
        shown = ", ".join(waiting[:3]) + (
            f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
        )
        return Readiness(JobStatus.PENDING, f"Waiting for dependencies: {shown}")
    return Readiness(JobStatus.RUNNABLE, None)
