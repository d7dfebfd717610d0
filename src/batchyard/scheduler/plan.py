"""Placement: which RUNNABLE jobs start now, where, and why the others wait. A pure function.

Queues are served by descending priority; inside a queue jobs come in dispatch order (the
caller's order: scheduling priority where a policy applies, then submission, then index).
Each job goes to the first compute environment in its queue's order that is usable and has
room, never beyond the environment's capacity nor its pool's (all ``local`` environments
share one host). When a job has to wait for room in an environment, queues of lower priority
may not take that room in the same pass, so a busy high-priority queue is not starved by a
lower one. Jobs of the same queue may fill room a bigger job ahead of them cannot use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

JOB_RESOURCE_REQUIREMENT = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
CE_MAX_RESOURCE = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"
INSUFFICIENT_CAPACITY = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
NO_USABLE_CE = "MISCONFIGURATION:NO_USABLE_COMPUTE_ENVIRONMENT"
# Codes a job can never leave without a change of configuration.
STUCK_CODES = frozenset({JOB_RESOURCE_REQUIREMENT, CE_MAX_RESOURCE, NO_USABLE_CE})


@dataclass(frozen=True, slots=True)
class Amount:
    vcpus: float
    memory_mib: int
    gpus: int = 0

    def fits(self, room: Amount) -> bool:
        eps = 1e-9
        return (
            self.vcpus <= room.vcpus + eps
            and self.memory_mib <= room.memory_mib
            and self.gpus <= room.gpus
        )

    def minus(self, other: Amount) -> Amount:
        return Amount(
            self.vcpus - other.vcpus, self.memory_mib - other.memory_mib, self.gpus - other.gpus
        )

    def __str__(self) -> str:
        gpu = f", {self.gpus} GPU" if self.gpus else ""
        return f"{self.vcpus:g} vCPU, {self.memory_mib} MiB{gpu}"


@dataclass(slots=True)
class Environment:
    """A compute environment as the planner sees it."""

    name: str
    pool: str  # capacity shared with other environments of the same provider pool
    capacity: Amount  # the most it can ever run at once
    free: Amount  # what is free now
    usable: bool = True  # ENABLED and VALID
    why_unusable: str = ""
    max_vcpus: int | None = None  # as declared, to tell its limit from the host's


@dataclass(frozen=True, slots=True)
class Queue:
    id: int
    name: str
    priority: int
    environments: tuple[str, ...]  # names, in the queue's order


@dataclass(frozen=True, slots=True)
class Candidate:
    seq: int
    job_id: str
    need: Amount
    group: int | None = None  # the array job it is a child of (siblings need the same)


@dataclass(frozen=True, slots=True)
class Placement:
    candidate: Candidate
    environment: str


@dataclass(frozen=True, slots=True)
class Wait:
    candidate: Candidate
    code: str
    message: str

    @property
    def reason(self) -> str:
        return f"{self.code} - {self.message}"


@dataclass(slots=True)
class Plan:
    placements: list[Placement] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)


def _never_fits(c: Candidate, envs: list[Environment]) -> Wait | None:
    usable = [e for e in envs if e.usable]
    if not usable:
        detail = "; ".join(f"{e.name} is {e.why_unusable}" for e in envs) or "the queue has none"
        return Wait(c, NO_USABLE_CE, f"no compute environment of the queue can run jobs: {detail}")
    if any(c.need.fits(e.capacity) for e in usable):
        return None
    limits = "; ".join(f"{e.name} can give at most {e.capacity}" for e in usable)
    capped_by_ce = all(
        e.max_vcpus is not None
        and c.need.vcpus > e.max_vcpus
        and c.need.memory_mib <= e.capacity.memory_mib
        and c.need.gpus <= e.capacity.gpus
        for e in usable
    )
    code = CE_MAX_RESOURCE if capped_by_ce else JOB_RESOURCE_REQUIREMENT
    return Wait(
        c,
        code,
        f"the job requests {c.need}, more than any compute environment of its "
        f"queue can ever provide ({limits})",
    )


def plan(
    queues: Sequence[Queue],
    environments: Mapping[str, Environment],
    pools: Mapping[str, Amount],
    candidates: Mapping[int, Sequence[Candidate]],
) -> Plan:
    """Place ``candidates`` (per queue id, in dispatch order). Nothing is mutated."""
    free = {name: e.free for name, e in environments.items()}
    pool_free = dict(pools)
    result = Plan()
    reserved: set[str] = set()  # room awaited by a higher-priority queue
    for priority in sorted({q.priority for q in queues}, reverse=True):
        awaited: set[str] = set()
        for q in sorted((q for q in queues if q.priority == priority), key=lambda q: q.id):
            envs = [environments[n] for n in q.environments if n in environments]
            for c in candidates.get(q.id, ()):
                stuck = _never_fits(c, envs)
                if stuck is not None:
                    result.waits.append(stuck)
                    continue
                placed = None
                for e in envs:
                    if not e.usable or e.name in reserved:
                        continue
                    if c.need.fits(free[e.name]) and c.need.fits(pool_free[e.pool]):
                        placed = e
                        break
                if placed is not None:
                    free[placed.name] = free[placed.name].minus(c.need)
                    pool_free[placed.pool] = pool_free[placed.pool].minus(c.need)
                    result.placements.append(Placement(c, placed.name))
                    continue
                fitting = [e for e in envs if e.usable and c.need.fits(e.capacity)]
                awaited.update(e.name for e in fitting)
                room = "; ".join(
                    f"{e.name} has {_room(free[e.name], pool_free[e.pool])} free of {e.capacity}"
                    + (" (held for a higher-priority queue)" if e.name in reserved else "")
                    for e in fitting
                )
                result.waits.append(
                    Wait(
                        c,
                        INSUFFICIENT_CAPACITY,
                        f"waiting for capacity: the job requests {c.need}; {room}",
                    )
                )
        reserved |= awaited
    return result


@dataclass(frozen=True, slots=True)
class Slot:
    """A reservation held by a running array child, on which its waiting siblings may
    follow it: run one after another, with no round trip to the scheduler between them."""

    key: int  # the attempt holding the reservation now
    group: int  # its array job
    environment: str
    length: int  # followers already queued on it


@dataclass(frozen=True, slots=True)
class FollowOn:
    candidate: Candidate
    slot: Slot  # it runs after the slot's last follower (or its holder)


def follow_ons(
    waits: Sequence[Wait], slots: Sequence[Slot], depth: Mapping[int, int]
) -> list[FollowOn]:
    """Queue waiting array children behind their running siblings, at most ``depth[group]``
    per reservation (the caller sizes it so that a queue lasts a few tens of milliseconds).

    Only when every job waiting for capacity is such a child: a job of another array must
    get the next free reservation, not wait behind a line. Jobs are taken in dispatch order
    and the first that finds no room ends the walk, so none overtakes another. The result
    is in order: a slot's followers run in the order listed."""
    waiting = [w.candidate for w in waits if w.code == INSUFFICIENT_CAPACITY]
    if not waiting or any(c.group is None or depth.get(c.group, 0) < 1 for c in waiting):
        return []
    lengths = {s.key: s.length for s in slots}
    by_group: dict[int, list[Slot]] = {}
    for s in slots:
        by_group.setdefault(s.group, []).append(s)
    out = []
    for c in waiting:
        assert c.group is not None
        open_slots = [s for s in by_group.get(c.group, ()) if lengths[s.key] < depth[c.group]]
        if not open_slots:
            break
        slot = min(open_slots, key=lambda s: (lengths[s.key], s.key))
        out.append(FollowOn(c, slot))
        lengths[slot.key] += 1
    return out


def _room(ce_free: Amount, pool_free: Amount) -> Amount:
    return Amount(
        max(0.0, min(ce_free.vcpus, pool_free.vcpus)),
        max(0, min(ce_free.memory_mib, pool_free.memory_mib)),
        max(0, min(ce_free.gpus, pool_free.gpus)),
    )
