"""The event endpoints, beside the AWS API under ``/batchyard/v1``:

    GET /batchyard/v1/events                 a page of events (JSON): {"events": [...],
                                             "cursor": "<id>"}; pass the cursor back as
                                             ``after`` for the next page
    GET /batchyard/v1/events?follow=true     the same events as a Server-Sent Events stream
        (or Accept: text/event-stream)       that stays open; each message's id is its cursor
    GET /batchyard/v1/webhooks               each configured webhook's delivery state
    GET /batchyard/v1/webhooks/dead-letters  events a webhook refused max_attempts times

Where a page or stream starts: ``after=<cursor>`` (or the ``Last-Event-ID`` header),
``since=<epoch ms | ISO 8601>``, or ``tail=<n>`` (the last n events); else a page starts at
the oldest event kept and a stream at the newest (only what happens from now on). Filters:
``queue`` (name), ``jobId`` (a job and its array children or nodes), ``status`` (the status
changed to); repeat a filter to allow several values.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.api.protocol import error_response
from batchyard.config import Webhook
from batchyard.errors import BatchyardError, InvalidRequest
from batchyard.events import webhooks as wh
from batchyard.events.build import Event, EventBuilder
from batchyard.events.outbox import Outbox, Position
from batchyard.events.stream import last_event_id, sse
from batchyard.store.db import Store

PREFIX = "/batchyard/v1"
MAX_PAGE = 1000
SCAN_CHUNK = 1000  # transitions read at a time
MAX_SCAN = 100_000  # transitions scanned for one page at most


def parse_time(value: str, name: str) -> int:
    """Epoch milliseconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{name}: {value!r} is neither milliseconds since the epoch nor an ISO 8601 time"
        ) from None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _cursor(value: str, name: str = "after") -> int:
    if not value.isdigit():
        raise InvalidRequest(f"{name}: {value!r} is not a cursor (a transition id)")
    return int(value)


class Filter:
    def __init__(self, request: Request) -> None:
        q = request.query_params
        self.queues = {v for v in q.getlist("queue") if v} or None
        self.statuses = {v.upper() for v in q.getlist("status") if v} or None
        self.jobs = [v for v in q.getlist("jobId") if v] or None

    @property
    def active(self) -> bool:
        return self.queues is not None or self.statuses is not None or self.jobs is not None

    def __call__(self, e: Event) -> bool:
        return self.match(e.job_id, e.queue, e.status)

    def match(self, job_id: str, queue: str, status: str) -> bool:
        if self.queues is not None and queue not in self.queues:
            return False
        if self.statuses is not None and status not in self.statuses:
            return False
        if self.jobs is not None:
            return any(job_id == j or job_id.startswith((f"{j}:", f"{j}#")) for j in self.jobs)
        return True


class EventsApi:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        builder: EventBuilder,
        webhooks: list[Webhook],
        stopping: threading.Event,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.builder = builder
        self.webhooks = webhooks
        self.stopping = stopping

    def start(self, request: Request, follow: bool) -> int:
        q = request.query_params
        after = last_event_id(request)
        if after:
            return _cursor(after)
        if q.get("since"):
            return self.outbox.before_time(parse_time(q["since"], "since"))
        if q.get("tail"):
            return self.outbox.back(_cursor(q["tail"], "tail"))
        return self.outbox.latest() if follow else 0

    def fetch(self, pos: Position, keep: Filter, limit: int) -> list[Event]:
        rows = self.outbox.read(pos, limit)
        if keep.active and rows:
            # filter on the job's id and queue first: events are built only for what is kept
            jobs = self.builder.jobs_of(rows)
            rows = [
                r for r in rows if r.job_seq in jobs and keep.match(*jobs[r.job_seq], r.to_status)
            ]
        return [e for e in self.builder.build(rows) if keep(e)]

    async def events(self, request: Request) -> Response:
        try:
            q = request.query_params
            follow = q.get("follow", "").lower() in ("1", "true", "yes") or (
                "text/event-stream" in request.headers.get("accept", "")
            )
            keep = Filter(request)
            start = await anyio.to_thread.run_sync(self.start, request, follow)
            if follow:
                return self._stream(Position(start), keep)
            limit = int(q.get("limit", "100")) if q.get("limit", "100").isdigit() else -1
            if not 1 <= limit <= MAX_PAGE:
                raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
            pos = Position(start)
            found: list[Event] = []
            # read on until the page is full, the outbox has nothing more to give now, or
            # enough was scanned for one answer (the cursor says where to go on from)
            scanned = 0
            while len(found) < limit and scanned < MAX_SCAN:
                before = pos.id
                found += await anyio.to_thread.run_sync(self.fetch, pos, keep, SCAN_CHUNK)
                if pos.id == before:
                    break
                scanned += SCAN_CHUNK
            found = found[:limit]
            cursor = found[-1].cursor if len(found) == limit else pos.id
            body = {"events": [e.body for e in found], "cursor": str(cursor)}
            return Response(orjson.dumps(body), media_type="application/json")
        except BatchyardError as e:
            return error_response(e)

    def _stream(self, pos: Position, keep: Filter) -> Response:
        def fetch(_cursor: Any) -> tuple[list[tuple[Any, str, Any]], Any]:
            events = self.fetch(pos, keep, 500)
            return [(e.cursor, "job-state-change", e.body) for e in events], pos.id

        return sse(fetch, pos.id, self.stopping)

    async def webhook_status(self, _request: Request) -> Response:
        def run() -> Any:
            return wh.status(self.store, self.webhooks, self.outbox.latest())

        rows = await anyio.to_thread.run_sync(run)
        return Response(
            orjson.dumps({"webhooks": [_camel(r) for r in rows]}), media_type="application/json"
        )

    async def dead_letters(self, request: Request) -> Response:
        name = request.query_params.get("webhook")
        rows = await anyio.to_thread.run_sync(lambda: wh.dead_letters(self.store, name))
        return Response(
            orjson.dumps({"deadLetters": [_camel(r) for r in rows]}),
            media_type="application/json",
        )

    def routes(self) -> list[Route]:
        return [
            Route(f"{PREFIX}/events", self.events, methods=["GET"]),
            Route(f"{PREFIX}/webhooks", self.webhook_status, methods=["GET"]),
            Route(f"{PREFIX}/webhooks/dead-letters", self.dead_letters, methods=["GET"]),
        ]


def _camel(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        head, *rest = k.split("_")
        out[head + "".join(p.title() for p in rest)] = v
    return out
