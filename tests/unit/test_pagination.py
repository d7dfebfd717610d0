"""nextToken values: opaque, signed, bound to one operation and its filters."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchyard.errors import InvalidRequest
from batchyard.service.pagination import DEFAULT_PAGE, Tokens, cut_page, page_size

TOKENS = Tokens(b"s" * 32)
FILTERS = st.one_of(st.none(), st.lists(st.one_of(st.none(), st.text(max_size=20)), max_size=3))


@given(st.sampled_from(["DescribeJobQueues", "ListJobs"]), FILTERS, st.integers(0, 2**62))
def test_a_token_gives_back_its_cursor(operation, filters, cursor):
    token = TOKENS.encode(operation, filters, cursor)
    assert TOKENS.decode(token, operation, filters) == cursor


def test_a_token_is_opaque():
    token = TOKENS.encode("DescribeJobQueues", ["my-queue"], 123456789)
    assert "123456789" not in token and "my-queue" not in token


def test_no_token_means_the_first_page():
    assert TOKENS.decode(None, "DescribeJobQueues", None) is None


@given(st.data())
def test_an_edited_token_is_refused(data):
    token = TOKENS.encode("DescribeJobQueues", None, 41)
    i = data.draw(st.integers(0, len(token) - 1), label="position")
    replacement = data.draw(st.sampled_from("ABCabc0123-_."), label="character")
    edited = token[:i] + replacement + token[i + 1 :]
    try:
        cursor = TOKENS.decode(edited, "DescribeJobQueues", None)
    except InvalidRequest as e:
        assert "nextToken is not a token this server issued" in e.message
    else:
        # only an edit that decodes to the very same bytes (base64 padding bits) may pass
        assert cursor == 41


@pytest.mark.parametrize(
    "token",
    ["", ".", "garbage", "a.b", "é.é", "eyJ9.", TOKENS.encode("X", None, 1) + "x", "..."],
)
def test_garbage_is_refused(token):
    with pytest.raises(InvalidRequest, match="repeat the request without nextToken"):
        TOKENS.decode(token, "X", None)


def test_a_token_of_another_server_is_refused():
    foreign = Tokens(b"t" * 32).encode("DescribeJobQueues", None, 5)
    with pytest.raises(InvalidRequest, match="not a token this server issued"):
        TOKENS.decode(foreign, "DescribeJobQueues", None)


@pytest.mark.parametrize(
    ("operation", "filters"),
    [("DescribeComputeEnvironments", None), ("DescribeJobQueues", ["x"])],
)
def test_a_token_is_bound_to_its_operation_and_filters(operation, filters):
    token = TOKENS.encode("DescribeJobQueues", None, 5)
    with pytest.raises(InvalidRequest, match=f"not issued for this {operation} request"):
        TOKENS.decode(token, operation, filters)


def test_filters_are_compared_by_value_not_by_key_order():
    token = TOKENS.encode("ListJobs", {"a": 1, "b": 2}, 5)
    assert TOKENS.decode(token, "ListJobs", {"b": 2, "a": 1}) == 5


@pytest.mark.parametrize(("given", "expected"), [(None, DEFAULT_PAGE), (1, 1), (100, 100)])
def test_page_size(given, expected):
    assert page_size(given) == expected


@pytest.mark.parametrize("given", [0, -1, 101])
def test_page_size_out_of_range(given):
    with pytest.raises(
        InvalidRequest, match=f"maxResults is {given}; it must be between 1 and 100"
    ):
        page_size(given)


def test_page_size_with_another_limit():
    assert page_size(None, limit=10) == 10
    with pytest.raises(InvalidRequest, match="pageSize is 11; it must be between 1 and 10"):
        page_size(11, field="pageSize", limit=10)


@dataclass
class Row:
    id: int


def test_cut_page():
    rows = [Row(i) for i in range(1, 5)]
    last = cut_page(TOKENS, "Op", None, rows[:3], 3)
    assert (last.items, last.next_token) == (rows[:3], None)
    page = cut_page(TOKENS, "Op", None, rows, 3)
    assert page.items == rows[:3]
    assert TOKENS.decode(page.next_token, "Op", None) == 3
