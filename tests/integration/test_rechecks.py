"""A provider whose capacity changes by itself is checked again and again, also on an idle
server (the scheduler's own loop and reconciler, with a provider written for the test)."""

from __future__ import annotations

import time

from helpers import wait_for

from batchyard.config import Settings
from batchyard.providers.base import Capacity, Check, Provider
from batchyard.scheduler.loop import Scheduler
from batchyard.scheduler.resources import ResourceReconciler
from batchyard.service.context import Context
from batchyard.service.pagination import Tokens
from batchyard.service.services import Services
from batchyard.store.db import Store


class Growing(Provider):
    """A cluster that gains a vCPU at every check."""

    name = "growing"
    recheck_seconds = 0.2

    def __init__(self) -> None:
        self.checks: list[float] = []

    async def check(self, ce):
        self.checks.append(time.monotonic())
        return Check(True, f"{len(self.checks)} vCPUs", Capacity(len(self.checks), 1024))


def test_an_idle_server_rechecks(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    provider = Growing()
    scheduler = Scheduler(store)
    reconciler = ResourceReconciler(
        store, {"growing": provider}, wake=scheduler.wake, wake_later=scheduler.wake_later
    )
    scheduler.add_pass(reconciler.run_once, on_stop=reconciler.close)
    ctx = Context(
        store,
        Settings(data_dir=tmp_path),
        Tokens(b"k" * 32),
        scheduler.wake,
        frozenset({"growing"}),
    )
    Services(ctx).compute_environments.create(
        name="ce", type="UNMANAGED", tags={"batchyard:provider": "growing"}
    )
    scheduler.start()
    try:
        # nothing is submitted or changed: only the rechecks can make the capacity grow, and
        # it goes up by one vCPU per check
        wait_for(
            lambda: (reconciler.capacity("ce") or Capacity(0, 0)).vcpus >= 5,
            what="five rechecks to raise the capacity to 5 vCPUs",
        )
    finally:
        scheduler.stop()
        store.close()
    assert len(provider.checks) >= 5
