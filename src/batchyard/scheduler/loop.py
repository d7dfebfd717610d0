"""The scheduler loop.

It runs on its own thread with its own event loop, so its store transactions and provider
I/O never stall the API's event loop. It sleeps until woken (a submission, a completion, a
resource change); wake-ups coalesce, so a burst of submissions costs one pass, and nothing on
the critical path waits for a polling interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable

from batchyard.scheduler.leader import Leadership
from batchyard.service.context import SUBMITTED
from batchyard.store.db import Store

log = logging.getLogger(__name__)

Pass = Callable[[set[str]], Awaitable[bool]]
COALESCE_SECONDS = 0.002
# While only submissions arrive, passes come at most this often: a burst of SubmitJob calls
# is served by a few passes, not hundreds (each one a write transaction that the API's
# commits queue behind). Only a pass that follows another pass woken by submissions alone
# waits so long: a server that was idle, or busy with jobs ending, answers at once.
SUBMISSIONS_COALESCE_SECONDS = 0.02


class Scheduler:
    def __init__(self, store: Store) -> None:
        self.leadership = Leadership(store, self.wake)
        self._passes: list[Pass] = []
        self._on_start: list[Callable[[], Awaitable[None]]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._topics: set[str] = set()
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._stopping = False
        self._last_pass = 0.0
        self._last_only_submissions = False

    def add_pass(
        self,
        run_pass: Pass,
        on_start: Callable[[], Awaitable[None]] | None = None,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Passes run in order on each wake-up with the topics that woke it; a pass returns
        True when it changed something the others should look at again. ``on_start`` runs
        once on the scheduler's loop before the first pass, ``on_stop`` after the last."""
        self._passes.append(run_pass)
        if on_start is not None:
            self._on_start.append(on_start)
        if on_stop is not None:
            self._on_stop.append(on_stop)

    def wake_later(self, delay: float) -> None:
        """Wake at the latest after ``delay`` seconds (on the scheduler's own loop only)."""
        assert self._loop is not None and self._event is not None
        when = self._loop.time() + delay
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        if self._event is not None:
            self._event.set()

    def wake(self, topic: str) -> None:
        """Thread-safe: called by the service layer after committing a change."""
        with self._lock:
            self._topics.add(topic)
        loop, event = self._loop, self._event
        if loop is not None and event is not None and not loop.is_closed():
            # the loop may close between the check and the call
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._thread_main, name="batchyard-scheduler", daemon=True
        )
        self._thread.start()
        self._started.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """Let the current pass finish (it holds a transaction), then end the loop."""
        self._stopping = True
        loop, event = self._loop, self._event
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._started.set()  # the API serves from now on, leader or not
        while not self._stopping:
            if not await self.leadership.acquire(lambda: self._stopping):
                break
            try:
                while not self._stopping and self.leadership.leading:
                    try:
                        for hook in self._on_start:
                            await hook()
                    except Exception:
                        log.exception("the scheduler could not start; trying again in 1 s")
                        await self._stop_hooks()
                        await asyncio.sleep(1.0)
                        continue
                    self._event.set()  # the first pass picks up whatever the store holds
                    if not await self._passes_while_leading():
                        break
                    # a pass failed: what it had taken in is gone with its transaction, so
                    # start over from the store (and the providers' own account), as a new
                    # leader would
                    await self._stop_hooks()
            finally:
                await self._stop_hooks()
                await self.leadership.release()

    async def _stop_hooks(self) -> None:
        for hook in self._on_stop:
            try:
                await hook()
            except Exception:
                log.exception("scheduler stop hook failed")

    async def _passes_while_leading(self) -> bool:
        """Run passes until stopped or no longer leading (False), or until one fails
        (True: the caller starts over)."""
        assert self._event is not None and self._loop is not None
        while not self._stopping and self.leadership.leading:
            await self._event.wait()
            with self._lock:
                storm = self._last_only_submissions and self._topics == {SUBMITTED}
            coalesce = SUBMISSIONS_COALESCE_SECONDS if storm else COALESCE_SECONDS
            if self._loop.time() - self._last_pass < coalesce:
                # busy: let a little more news arrive, so that one pass (one transaction)
                # serves it all; an idle server's first wake-up runs at once
                await asyncio.sleep(coalesce - (self._loop.time() - self._last_pass))
            self._event.clear()
            if self._stopping or not self.leadership.leading:
                break
            with self._lock:
                topics, self._topics = self._topics, set()
            self._last_only_submissions = topics == {SUBMITTED}
            again = False
            for run_pass in self._passes:
                try:
                    again |= await run_pass(topics)
                except Exception:
                    log.exception("scheduler pass failed; starting over from the store in 1 s")
                    with self._lock:
                        self._topics |= topics
                    await asyncio.sleep(1.0)
                    return True
            self._last_pass = self._loop.time()
            if again:
                self._event.set()
        return False
