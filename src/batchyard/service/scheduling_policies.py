"""Scheduling policies: fair-share (and quota-share) policies that queues can attach."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from batchyard.domain import checks
from batchyard.domain.clock import now_ms
from batchyard.domain.resources import Page, SchedulingPolicy
from batchyard.errors import Conflict, InvalidRequest
from batchyard.service.context import RESOURCES, Context
from batchyard.service.pagination import cut_page, page_size
from batchyard.service.suggest import unknown
from batchyard.store import resources as repo

MAX_DECAY_SECONDS = 604_800
MAX_SHARES = 500


def validate_fairshare(policy: dict[str, Any] | None) -> None:
    if not policy:
        return
    decay = policy.get("share_decay_seconds")
    if decay is not None:
        checks.in_range(decay, "fairsharePolicy.shareDecaySeconds", 0, MAX_DECAY_SECONDS)
    reservation = policy.get("compute_reservation")
    if reservation is not None:
        checks.in_range(reservation, "fairsharePolicy.computeReservation", 0, 99)
    shares = policy.get("share_distribution") or []
    if len(shares) > MAX_SHARES:
        raise InvalidRequest(
            f"fairsharePolicy.shareDistribution has {len(shares)} entries; at most {MAX_SHARES}"
        )
    seen: list[str] = []
    for i, share in enumerate(shares):
        where = f"fairsharePolicy.shareDistribution[{i}]"
        ident = share["share_identifier"]
        core = ident[:-1] if ident.endswith("*") else ident
        if not core.isalnum() or len(core) > 255:
            raise InvalidRequest(
                f"{where}.shareIdentifier {ident!r} must be 1 to 255 letters and numbers, "
                "optionally followed by *"
            )
        weight = share.get("weight_factor")
        if weight is not None:
            checks.in_range(weight, f"{where}.weightFactor", 0.0001, 999.9999)
        for other in seen:
            if _overlap(ident, other):
                raise InvalidRequest(
                    f"{where}.shareIdentifier {ident!r} overlaps {other!r}; share identifiers "
                    "in one policy must not overlap"
                )
        seen.append(ident)


def _overlap(a: str, b: str) -> bool:
    def prefix(s: str) -> tuple[str, bool]:
        return (s[:-1], True) if s.endswith("*") else (s, False)

    (pa, wa), (pb, wb) = prefix(a), prefix(b)
    if wa and pb.startswith(pa):
        return True
    if wb and pa.startswith(pb):
        return True
    return pa == pb


class SchedulingPolicies:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def create(
        self,
        *,
        name: str,
        fairshare_policy: dict[str, Any] | None = None,
        quota_share_policy: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> SchedulingPolicy:
        checks.resource_name(name, "name")
        tags = checks.tags(tags or {})
        if fairshare_policy is not None and quota_share_policy is not None:
            raise InvalidRequest("set fairsharePolicy or quotaSharePolicy, not both")
        validate_fairshare(fairshare_policy)
        spec = {"fairshare_policy": fairshare_policy, "quota_share_policy": quota_share_policy}
        if fairshare_policy is None and quota_share_policy is None:
            spec["fairshare_policy"] = {}
        now = now_ms()
        try:
            with self.ctx.store.write() as conn:
                if repo.scheduling_policy(conn, name) is not None:
                    raise Conflict(f"A scheduling policy named {name!r} already exists")
                repo.insert_scheduling_policy(
                    conn, name=name, spec=spec, tags=tags, created_at=now, updated_at=now
                )
                policy = repo.scheduling_policy(conn, name)
        except IntegrityError:
            raise Conflict(f"A scheduling policy named {name!r} already exists") from None
        assert policy is not None
        return policy

    def update(
        self,
        name: str,
        *,
        fairshare_policy: dict[str, Any] | None = None,
        quota_share_policy: dict[str, Any] | None = None,
    ) -> None:
        validate_fairshare(fairshare_policy)
        with self.ctx.store.write() as conn:
            policy = repo.scheduling_policy(conn, name, lock="update")
            if policy is None:
                raise unknown(conn, "scheduling policy", name)
            spec = dict(policy.spec)
            if fairshare_policy is not None:
                if spec.get("quota_share_policy") is not None:
                    raise InvalidRequest(
                        f"scheduling policy {name!r} is a quota-share policy; it cannot become "
                        "a fair-share policy"
                    )
                spec["fairshare_policy"] = fairshare_policy
            if quota_share_policy is not None:
                if spec.get("fairshare_policy") is not None:
                    raise InvalidRequest(
                        f"scheduling policy {name!r} is a fair-share policy; it cannot become "
                        "a quota-share policy"
                    )
                spec["quota_share_policy"] = quota_share_policy
            repo.update_scheduling_policy(conn, policy.id, spec=spec, updated_at=now_ms())
        self.ctx.changed(RESOURCES)

    def delete(self, name: str) -> None:
        with self.ctx.store.write() as conn:
            policy = repo.scheduling_policy(conn, name, lock="update")
            if policy is None:
                raise unknown(conn, "scheduling policy", name)
            queues = repo.queues_using_policy(conn, policy.id)
            if queues:
                raise Conflict(
                    f"scheduling policy {name!r} is used by job queue(s) {', '.join(queues)}; "
                    "delete those queues first (a queue's policy can be replaced, not removed)"
                )
            repo.delete_scheduling_policy(conn, policy.id)

    def describe(self, names: list[str]) -> list[SchedulingPolicy]:
        if len(names) > 100:
            raise InvalidRequest(f"arns lists {len(names)} entries; at most 100 are allowed")
        with self.ctx.store.read() as conn:
            return repo.scheduling_policies(conn, names=names)

    def list(self, max_results: int | None, next_token: str | None) -> Page:
        limit = page_size(max_results)
        after = self.ctx.tokens.decode(next_token, "ListSchedulingPolicies", None)
        with self.ctx.store.read() as conn:
            items = repo.scheduling_policies(conn, after_id=after, limit=limit + 1)
        return cut_page(self.ctx.tokens, "ListSchedulingPolicies", None, items, limit)
