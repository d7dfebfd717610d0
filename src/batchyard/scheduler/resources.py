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
)
from batchyard.providers.base import Capacity, Provider
from batchyard.store import resources as repo
from batchyard.store.db import Store

log = logging.getLogger(__name__)


class ResourceReconciler:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        busy: Callable[[], tuple[set[int], set[int]]] = lambda: (set(), set()),
    ) -> None:
        """``busy`` returns (compute environment ids, queue ids) that still have unfinished
        jobs, which keeps them from being removed."""
        self.store = store
        self.providers = providers
        self.busy = busy
        self.capacity: dict[str, Capacity] = {}

    async def run_once(self, topics: set[str] | None = None) -> bool:
        """One pass; True if anything changed (so the job scheduler should look again)."""
        changed = False
        with self.store.read() as conn:
            ces = repo.compute_environments(conn)
            queues = repo.job_queues(conn, statuses=(CREATING, UPDATING, DELETING))
        busy_ces, busy_queues = self.busy()
        for ce in ces:
            provider = self.providers.get(ce.provider)
            if ce.status in (CREATING, UPDATING) or ce.name not in self.capacity:
                if provider is None:
                    status, reason = (
                        INVALID,
                        (
                            f"provider {ce.provider!r} is not available on this server "
                            "(is its optional extra installed?)"
                        ),
                    )
                else:
                    try:
                        check = await provider.check(ce)
                    except Exception as e:  # a provider failure makes the CE INVALID, not us
                        log.exception("provider %s failed to check %s", ce.provider, ce.name)
                        status, reason = INVALID, f"provider {ce.provider} check failed: {e}"
                    else:
                        status = VALID if check.ok else INVALID
                        reason = check.reason
                        self.capacity[ce.name] = check.capacity
                if ce.status != DELETING and (ce.status, ce.status_reason) != (status, reason):
                    with self.store.write() as conn:
                        repo.update_compute_environment(
                            conn, ce.id, status=status, status_reason=reason, updated_at=now_ms()
                        )
                    changed = True
            if ce.status == DELETING and ce.id not in busy_ces:
                with self.store.write() as conn:
                    repo.delete_compute_environment(conn, ce.id)
                self.capacity.pop(ce.name, None)
                changed = True
        for q in queues:
            if q.status == DELETING:
                if q.id in busy_queues:
                    continue
                status, reason = DELETED, "Deleted"
            else:
                status, reason = VALID, "JobQueue Healthy"
            with self.store.write() as conn:
                repo.update_job_queue(
                    conn, q.id, status=status, status_reason=reason, updated_at=now_ms()
                )
            changed = True
        return changed
