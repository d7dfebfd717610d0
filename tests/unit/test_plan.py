"""The placement function, without I/O."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from batchyard.scheduler.plan import (
    CE_MAX_RESOURCE,
    INSUFFICIENT_CAPACITY,
    JOB_RESOURCE_REQUIREMENT,
    NO_USABLE_CE,
    Amount,
    Candidate,
    Environment,
    Queue,
    plan,
)

HOST = Amount(4.0, 16_000, 0)


def env(
    name: str,
    vcpus: float = 4,
    free: float | None = None,
    usable: bool = True,
    pool: str = "host",
    max_vcpus: int | None = None,
) -> Environment:
    cap = Amount(vcpus, 16_000, 0)
    return Environment(
        name,
        pool,
        cap,
        Amount(vcpus if free is None else free, 16_000, 0),
        usable,
        "DISABLED" if not usable else "",
        max_vcpus,
    )


def job(seq: int, vcpus: float = 1, memory: int = 100) -> Candidate:
    return Candidate(seq, f"j{seq}", Amount(vcpus, memory, 0))


def test_fifo_fills_capacity_then_waits_with_numbers():
    p = plan(
        [Queue(1, "q", 1, ("a",))],
        {"a": env("a", 2)},
        {"host": HOST},
        {1: [job(1), job(2), job(3)]},
    )
    assert [x.candidate.seq for x in p.placements] == [1, 2]
    (w,) = p.waits
    assert w.candidate.seq == 3 and w.code == INSUFFICIENT_CAPACITY
    assert "requests 1 vCPU" in w.message and "a has 0 vCPU" in w.message


def test_first_environment_in_order_with_room():
    envs = {"a": env("a", 2, free=0.5), "b": env("b", 2)}
    p = plan([Queue(1, "q", 1, ("a", "b"))], envs, {"host": HOST}, {1: [job(1)]})
    assert p.placements[0].environment == "b"


def test_never_fits_names_the_limits():
    envs = {"a": env("a", 4, max_vcpus=4)}
    p = plan([Queue(1, "q", 1, ("a",))], envs, {"host": HOST}, {1: [job(1, vcpus=64)]})
    (w,) = p.waits
    assert w.code == CE_MAX_RESOURCE
    assert "64 vCPU" in w.message and "a can give at most 4 vCPU" in w.message
    p = plan([Queue(1, "q", 1, ("a",))], envs, {"host": HOST}, {1: [job(1, memory=10**9)]})
    assert p.waits[0].code == JOB_RESOURCE_REQUIREMENT


def test_no_usable_environment():
    p = plan(
        [Queue(1, "q", 1, ("a",))], {"a": env("a", usable=False)}, {"host": HOST}, {1: [job(1)]}
    )
    assert p.waits[0].code == NO_USABLE_CE and "a is DISABLED" in p.waits[0].message


def test_higher_priority_queue_first_and_holds_room_from_lower():
    envs = {"a": env("a", 2)}
    queues = [Queue(1, "low", 1, ("a",)), Queue(2, "high", 10, ("a",))]
    cands = {1: [job(1)], 2: [job(2, vcpus=2), job(3, vcpus=2)]}
    p = plan(queues, envs, {"host": HOST}, cands)
    assert [x.candidate.seq for x in p.placements] == [2]
    waiting = {w.candidate.seq: w for w in p.waits}
    assert set(waiting) == {1, 3}
    assert "held for a higher-priority queue" in waiting[1].message


def test_pool_shared_by_environments():
    envs = {"a": env("a", 2), "b": env("b", 2)}
    queues = [Queue(1, "q1", 1, ("a",)), Queue(2, "q2", 1, ("b",))]
    p = plan(
        queues, envs, {"host": Amount(3.0, 16_000, 0)}, {1: [job(1), job(2)], 2: [job(3), job(4)]}
    )
    assert len(p.placements) == 3


@given(
    st.lists(st.floats(min_value=0.25, max_value=3, allow_nan=False), min_size=0, max_size=30),
    st.floats(min_value=0, max_value=8),
)
def test_never_overcommits(requests, capacity):
    envs = {"a": env("a", capacity)}
    cands = {1: [job(i, vcpus=v) for i, v in enumerate(requests)]}
    p = plan([Queue(1, "q", 1, ("a",))], envs, {"host": Amount(capacity, 16_000, 0)}, cands)
    used = sum(x.candidate.need.vcpus for x in p.placements)
    assert used <= capacity + 1e-6
    assert len(p.placements) + len(p.waits) == len(requests)
    placed = [x.candidate.seq for x in p.placements]
    assert placed == sorted(placed)  # dispatch order is kept
