"""Value rules shared by several resources."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchyard.domain import checks
from batchyard.errors import InvalidRequest

VALID_NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,128}", fullmatch=True)


@given(VALID_NAMES)
def test_valid_resource_names(name):
    assert checks.resource_name(name, "jobQueueName") == name


@given(
    st.text(min_size=1, max_size=140).filter(
        lambda s: not all(c.isascii() and (c.isalnum() or c in "-_") for c in s) or len(s) > 128
    )
)
def test_invalid_resource_names(name):
    with pytest.raises(InvalidRequest) as caught:
        checks.resource_name(name, "jobQueueName")
    assert caught.value.message == (
        f"jobQueueName {name!r} is not valid: use 1 to 128 letters, numbers, hyphens (-) and "
        "underscores (_)"
    )


@pytest.mark.parametrize("name", ["", "a b", "a.b", "a/b", "é", "a" * 129, "a\n"])
def test_invalid_resource_name_examples(name):
    with pytest.raises(InvalidRequest, match="is not valid"):
        checks.resource_name(name, "name")


def test_job_names_start_with_a_letter_or_number():
    assert checks.job_name("0-job_A") == "0-job_A"
    for name in ("-job", "_job", "", "j" * 129, "a b"):
        with pytest.raises(InvalidRequest, match="starting with a letter or number"):
            checks.job_name(name)


def test_in_range():
    checks.in_range(0, "priority", 0, 1000)
    checks.in_range(1000, "priority", 0, 1000)
    checks.in_range(0.0001, "weightFactor", 0.0001, 999.9999)
    with pytest.raises(InvalidRequest, match=r"^priority is 1001; it must be between 0 and 1000$"):
        checks.in_range(1001, "priority", 0, 1000)
    with pytest.raises(InvalidRequest, match="weightFactor is 0"):
        checks.in_range(0, "weightFactor", 0.0001, 999.9999)


def test_tags():
    ok = {f"k{i}": "v" * 256 for i in range(50)}
    assert checks.tags(ok) == ok
    assert checks.tags({"k" * 128: ""}) == {"k" * 128: ""}


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({f"k{i}": "v" for i in range(51)}, "tags has 51 tags; at most 50 are allowed"),
        ({"": "v"}, "tag key '' must be 1 to 128 characters long"),
        ({"k" * 129: "v"}, "must be 1 to 128 characters long"),
        ({"k": "v" * 257}, "the value of tag 'k' exceeds 256 characters"),
        ({"aws:owner": "x"}, "tag key 'aws:owner' uses the reserved prefix 'aws:'"),
        ({"AWS:Owner": "x"}, "uses the reserved prefix 'aws:'"),
    ],
)
def test_tag_rules(tags, expected):
    with pytest.raises(InvalidRequest) as caught:
        checks.tags(tags)
    assert expected in caught.value.message
