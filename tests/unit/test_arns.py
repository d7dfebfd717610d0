"""ARNs as AWS Batch writes them, and name-or-ARN references as clients send them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchyard.api.arns import KINDS, Arn, Arns
from batchyard.errors import InvalidRequest

ARNS = Arns("us-east-1", "000000000000")
NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,128}", fullmatch=True)


def test_arn():
    assert ARNS.arn("job-queue", "q") == "arn:aws:batch:us-east-1:000000000000:job-queue/q"
    assert Arns("eu-west-3", "123456789012").arn("job-definition", "jd:3") == (
        "arn:aws:batch:eu-west-3:123456789012:job-definition/jd:3"
    )


@given(st.sampled_from(KINDS), NAMES, st.one_of(st.none(), st.integers(1, 10**6)))
def test_parse_reads_what_arn_writes(kind, name, revision):
    resource = name if revision is None else f"{name}:{revision}"
    assert ARNS.parse(ARNS.arn(kind, resource), "field") == Arn(kind, resource)
    assert ARNS.ref(ARNS.arn(kind, resource), kind, "field") == resource


def test_other_partitions_are_read():
    arn = "arn:aws-cn:batch:us-east-1:000000000000:job-queue/q"
    assert ARNS.parse(arn, "jobQueue") == Arn("job-queue", "q")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("arn:aws:batch:us-east-1:000000000000:job-queue", "is not a valid AWS Batch ARN"),
        ("arn:aws:batch:us-east-1:000000000000:job-queue/", "is not a valid AWS Batch ARN"),
        ("arn:aws:batch:us-east-1:00000000000:job-queue/q", "is not a valid AWS Batch ARN"),
        ("arn:aws:ecs:us-east-1:000000000000:cluster/c", "is not a valid AWS Batch ARN"),
        ("arn:aws:batch:us-east-1:000000000000:bucket/q", "is not a valid AWS Batch ARN"),
        ("job-queue/q", "is not a valid AWS Batch ARN"),
        ("arn:aws:batch:eu-west-1:000000000000:job-queue/q", "belongs to region eu-west-1"),
        ("arn:aws:batch:us-east-1:123456789012:job-queue/q", "account 123456789012"),
    ],
)
def test_parse_refuses(text, expected):
    with pytest.raises(InvalidRequest) as caught:
        ARNS.parse(text, "jobQueue")
    message = caught.value.message
    assert message.startswith(f"jobQueue: {text!r}") and expected in message
    assert "us-east-1" in message.replace(text, "")  # says what would be accepted


def test_ref():
    assert ARNS.ref("my-queue", "job-queue", "jobQueue") == "my-queue"
    with pytest.raises(InvalidRequest, match="is a compute-environment ARN, expected a job-queue"):
        ARNS.ref(ARNS.arn("compute-environment", "q"), "job-queue", "jobQueue")
