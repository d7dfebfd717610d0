"""Array parents: their status follows their children (AWS: SUBMITTED, PENDING, then SUCCEEDED
once every child succeeded, or FAILED once all are done and one failed)."""

from __future__ import annotations

from batchyard.domain.jobs import TERMINAL, JobStatus


def apply_delta(counts: dict[str, int], delta: dict[str, int]) -> dict[str, int]:
    out = dict(counts)
    for status, n in delta.items():
        out[status] = out.get(status, 0) + n
    return out


def outcome(counts: dict[str, int], size: int) -> tuple[JobStatus, str] | None:
    """The parent's final status and reason once no child is left to run, else None."""
    done = sum(counts.get(s.value, 0) for s in TERMINAL)
    if done < size:
        return None
    failed = counts.get(JobStatus.FAILED.value, 0)
    if failed:
        return JobStatus.FAILED, f"Array Child Job failed: {failed} of {size} children failed"
    return JobStatus.SUCCEEDED, f"All {size} array children succeeded"
