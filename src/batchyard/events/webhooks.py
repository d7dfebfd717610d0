"""Webhook delivery: every job state change event POSTed to each configured webhook.

At least once, in order: each webhook has a cursor in the store (``webhook_cursors``), the id
of the last transition it has dealt with. Events go out one at a time in transition order
(which is each job's order of changes), one event per request as EventBridge targets receive
them. A 2xx answer moves the cursor on; anything else (an error status, a refused connection,
a timeout) is retried after a backoff that doubles up to ``max_backoff_seconds``, and the
event stays at the head so no later event of any job overtakes it. After ``max_attempts``
failures the event is written to ``webhook_dead_letters`` with the last error, and delivery
goes on with the next one.

The cursor and the failure count are stored as delivery goes (at most every
:data:`SAVE_SECONDS`, and before every wait), so a restart resumes where delivery was: after a
graceful stop nothing is sent twice; after a crash, the events sent since the last save are
sent again (same event ids, for consumers to deduplicate).

Only the scheduling leader delivers (one server per database; see scheduler/leader.py). The
delivery runs on a thread of its own with its own event loop, so a slow receiver never slows
the API or the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson
from sqlalchemy import insert, select, update

from batchyard import __version__
from batchyard.config import Webhook
from batchyard.domain.clock import now_ms
from batchyard.events.build import Event, EventBuilder
from batchyard.events.outbox import Outbox, Position
from batchyard.store import tables as t
from batchyard.store.db import Store

log = logging.getLogger(__name__)

SAVE_SECONDS = 0.2
IDLE_SECONDS = 0.2
BATCH = 200
STOP_SECONDS = 5.0


def backoff(failures: int, base: float, ceiling: float) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: ``base`` doubling per
    failure, at most ``ceiling``, with ±10 % jitter so that many servers do not retry in step."""
    return min(ceiling, base * 2 ** max(0, failures - 1)) * random.uniform(0.9, 1.1)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(slots=True)
class _State:
    pos: Position
    failures: int = 0
    next_attempt_at: int | None = None
    last_error: str | None = None
    delivered: int = 0
    saved_at: float = 0.0
    dirty: bool = False


class Observer(Protocol):
    """What delivery reports to (the server's metrics)."""

    def delivered(self, webhook: str, seconds: float) -> None: ...

    def failed(self, webhook: str, seconds: float) -> None: ...

    def dead_lettered(self, webhook: str) -> None: ...


class _Unobserved:
    """The default observer: reports go nowhere."""

    def delivered(self, webhook: str, seconds: float) -> None:
        pass

    def failed(self, webhook: str, seconds: float) -> None:
        pass

    def dead_lettered(self, webhook: str) -> None:
        pass


class WebhookDelivery:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        builder: EventBuilder,
        webhooks: list[Webhook],
        leading: Callable[[], bool],
        observer: Observer | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.builder = builder
        self.webhooks = webhooks
        self.leading = leading
        self.observer: Observer = observer or _Unobserved()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        if not self.webhooks or self._thread is not None:
            return
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name="batchyard-webhooks", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        tasks = [asyncio.create_task(self._run(h), name=f"webhook-{h.name}") for h in self.webhooks]
        while not self._stop.is_set():
            await asyncio.sleep(0.1)
        # a graceful stop lets a POST in flight finish and its cursor be saved, so that
        # nothing is sent twice; only one that takes too long is abandoned (and resent later)
        _, pending = await asyncio.wait(tasks, timeout=STOP_SECONDS)
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < end:
            await asyncio.sleep(min(0.1, max(0.0, end - time.monotonic())))

    # ---- one webhook --------------------------------------------------------------------

    async def _run(self, hook: Webhook) -> None:
        state: _State | None = None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"batchyard/{__version__}",
            **hook.headers,
        }
        async with httpx.AsyncClient(timeout=hook.timeout_seconds, headers=headers) as client:
            try:
                while not self._stop.is_set():
                    if not self.leading():
                        if state is not None:
                            await asyncio.to_thread(self._save, hook, state)
                            state = None  # another server may deliver meanwhile: reload later
                        await self._sleep(0.5)
                        continue
                    if state is None:
                        state = await asyncio.to_thread(self._load, hook)
                    try:
                        await self._step(hook, state, client)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("webhook %s: delivery failed; retrying in 1 s", hook.name)
                        await self._sleep(1.0)
            finally:
                if state is not None and state.dirty:
                    with contextlib.suppress(Exception):
                        self._save(hook, state)

    async def _step(self, hook: Webhook, state: _State, client: httpx.AsyncClient) -> None:
        wait = (state.next_attempt_at or 0) - now_ms()
        if wait > 0:
            await self._sleep(wait / 1000)
            return
        events = await asyncio.to_thread(self._next, hook, state)
        if not events:
            if state.dirty:
                await asyncio.to_thread(self._save, hook, state)
            await self._sleep(IDLE_SECONDS)
            return
        for cursor, event in events:
            if self._stop.is_set():
                break
            if event is None:  # filtered out
                state.pos.id, state.dirty = cursor, True
                continue
            error = await self._post(hook, client, event, state.failures + 1)
            if error is None:
                state.pos.id = cursor
                state.failures, state.next_attempt_at, state.last_error = 0, None, None
                state.delivered += 1
                state.dirty = True
            else:
                state.failures += 1
                state.last_error = error
                if state.failures >= hook.max_attempts:
                    log.warning(
                        "webhook %s: event %s (job %s) dead-lettered after %d attempts: %s",
                        hook.name,
                        event.body["id"],
                        event.job_id,
                        state.failures,
                        error,
                    )
                    await asyncio.to_thread(self._dead_letter, hook, state, cursor, event)
                    self.observer.dead_lettered(hook.name)
                    continue
                delay = backoff(state.failures, hook.backoff_seconds, hook.max_backoff_seconds)
                state.next_attempt_at = now_ms() + int(delay * 1000)
                await asyncio.to_thread(self._save, hook, state)
                # the position stays before this event; re-read from there after the wait
                state.pos.gap = None
                return
            if time.monotonic() - state.saved_at >= SAVE_SECONDS:
                await asyncio.to_thread(self._save, hook, state)
        if state.dirty:
            await asyncio.to_thread(self._save, hook, state)

    async def _post(
        self, hook: Webhook, client: httpx.AsyncClient, event: Event, attempt: int
    ) -> str | None:
        """POST one event; None on success, else what went wrong."""
        body = orjson.dumps(event.body)
        headers = {
            "X-Batchyard-Event-Id": event.body["id"],
            "X-Batchyard-Cursor": str(event.cursor),
            "X-Batchyard-Attempt": str(attempt),
        }
        if hook.secret:
            headers["X-Batchyard-Signature"] = signature(hook.secret, body)
        started = time.monotonic()
        try:
            response = await client.post(hook.url, content=body, headers=headers)
        except httpx.HTTPError as e:
            self.observer.failed(hook.name, time.monotonic() - started)
            return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        seconds = time.monotonic() - started
        if 200 <= response.status_code < 300:
            self.observer.delivered(hook.name, seconds)
            return None
        self.observer.failed(hook.name, seconds)
        return f"HTTP {response.status_code}: {response.text[:200]}"

    # ---- store (worker threads) -----------------------------------------------------------

    def _next(self, hook: Webhook, state: _State) -> list[tuple[int, Event | None]]:
        """The next transitions after the cursor, as events (None where filtered out)."""
        probe = Position(state.pos.id, state.pos.gap)
        rows = self.outbox.read(probe, BATCH)
        state.pos.gap = probe.gap
        if not rows:
            return []
        by_cursor = {e.cursor: e for e in self.builder.build(rows)}
        out: list[tuple[int, Event | None]] = []
        for r in rows:
            event = by_cursor.get(r.id)
            if event is not None and not _wanted(hook, event):
                event = None
            out.append((r.id, event))
        return out

    def _load(self, hook: Webhook) -> _State:
        c = t.webhook_cursors.c
        with self.store.write() as conn:
            row = conn.execute(select(t.webhook_cursors).where(c.name == hook.name)).first()
            if row is None:
                start = 0 if hook.start == "earliest" else self.outbox.latest()
                conn.execute(
                    insert(t.webhook_cursors).values(
                        name=hook.name, cursor=start, failures=0, updated_at=now_ms()
                    )
                )
                log.info("webhook %s: delivering events after transition %d", hook.name, start)
                return _State(Position(start), saved_at=time.monotonic())
        return _State(
            Position(row.cursor),
            failures=row.failures,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            delivered=row.delivered,
            saved_at=time.monotonic(),
        )

    def _save(self, hook: Webhook, state: _State) -> None:
        c = t.webhook_cursors.c
        with self.store.write(durable=False) as conn:
            conn.execute(
                update(t.webhook_cursors)
                .where(c.name == hook.name)
                .values(
                    cursor=state.pos.id,
                    failures=state.failures,
                    next_attempt_at=state.next_attempt_at,
                    last_error=state.last_error,
                    delivered=state.delivered,
                    updated_at=now_ms(),
                )
            )
        state.saved_at = time.monotonic()
        state.dirty = False

    def _dead_letter(self, hook: Webhook, state: _State, cursor: int, event: Event) -> None:
        with self.store.write() as conn:
            conn.execute(
                insert(t.webhook_dead_letters).values(
                    webhook=hook.name,
                    transition_id=cursor,
                    job_id=event.job_id,
                    event=event.body,
                    attempts=state.failures,
                    last_error=state.last_error,
                    created_at=now_ms(),
                )
            )
            state.pos.id = cursor
            state.failures, state.next_attempt_at = 0, None
            conn.execute(
                update(t.webhook_cursors)
                .where(t.webhook_cursors.c.name == hook.name)
                .values(
                    cursor=cursor,
                    failures=0,
                    next_attempt_at=None,
                    last_error=state.last_error,
                    delivered=state.delivered,
                    updated_at=now_ms(),
                )
            )
        state.saved_at = time.monotonic()
        state.dirty = False


def _wanted(hook: Webhook, event: Event) -> bool:
    if hook.statuses is not None and event.status not in hook.statuses:
        return False
    return hook.queues is None or event.queue in hook.queues


def status(store: Store, webhooks: list[Webhook], latest: int) -> list[dict[str, Any]]:
    """Each configured webhook's delivery state, for the API, the dashboard and metrics."""
    with store.read() as conn:
        rows = {r.name: r for r in conn.execute(select(t.webhook_cursors))}
        dead: dict[str, int] = {}
        for d in conn.execute(select(t.webhook_dead_letters.c.webhook)):
            dead[d.webhook] = dead.get(d.webhook, 0) + 1
    out = []
    for h in webhooks:
        r = rows.get(h.name)
        out.append(
            {
                "name": h.name,
                "url": h.url,
                "cursor": r.cursor if r else None,
                "backlog": max(0, latest - r.cursor) if r else None,
                "failures": r.failures if r else 0,
                "next_attempt_at": r.next_attempt_at if r else None,
                "last_error": r.last_error if r else None,
                "delivered": r.delivered if r else 0,
                "dead_letters": dead.get(h.name, 0),
            }
        )
    return out


def dead_letters(store: Store, webhook: str | None, limit: int = 100) -> list[dict[str, Any]]:
    q = select(t.webhook_dead_letters).order_by(t.webhook_dead_letters.c.id.desc()).limit(limit)
    if webhook is not None:
        q = q.where(t.webhook_dead_letters.c.webhook == webhook)
    with store.read() as conn:
        return [
            {
                "id": r.id,
                "webhook": r.webhook,
                "transition_id": r.transition_id,
                "job_id": r.job_id,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "created_at": r.created_at,
                "event": r.event,
            }
            for r in conn.execute(q)
        ]
