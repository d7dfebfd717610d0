"""Server-Sent Events: one generic stream that follows a cursor.

A stream sends each item as an SSE message whose ``id`` is the item's cursor. A client that
reconnects sends the last id it saw (browsers' EventSource do it by themselves, in the
``Last-Event-ID`` header), and the stream resumes right after it: nothing is missed and
nothing repeated. When items are skipped (filtered out), a bare ``id:`` line still moves the
client's cursor on. A comment line every :data:`HEARTBEAT_SECONDS` keeps proxies from closing
an idle stream and lets the server notice a client that went away. The stream ends when the
server shuts down, so it never holds up a graceful stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import StreamingResponse

HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 0.3

# fetch(cursor) -> (items as (cursor, event name, data), new cursor). Runs in a worker thread.
Fetch = Callable[[Any], tuple[list[tuple[Any, str, Any]], Any]]


def message(data: Any, event: str | None = None, cursor: Any = None) -> bytes:
    parts = []
    if cursor is not None:
        parts.append(f"id: {cursor}\n".encode())
    if event:
        parts.append(f"event: {event}\n".encode())
    parts.append(b"data: " + orjson.dumps(data) + b"\n\n")
    return b"".join(parts)


def last_event_id(request: Request) -> str | None:
    """The cursor a reconnecting client resumes from: ``Last-Event-ID``, else ``?after=``."""
    return request.headers.get("last-event-id") or request.query_params.get("after")


async def _items(
    fetch: Fetch, cursor: Any, stopping: threading.Event, poll: float
) -> AsyncIterator[bytes]:
    yield b"retry: 1000\n\n"
    quiet_since = time.monotonic()
    while not stopping.is_set():
        items, new_cursor = await anyio.to_thread.run_sync(fetch, cursor)
        for item_cursor, name, data in items:
            yield message(data, name, item_cursor)
        if new_cursor != cursor and (not items or items[-1][0] != new_cursor):
            yield f"id: {new_cursor}\n\n".encode()
        cursor = new_cursor
        if items:
            quiet_since = time.monotonic()
            continue
        if time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
            yield b": keep-alive\n\n"
            quiet_since = time.monotonic()
        await anyio.sleep(poll)


def sse(
    fetch: Fetch, cursor: Any, stopping: threading.Event, poll: float = POLL_SECONDS
) -> StreamingResponse:
    return StreamingResponse(
        _items(fetch, cursor, stopping, poll),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
