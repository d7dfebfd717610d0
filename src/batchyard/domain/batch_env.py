"""The ``AWS_BATCH_*`` variables a job's container gets, as AWS Batch sets them: built in one
place so that what the scheduler launches and what the dashboard shows a job had are the same.
"""

from __future__ import annotations


def batch_environment(
    job_id: str,
    queue: str,
    compute_environment: str | None,
    attempt: int | None,
    array_index: int | None = None,
    array_size: int | None = None,
) -> dict[str, str]:
    """``AWS_BATCH_JOB_ID``, ``_JQ_NAME``, ``_CE_NAME`` and ``_JOB_ATTEMPT`` (the last two once
    an attempt exists), and for an array child its ``_JOB_ARRAY_INDEX`` and ``_SIZE``."""
    env = {"AWS_BATCH_JOB_ID": job_id, "AWS_BATCH_JQ_NAME": queue}
    if compute_environment is not None:
        env["AWS_BATCH_CE_NAME"] = compute_environment
    if attempt is not None:
        env["AWS_BATCH_JOB_ATTEMPT"] = str(attempt)
    if array_index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(array_index)
        if array_size is not None:
            env["AWS_BATCH_JOB_ARRAY_SIZE"] = str(array_size)
    return env
