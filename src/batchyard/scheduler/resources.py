"""Moves compute environments and queues through AWS's lifecycle statuses.

CREATING/UPDATING compute environments are checked by their provider and become VALID or
INVALID (with the provider's reason); DELETING ones are removed once nothing runs on them,
and their provider is told to forget them. Queues become VALID after a change, and DELETED
(a tombstone) once deleted and drained.

A provider's check may be slow (connecting to a cluster), so checks run as tasks of their
own and never hold up a scheduling pass; a provider whose capacity changes by itself (nodes
joining a cluster) is checked again every ``recheck_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import time
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
        wake: Callable[[str], None] = lambda topic: None,
        wake_later: Callable[[float], None] = lambda delay: None,
    ) -> None:
        """``busy`` returns (compute environment names, queue ids) that still have unfinished
        jobs, which keeps them from being removed."""
        self.store = store
        self.providers = providers
        self.busy = busy
        self.wake = wake
        self.wake_later = wake_later
        self.checks: dict[str, Check | None] = {}
        self.checked_at: dict[str, float] = {}
        self.waiting = True  # a deletion waits for jobs to end
        self._checking: dict[str, asyncio.Task[None]] = {}
        self._recheck_every: dict[str, float] = {}

    async def run_once(self, topics: set[str] | None = None) -> bool:
        """One pass; True if anything changed (so the job scheduler should look again).

        It only looks when woken for a resource change, while something it waits on (a
        deletion) may have become possible because jobs ended, or when a re-check is due."""
        due = self._due()
        if topics is not None and RESOURCES not in topics and not self.waiting and not due:
            self._arm_recheck()
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
                self.checked_at.pop(ce.name, None)
                provider = self.providers.get(ce.provider)
                if provider is not None:
                    try:
                        await provider.forget(ce)
                    except Exception:
                        log.exception("provider %s failed to forget %s", ce.provider, ce.name)
                changed = True
                continue
            fresh = ce.status not in (CREATING, UPDATING) and ce.name in self.checks
            if (fresh and ce.name not in due) or ce.name in self._checking:
                continue
            self._checking[ce.name] = asyncio.create_task(
                self._check_and_settle(ce), name=f"check {ce.name}"
            )
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
        self._recheck_every = {
            ce.name: p.recheck_seconds
            for ce in ces
            if (p := self.providers.get(ce.provider)) is not None and p.recheck_seconds
        }
        self._arm_recheck()
        return changed

    def _due(self) -> set[str]:
        now = time.monotonic()
        due = set()
        for name, at in self.checked_at.items():
            every = self._recheck_every.get(name)
            if every is not None and now - at >= every:
                due.add(name)
        return due

    def _arm_recheck(self) -> None:
        """Wake for the next re-check that is due (a check under way re-arms when done)."""
        waits = [
            every - (time.monotonic() - self.checked_at.get(name, 0.0))
            for name, every in self._recheck_every.items()
            if name not in self._checking
        ]
        if waits:
            self.wake_later(max(0.05, min(waits)))

    async def _check_and_settle(self, ce: ComputeEnvironment) -> None:
        try:
            status, reason, check = await self._check(ce)
            self.checked_at[ce.name] = time.monotonic()
            if (ce.status, ce.status_reason) == (status, reason):
                self.checks[ce.name] = check
                return
            with self.store.write() as conn:
                settled = repo.settle(
                    conn, "compute_environments", ce.id, ce.updated_at, status, reason, now_ms()
                )
            if settled:
                self.checks[ce.name] = check
            else:  # it changed while we looked: look again
                self.waiting = True
        except Exception:
            log.exception("checking compute environment %s failed", ce.name)
            self.waiting = True
        finally:
            self._checking.pop(ce.name, None)
            self.wake(RESOURCES)

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

    async def close(self) -> None:
        for task in list(self._checking.values()):
            task.cancel()
        self._checking.clear()
