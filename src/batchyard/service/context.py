"""What every use case needs: the store, the settings, the token signer and a way to wake
the scheduler after a change it should act on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from batchyard.config import Settings
from batchyard.service.pagination import Tokens
from batchyard.store.db import Store

# Topics a change can wake the scheduler with.
RESOURCES = "resources"  # a compute environment or queue changed (status, state, capacity)
JOBS = "jobs"  # jobs were cancelled or terminated
SUBMITTED = "submitted"  # jobs were submitted


@dataclass(slots=True)
class Context:
    store: Store
    settings: Settings
    tokens: Tokens
    wake: Callable[[str], None]
    providers: frozenset[str] = frozenset({"local"})
    # jobs the service ended (cancel): the scheduler resolves their dependents
    finished: Callable[[list[int]], None] = lambda seqs: None
    # jobs stored PENDING on dependencies: the scheduler reads them again, since a dependency
    # may have finished while they were being stored (and it looked for dependents too early)
    recheck: Callable[[list[int]], None] = lambda seqs: None
    # bumped by every resource change in this process: caches of resources compare it
    generation: int = 0

    def changed(self, topic: str) -> None:
        """After committing a change: tell the scheduler, and invalidate resource caches."""
        if topic == RESOURCES:
            self.generation += 1
        self.wake(topic)
