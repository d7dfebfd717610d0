"""Value rules shared by several resources; each failure is an :class:`InvalidRequest`
whose message names the field, shows the value and states the rule."""

from __future__ import annotations

import re

from batchyard.errors import InvalidRequest

# fullmatch, never match: "$" would also accept a trailing newline
_RESOURCE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
MAX_TAGS = 50


def resource_name(value: str, field: str) -> str:
    if not _RESOURCE_NAME.fullmatch(value):
        raise InvalidRequest(
            f"{field} {value!r} is not valid: use 1 to 128 letters, numbers, hyphens (-) and "
            "underscores (_)"
        )
    return value


def job_name(value: str, field: str = "jobName") -> str:
    if not _JOB_NAME.fullmatch(value):
        raise InvalidRequest(
            f"{field} {value!r} is not valid: use 1 to 128 letters, numbers, hyphens (-) and "
            "underscores (_), starting with a letter or number"
        )
    return value


def in_range(value: int | float, field: str, lo: int | float, hi: int | float) -> None:
    if not lo <= value <= hi:
        raise InvalidRequest(f"{field} is {value}; it must be between {lo} and {hi}")


def tags(value: dict[str, str], field: str = "tags") -> dict[str, str]:
    """AWS's tag rules: at most 50, keys 1-128 characters, values up to 256, no ``aws:``."""
    if len(value) > MAX_TAGS:
        raise InvalidRequest(f"{field} has {len(value)} tags; at most {MAX_TAGS} are allowed")
    for k, v in value.items():
        if not 1 <= len(k) <= 128:
            raise InvalidRequest(f"{field}: tag key {k!r} must be 1 to 128 characters long")
        if len(v) > 256:
            raise InvalidRequest(f"{field}: the value of tag {k!r} exceeds 256 characters")
        if k.lower().startswith("aws:"):
            raise InvalidRequest(
                f"{field}: tag key {k!r} uses the reserved prefix 'aws:'; choose another key"
            )
    return value
