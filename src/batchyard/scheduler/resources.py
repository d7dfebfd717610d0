"""Moves compute environments and queues through AWS's lifecycle statuses.

CREATING/UPDATING compute environments are checked by their provider and become VALID or
INVALID (with the provider's reason); DELETING ones are removed once nothing runs on them.
Queues become VALID after a change, and DELETED (a tombstone) once deleted and drained.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from batchyard.domain.clock import now_ms
from batchyard.domain.resources import (
    CREATING,
    DELETED,
    DELETING,
    INVALID,
    UPDATING,
    VALID,
    ComputeEnvironment,
)
from batchyard.providers.base import Capacity, Check, Provider
from batchyard.service.context import RESOURCES
from batchyard.store import resources as repo
from batchyard.store.db import Store

log = logging.getLogger(__name__)


class ResourceReconciler:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        busy: Callable[[], tuple[set[str], set[int]]] = lambda: (set(), set()),
    ) -> None:
        """``busy`` returns (compute environment names, queue ids) that still have unfinished
        jobs, which keeps them from being removed."""
        self.store = store
        self.providers = providers
        self.busy = busy
        self.checks: dict[str, Check | None] = {}
        self.waiting = True  # a deletion waits for jobs to end

    async def run_once(self, topics: set[str] | None = None) -> bool:
        """One pass; True if anything changed (so the job scheduler should look again).

        It only looks when woken for a resource change, or while something it waits on
        (a deletion) may have become possible because jobs ended."""
        if topics is not None and RESOURCES not in topics and not self.waiting:
            return False
        self.waiting = False
        changed = False
        with self.store.read() as conn:
            ces = repo.compute_environments(conn)
            queues = repo.job_queues(conn, statuses=(CREATING, UPDATING, DELETING))
        busy_ces, busy_queues = self.busy()
        for ce in ces:
            if ce.status == DELETING:
                if ce.name in busy_ces:
                    self.waiting = True
                    continue
                with self.store.write() as conn:
                    repo.delete_compute_environment(conn, ce.id)
                self.checks.pop(ce.name, None)
                changed = True
                continue
            if ce.status not in (CREATING, UPDATING) and ce.name in self.checks:
                continue
            status, reason, check = await self._check(ce)
            if (ce.status, ce.status_reason) == (status, reason):
                self.checks[ce.name] = check
                continue
            with self.store.write() as conn:
                settled = repo.settle(
                    conn, "compute_environments", ce.id, ce.updated_at, status, reason, now_ms()
                )
            if settled:
                self.checks[ce.name] = check
                changed = True
            else:  # it changed while we looked: look again
                self.waiting = True
        for q in queues:
            if q.status == DELETING:
                if q.id in busy_queues:
                    self.waiting = True
                    continue
                status, reason = DELETED, "Deleted"
            else:
                status, reason = VALID, "JobQueue Healthy"
            with self.store.write() as conn:
                if not repo.settle(
                    conn, "job_queues", q.id, q.updated_at, status, reason, now_ms()
                ):
                    self.waiting = True
            changed = True
        return changed

    def capacity(self, name: str) -> Capacity | None:
        """What the compute environment ``name`` can run at once, as its provider said."""
        check = self.checks.get(name)
        return check.capacity if check is not None else None

    async def _check(self, ce: ComputeEnvironment) -> tuple[str, str, Check | None]:
        """Ask the compute environment's provider; a provider failure makes it INVALID."""
        provider = self.providers.get(ce.provider)
        if provider is None:
            return (
                INVALID,
                f"provider {ce.provider!r} is not available on this server (is its optional "
                "extra installed?)",
                None,
            )
        try:
            check = await provider.check(ce)
        except Exception as e:
            log.exception("provider %s failed to check %s", ce.provider, ce.name)
            return INVALID, f"provider {ce.provider} check failed: {e}", None
        return (VALID if check.ok else INVALID), check.reason, check
