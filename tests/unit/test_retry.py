"""The retry decision: AWS's rules, checked by example and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchyard.domain.retry import AttemptOutcome, decide, validate
from batchyard.errors import InvalidRequest


def out(
    code: int | None = 1,
    attempt: int = 1,
    reason: str | None = None,
    status: str | None = "Essential container in task exited",
    retryable: bool = True,
) -> AttemptOutcome:
    return AttemptOutcome(code, reason, status, attempt, retryable)


def test_no_strategy_means_one_attempt():
    assert decide(None, out()).retry is False


def test_retries_until_attempts_used():
    s = {"attempts": 3}
    assert decide(s, out(attempt=1)).retry
    assert decide(s, out(attempt=2)).retry
    assert not decide(s, out(attempt=3)).retry


def test_first_matching_rule_wins():
    s = {
        "attempts": 5,
        "evaluate_on_exit": [
            {"on_exit_code": "137", "action": "RETRY"},
            {"on_exit_code": "1*", "action": "EXIT"},
        ],
    }
    assert decide(s, out(code=137)).retry
    assert not decide(s, out(code=13)).retry
    s["evaluate_on_exit"].reverse()
    assert not decide(s, out(code=137)).retry
    assert decide(s, out(code=2)).retry  # nothing matched: AWS retries


def test_all_conditions_of_a_rule_must_match():
    s = {
        "attempts": 5,
        "evaluate_on_exit": [{"on_exit_code": "1", "on_reason": "Out*", "action": "EXIT"}],
    }
    assert decide(s, out(code=1, reason="Other")).retry
    assert not decide(s, out(code=1, reason="OutOfMemoryError: killed")).retry


def test_stopped_on_purpose_is_never_retried():
    assert not decide({"attempts": 10}, out(retryable=False)).retry


@given(st.integers(1, 10), st.integers(1, 12), st.one_of(st.none(), st.integers(0, 255)))
def test_never_more_attempts_than_allowed(attempts, attempt, code):
    decision = decide({"attempts": attempts}, out(code=code, attempt=attempt))
    if decision.retry:
        assert attempt < attempts


@given(
    st.lists(st.sampled_from(["RETRY", "EXIT", "retry", "exit"]), min_size=1, max_size=5),
    st.integers(0, 255),
)
def test_a_rule_matching_everything_decides(actions, code):
    rules = [{"on_exit_code": "*", "action": a} for a in actions]
    d = decide({"attempts": 10, "evaluate_on_exit": rules}, out(code=code, attempt=1))
    assert d.retry == (actions[0].upper() == "RETRY")


@pytest.mark.parametrize(
    "strategy, message",
    [
        ({"attempts": 0}, "between 1 and 10"),
        ({"attempts": 11}, "between 1 and 10"),
        ({"evaluate_on_exit": [{"action": "RETRY"}]}, "needs"),
        ({"attempts": 2, "evaluate_on_exit": [{"action": "RETRY"}] * 6}, "at most 5"),
        (
            {"attempts": 2, "evaluate_on_exit": [{"action": "RETRY", "on_exit_code": "1a"}]},
            "onExitCode",
        ),
        ({"attempts": 2, "evaluate_on_exit": [{"action": "MAYBE"}]}, "RETRY or EXIT"),
    ],
)
def test_validation(strategy, message):
    with pytest.raises(InvalidRequest, match=message):
        validate(strategy)
