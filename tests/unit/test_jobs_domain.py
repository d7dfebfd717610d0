"""Pure job rules: the transition table, parameter substitution, dependencies, arrays."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from batchyard.domain.arrays import outcome
from batchyard.domain.dependencies import readiness
from batchyard.domain.jobs import TERMINAL, TRANSITIONS, JobStatus, allowed, split_child_id
from batchyard.domain.params import substitute

S = JobStatus


def test_terminal_statuses_go_nowhere():
    for s in TERMINAL:
        assert not TRANSITIONS[s]


def test_aws_lifecycle_is_allowed():
    path = [None, S.SUBMITTED, S.PENDING, S.RUNNABLE, S.STARTING, S.RUNNING, S.SUCCEEDED]
    assert all(allowed(a, b) for a, b in itertools.pairwise(path))
    assert allowed(S.RUNNING, S.RUNNABLE)  # a retry
    assert not allowed(S.RUNNING, S.PENDING)
    assert not allowed(S.SUCCEEDED, S.FAILED)


def test_substitution_is_argv_only():
    cmd = ["echo", "Ref::a", "--x=Ref::b", "Ref::missing", "Ref::a-b"]
    assert substitute(cmd, {"a": "1; rm -rf /", "b": "$(two)"}) == [
        "echo",
        "1; rm -rf /",
        "--x=$(two)",
        "Ref::missing",
        "Ref::a-b",
    ]


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True), st.text(max_size=20), max_size=5
    )
)
def test_substitution_keeps_the_argument_count(params):
    cmd = [f"Ref::{k}" for k in params] + ["plain"]
    out = substitute(cmd, params)
    assert len(out) == len(cmd)
    assert out[: len(params)] == list(params.values())


def test_readiness():
    assert readiness([]).status == S.RUNNABLE
    assert readiness([("a", S.SUCCEEDED)]).status == S.RUNNABLE
    r = readiness([("a", S.SUCCEEDED), ("b", S.RUNNING)])
    assert r.status == S.PENDING and "b" in r.reason
    r = readiness([("a", S.RUNNING), ("b", S.FAILED)])
    assert r.status == S.FAILED and "b" in r.reason


def test_array_outcome():
    assert outcome({"SUCCEEDED": 2, "RUNNING": 1}, 3) is None
    assert outcome({"SUCCEEDED": 3}, 3)[0] == S.SUCCEEDED
    status, reason = outcome({"SUCCEEDED": 2, "FAILED": 1}, 3)
    assert status == S.FAILED and "1 of 3" in reason


def test_child_ids():
    assert split_child_id("abc:12") == ("abc", 12)
    assert split_child_id("abc") is None
    assert split_child_id("abc:x") is None
