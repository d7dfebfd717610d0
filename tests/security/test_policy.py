"""The policy evaluator: IAM's rules, by example and as properties over generated policies
(explicit deny always wins, default deny, allowing more never denies, order is irrelevant)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchyard.auth.policy import (
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    PolicyError,
    Resource,
    evaluate,
    parse_policy,
)

Q = "arn:aws:batch:us-east-1:000000000000:job-queue/"
JD = "arn:aws:batch:us-east-1:000000000000:job-definition/"


def policy(*statements: dict, name: str = "p") -> object:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)}, name)


def allow(action="*", resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action="*", resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# ---- by example -----------------------------------------------------------------------------


def test_default_deny():
    d = evaluate([], "batch:SubmitJob", [Resource(Q + "a")])
    assert not d.allowed and d.kind == IMPLICIT_DENY
    assert "no identity-based policy allows the batch:SubmitJob action" in d.explain("u")


def test_explicit_deny_beats_a_matching_allow():
    p = policy(allow(), deny("batch:SubmitJob", Q + "team-b-*", Sid="NoB"))
    d = evaluate([p], "batch:SubmitJob", [Resource(Q + "team-b-1")])
    assert d.kind == EXPLICIT_DENY
    assert "explicit deny" in d.explain("u") and "'NoB'" in d.explain("u")
    assert evaluate([p], "batch:SubmitJob", [Resource(Q + "team-a-1")]).allowed


def test_actions_match_case_insensitively_with_wildcards():
    p = policy(allow("batch:Describe*"), allow("logs:Get?ogEvents"))
    assert evaluate([p], "batch:DescribeJobs").allowed
    assert evaluate([p], "BATCH:describejobqueues").allowed
    assert evaluate([p], "logs:GetLogEvents").allowed
    assert not evaluate([p], "batch:SubmitJob").allowed


def test_resources_match_case_sensitively_and_across_separators():
    p = policy(allow("batch:*", "arn:aws:batch:*:*:job-queue/team-a-*"))
    assert evaluate([p], "batch:SubmitJob", [Resource(Q + "team-a-x/y")]).allowed
    assert not evaluate([p], "batch:SubmitJob", [Resource(Q + "TEAM-a-x")]).allowed


def test_every_resource_of_a_request_must_be_allowed():
    p = policy(allow("batch:SubmitJob", Q + "a"))
    both = [Resource(Q + "a"), Resource(JD + "d:1")]
    d = evaluate([p], "batch:SubmitJob", both)
    assert not d.allowed and d.resource == JD + "d:1"
    p2 = policy(allow("batch:SubmitJob", [Q + "a", JD + "*"]))
    assert evaluate([p2], "batch:SubmitJob", both).allowed


def test_a_job_is_covered_by_its_queue():
    job = Resource("arn:aws:batch:us-east-1:000000000000:job/123", (Q + "team-a-1",))
    assert evaluate(
        [policy(allow("batch:TerminateJob", Q + "team-a-*"))], "batch:TerminateJob", [job]
    ).allowed
    p = policy(allow(), deny("batch:TerminateJob", Q + "team-a-*"))
    assert evaluate([p], "batch:TerminateJob", [job]).kind == EXPLICIT_DENY


def test_not_action_and_not_resource():
    p = policy(
        {"Effect": "Allow", "NotAction": "batch:Delete*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "NotResource": Q + "mine"},
    )
    assert evaluate([p], "batch:SubmitJob", [Resource(Q + "mine")]).allowed
    assert not evaluate([p], "batch:DeleteJobQueue", [Resource(Q + "mine")]).allowed
    assert evaluate([p], "batch:SubmitJob", [Resource(Q + "other")]).kind == EXPLICIT_DENY


def test_policy_variables():
    p = policy(allow("batch:*", "arn:aws:batch:*:*:job-queue/${aws:username}-*"))
    r = [Resource(Q + "alice-etl")]
    assert evaluate([p], "batch:SubmitJob", r, {"aws:username": "alice"}).allowed
    assert not evaluate([p], "batch:SubmitJob", r, {"aws:username": "bob"}).allowed
    assert not evaluate([p], "batch:SubmitJob", r).allowed  # unresolved: matches nothing
    old = parse_policy(
        {"Version": "2008-10-17", "Statement": [allow("*", Q + "${aws:username}")]}, "old"
    )
    assert evaluate([old], "x:y", [Resource(Q + "${aws:username}")], {"aws:username": "a"}).allowed


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        (
            {"StringEquals": {"batch:ShareIdentifier": "blue"}},
            {"batch:ShareIdentifier": "blue"},
            True,
        ),
        (
            {"StringEquals": {"batch:ShareIdentifier": "blue"}},
            {"batch:ShareIdentifier": "red"},
            False,
        ),
        ({"StringEquals": {"batch:ShareIdentifier": "blue"}}, {}, False),
        ({"StringNotEquals": {"batch:ShareIdentifier": "blue"}}, {}, True),
        ({"StringEqualsIfExists": {"batch:ShareIdentifier": "blue"}}, {}, True),
        (
            {"StringLike": {"batch:ShareIdentifier": ["b*", "g?een"]}},
            {"batch:ShareIdentifier": "green"},
            True,
        ),
        ({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, {"aws:username": "alice"}, True),
        ({"Null": {"batch:ShareIdentifier": "true"}}, {}, True),
        ({"Null": {"batch:ShareIdentifier": "false"}}, {}, False),
        ({"NumericLessThan": {"aws:EpochTime": 100}}, {"aws:EpochTime": 99}, True),
        (
            {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2021-06-01T00:00:00Z"},
            True,
        ),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": False}, False),
        ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"aws:SourceIp": "127.0.0.1"}, True),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "127.0.0.1"}, True),
        (
            {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/a*"}},
            {"aws:PrincipalArn": "arn:aws:iam::0:user/al"},
            True,
        ),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost"]}},
            {"aws:TagKeys": ["team"]},
            True,
        ),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}},
            {"aws:TagKeys": ["team", "x"]},
            False,
        ),
        (
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}},
            {"aws:TagKeys": ["x", "team"]},
            True,
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, {}, False),
        (
            {"StringEquals": {"aws:RequestTag/team": "${aws:username}"}},
            {"aws:RequestTag/team": "al", "aws:username": "al"},
            True,
        ),
    ],
)
def test_conditions(condition, context, expected):
    p = policy(allow(Condition=condition))
    assert evaluate([p], "batch:SubmitJob", [Resource(Q + "a")], context).allowed is expected


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{", "not valid JSON"),
        ({"Statement": []}, "Statement"),
        ({"Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}}, "Effect"),
        ({"Statement": {"Effect": "Allow", "Resource": "*"}}, "Action"),
        ({"Statement": {"Effect": "Allow", "Action": "*"}}, "Resource"),
        (
            {"Statement": {"Effect": "Allow", "Action": "SubmitJob", "Resource": "*"}},
            "service:Name",
        ),
        ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "job-queue/x"}}, "ARN"),
        (
            {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}},
            "Principal",
        ),
        (
            {
                "Statement": {
                    "Effect": "Allow",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringSorta": {"k": "v"}},
                }
            },
            "condition operator",
        ),
        (
            {
                "Version": "2099-01-01",
                "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"},
            },
            "Version",
        ),
    ],
)
def test_bad_policies_are_refused_with_the_reason(doc, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(doc if isinstance(doc, str) else json.dumps(doc), "bad")


# ---- properties -------------------------------------------------------------------------------

ACTIONS = ["batch:SubmitJob", "batch:TerminateJob", "batch:DescribeJobs", "logs:GetLogEvents"]
PATTERNS = ["*", "batch:*", "batch:Submit*", "batch:TerminateJob", "logs:*", "batch:Describe?obs"]
NAMES = ["team-a-1", "team-a-2", "team-b-1", "ops"]
RES_PATTERNS = ["*", Q + "*", Q + "team-a-*", Q + "team-b-*", Q + "ops", "arn:aws:batch:*:*:job/*"]
CONTEXT = {"batch:shareidentifier": "blue", "aws:username": "alice"}  # keys as evaluated

conditions = st.one_of(
    st.none(),
    st.sampled_from(
        [
            {"StringEquals": {"batch:ShareIdentifier": "blue"}},
            {"StringNotEquals": {"batch:ShareIdentifier": "blue"}},
            {"StringLike": {"aws:username": "a*"}},
            {"Null": {"aws:RequestTag/x": "false"}},
        ]
    ),
)


@st.composite
def statements(draw, effect=None):
    st_ = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Deny"])),
        draw(st.sampled_from(["Action", "NotAction"])): draw(
            st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3)
        ),
        draw(st.sampled_from(["Resource", "NotResource"])): draw(
            st.lists(st.sampled_from(RES_PATTERNS), min_size=1, max_size=3)
        ),
    }
    cond = draw(conditions)
    if cond:
        st_["Condition"] = cond
    return st_


docs = st.lists(st.lists(statements(), min_size=1, max_size=4), min_size=0, max_size=3)
requests = st.tuples(
    st.sampled_from(ACTIONS), st.lists(st.sampled_from(NAMES), min_size=1, max_size=2)
)


def build(doc):
    return [policy(*stmts, name=f"p{i}") for i, stmts in enumerate(doc)]


def decide(policies, request):
    action, names = request
    return evaluate(policies, action, [Resource(Q + n) for n in names], CONTEXT)


@settings(max_examples=150, deadline=None)
@given(docs, requests, statements(effect="Deny"))
def test_an_applying_explicit_deny_always_wins(doc, request, deny_stmt):
    action, names = request
    forced = {**deny_stmt, "Action": [action], "Resource": [Q + names[0]]}
    forced.pop("NotAction", None)
    forced.pop("NotResource", None)
    forced.pop("Condition", None)
    # plus any number of allow-everything statements
    policies = build([*doc, [allow(), forced], [allow()]])
    d = decide(policies, request)
    assert not d.allowed and d.kind == EXPLICIT_DENY


@settings(max_examples=150, deadline=None)
@given(docs, requests)
def test_default_deny_without_an_applying_allow(doc, request):
    only_denies = [[s for s in stmts if s["Effect"] == "Deny"] for stmts in doc]
    policies = build([s for s in only_denies if s])
    assert not decide(policies, request).allowed


@settings(max_examples=150, deadline=None)
@given(docs, requests)
def test_allowed_requires_an_allow_and_no_deny(doc, request):
    from batchyard.auth.policy import statement_applies

    policies = build(doc)
    d = decide(policies, request)
    action, names = request
    stmts = [s for p in policies for s in p.statements]
    for n in names:
        r = Resource(Q + n)
        applying = [s for s in stmts if statement_applies(s, action, r, CONTEXT)]
        if any(s.effect == "Deny" for s in applying):
            assert not d.allowed and d.kind == EXPLICIT_DENY
            return
        if not any(s.effect == "Allow" for s in applying):
            assert not d.allowed
    if d.kind != EXPLICIT_DENY and all(
        any(
            s.effect == "Allow" and statement_applies(s, action, Resource(Q + n), CONTEXT)
            for s in stmts
        )
        for n in names
    ):
        assert d.allowed


@settings(max_examples=100, deadline=None)
@given(docs, requests, statements(effect="Allow"))
def test_adding_an_allow_never_denies_what_was_allowed(doc, request, extra):
    before = decide(build(doc), request)
    after = decide(build([*doc, [extra]]), request)
    if before.allowed:
        assert after.allowed


@settings(max_examples=100, deadline=None)
@given(docs, requests, st.randoms(use_true_random=False))
def test_order_does_not_matter(doc, request, rnd):
    shuffled = [list(stmts) for stmts in doc]
    for stmts in shuffled:
        rnd.shuffle(stmts)
    rnd.shuffle(shuffled)
    assert decide(build(doc), request).allowed == decide(build(shuffled), request).allowed
