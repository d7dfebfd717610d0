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
    Slot,
    Wait,
    follow_ons,
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
    st.lists(st.integers(min_value=1, max_value=12), max_size=30),
    st.integers(min_value=0, max_value=32),
)
def test_first_fit_in_dispatch_order(quarters, capacity_quarters):
    """Each job in turn takes room if the jobs before it left enough, else waits: a smaller
    job may use room a bigger one ahead of it cannot, but none takes room out of turn and
    the host is never overcommitted. Sizes are in quarters of a vCPU (exact arithmetic)."""
    requests = [q / 4 for q in quarters]
    capacity = capacity_quarters / 4
    # seq runs against the dispatch order, so the order checked is the candidates' order
    cands = [job(len(requests) - i, vcpus=v) for i, v in enumerate(requests)]
    envs = {"a": env("a", capacity)}
    p = plan([Queue(1, "q", 1, ("a",))], envs, {"host": Amount(capacity, 16_000, 0)}, {1: cands})
    left, expected = capacity, []
    for c in cands:
        if c.need.vcpus <= left:
            left -= c.need.vcpus
            expected.append(c.seq)
    assert [x.candidate.seq for x in p.placements] == expected
    assert sum(x.candidate.need.vcpus for x in p.placements) <= capacity
    assert sorted(w.candidate.seq for w in p.waits) == sorted(
        c.seq for c in cands if c.seq not in expected
    )


# ---- follow-ons: array children queued behind their running siblings ----------------------


def _wait(seq: int, group: int | None, code: str = INSUFFICIENT_CAPACITY) -> Wait:
    return Wait(Candidate(seq, f"j{seq}", Amount(1, 100, 0), group), code, "waiting")


def test_follow_ons_fill_the_shortest_lines_in_dispatch_order():
    slots = [Slot(1, 7, "ce", 0), Slot(2, 7, "ce", 2)]
    out = follow_ons([_wait(s, 7) for s in (10, 11, 12, 13)], slots, {7: 3})
    assert [(f.candidate.seq, f.slot.key) for f in out] == [(10, 1), (11, 1), (12, 1), (13, 2)]


def test_follow_ons_stop_at_the_first_job_without_room():
    slots = [Slot(1, 7, "ce", 1)]
    out = follow_ons([_wait(s, 7) for s in (10, 11, 12)], slots, {7: 2})
    assert [f.candidate.seq for f in out] == [10]


def test_no_follow_ons_while_another_job_waits_for_capacity():
    """A job of another array (or a single job) must get the next free reservation."""
    slots = [Slot(1, 7, "ce", 0)]
    assert follow_ons([_wait(10, 7), _wait(11, None)], slots, {7: 5}) == []
    assert follow_ons([_wait(10, 7), _wait(11, 8)], slots, {7: 5}) == []
    # a job that can never run does not hold the line up
    stuck = _wait(11, None, JOB_RESOURCE_REQUIREMENT)
    assert [f.candidate.seq for f in follow_ons([_wait(10, 7), stuck], slots, {7: 5})] == [10]


def test_no_follow_ons_for_long_children():
    slots = [Slot(1, 7, "ce", 0)]
    assert follow_ons([_wait(10, 7)], slots, {7: 0}) == []
    assert follow_ons([_wait(10, 7)], [], {7: 5}) == []


@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=6),
    st.integers(1, 40),
    st.integers(0, 8),
)
def test_follow_ons_never_exceed_the_depth(lengths, waiting, depth):
    slots = [Slot(i + 1, 7, "ce", n) for i, n in enumerate(lengths)]
    out = follow_ons([_wait(100 + i, 7) for i in range(waiting)], slots, {7: depth})
    per_slot: dict[int, int] = {}
    for f in out:
        per_slot[f.slot.key] = per_slot.get(f.slot.key, 0) + 1
    for s in slots:
        assert s.length + per_slot.get(s.key, 0) <= max(depth, s.length)
    assert [f.candidate.seq for f in out] == list(range(100, 100 + len(out)))
    room = sum(max(0, depth - n) for n in lengths)
    assert len(out) == min(waiting, room)
