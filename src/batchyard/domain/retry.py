"""Retry strategies: validation, and the decision after a failed attempt (a pure function).

AWS's rules: ``attempts`` is 1..10 (1 means no retry); up to 5 ``evaluateOnExit`` rules, the
first whose every given condition matches decides RETRY or EXIT; conditions are glob patterns
that may end in ``*`` (a prefix match); when no rule matches, the job is retried (if attempts
remain). A job stopped by its timeout or by TerminateJob/CancelJob is never retried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from batchyard.errors import InvalidRequest

MAX_ATTEMPTS = 10
MAX_RULES = 5
_EXIT_CODE = re.compile(r"[0-9]*\*?")  # fullmatch: "$" would accept a trailing newline
_REASON = re.compile(r"[A-Za-z0-9.:\s]*\*?")


def validate(strategy: dict[str, Any] | None, field: str = "retryStrategy") -> None:
    if not strategy:
        return
    attempts = strategy.get("attempts")
    rules = strategy.get("evaluate_on_exit") or []
    if attempts is not None and not 1 <= attempts <= MAX_ATTEMPTS:
        raise InvalidRequest(
            f"{field}.attempts is {attempts}; it must be between 1 and {MAX_ATTEMPTS}"
        )
    if rules and attempts is None:
        raise InvalidRequest(f"{field}.evaluateOnExit needs {field}.attempts to be set too")
    if len(rules) > MAX_RULES:
        raise InvalidRequest(f"{field}.evaluateOnExit has {len(rules)} rules; at most {MAX_RULES}")
    for i, rule in enumerate(rules):
        where = f"{field}.evaluateOnExit[{i}]"
        if rule.get("action", "").upper() not in ("RETRY", "EXIT"):
            raise InvalidRequest(f"{where}.action must be RETRY or EXIT")
        for key, wire, pattern, allowed in (
            ("on_exit_code", "onExitCode", _EXIT_CODE, "digits"),
            ("on_reason", "onReason", _REASON, "letters, numbers, periods, colons and spaces"),
            (
                "on_status_reason",
                "onStatusReason",
                _REASON,
                "letters, numbers, periods, colons and spaces",
            ),
        ):
            value = rule.get(key)
            if value is None:
                continue
            if len(value) > 512 or not pattern.fullmatch(value):
                raise InvalidRequest(
                    f"{where}.{wire} {value!r} is not a valid pattern: up to 512 {allowed}, "
                    "optionally ending with *"
                )


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What is known about a failed attempt when deciding whether to retry it."""

    exit_code: int | None
    reason: str | None  # the container's reason, e.g. "OutOfMemoryError: Container killed..."
    status_reason: str | None  # the job's statusReason, e.g. "Essential container in task exited"
    attempt: int  # 1-based number of the attempt that failed
    retryable: bool = True  # False after a timeout, TerminateJob or CancelJob


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    why: str


def _glob(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _matches(rule: dict[str, Any], outcome: AttemptOutcome) -> bool:
    exit_code = None if outcome.exit_code is None else str(outcome.exit_code)
    conditions = (
        (rule.get("on_exit_code"), exit_code),
        (rule.get("on_reason"), outcome.reason),
        (rule.get("on_status_reason"), outcome.status_reason),
    )
    return all(_glob(p, v) for p, v in conditions if p is not None)


def decide(strategy: dict[str, Any] | None, outcome: AttemptOutcome) -> RetryDecision:
    """Retry the job, or let it fail? The ``why`` is a sentence for ``explain`` and logs."""
    attempts = (strategy or {}).get("attempts") or 1
    if not outcome.retryable:
        return RetryDecision(False, "the attempt was stopped on purpose, which is never retried")
    if outcome.attempt >= attempts:
        return RetryDecision(
            False, f"attempt {outcome.attempt} of {attempts} allowed by the retry strategy failed"
        )
    for i, rule in enumerate((strategy or {}).get("evaluate_on_exit") or []):
        if _matches(rule, outcome):
            action = rule["action"].upper()
            return RetryDecision(
                action == "RETRY", f"evaluateOnExit rule {i + 1} matched and says {action}"
            )
    return RetryDecision(
        True, f"attempt {outcome.attempt} of {attempts} failed and no evaluateOnExit rule said EXIT"
    )
