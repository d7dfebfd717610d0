"""Reading job output: CloudWatch Logs' GetLogEvents, DescribeLogStreams and FilterLogEvents
over the attempts' log streams, in the single log group AWS Batch writes to."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import orjson

from batchyard.errors import InvalidRequest, NotFound
from batchyard.logs.store import GROUP, Event, LogStore
from batchyard.service.context import Context
from batchyard.store import jobs as repo

MAX_EVENTS = 10_000
MAX_BYTES = 1 << 20
MAX_STREAMS = 50


@dataclass(slots=True)
class StreamInfo:
    name: str
    created_at: int
    first_event: int | None
    last_event: int | None
    stored_bytes: int


@dataclass(slots=True)
class EventPage:
    events: list[Event]
    forward: str
    backward: str


def check_group(group: str | None) -> None:
    if group is not None and group != GROUP:
        raise NotFound(
            f"log group {group!r} does not exist; batchyard writes job output to {GROUP}"
        )


def _offset(token: str, kind: str) -> int:
    prefix, _, number = token.partition("/")
    if prefix != kind or not number.isdigit():
        raise InvalidRequest(f"nextToken {token!r} is not a token GetLogEvents issued")
    return int(number)


class Logs:
    def __init__(self, ctx: Context, store: LogStore) -> None:
        self.ctx = ctx
        self.store = store

    def _require(self, stream: str) -> Any:
        with self.ctx.store.read() as conn:
            row = repo.attempt_by_stream(conn, stream)
        if row is None or self.store.path(stream) is None:
            raise NotFound(f"log stream {stream!r} does not exist in log group {GROUP}")
        return row

    def events(
        self,
        stream: str,
        *,
        start_from_head: bool = False,
        next_token: str | None = None,
        limit: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> EventPage:
        """GetLogEvents: a page of events and the tokens to move forward or back."""
        self._require(stream)
        limit = limit or MAX_EVENTS
        if not 1 <= limit <= MAX_EVENTS:
            raise InvalidRequest(f"limit is {limit}; it must be between 1 and {MAX_EVENTS}")
        if next_token is not None and next_token.startswith("b/"):
            end = _offset(next_token, "b")
            events = self.store.read_backward(stream, end, limit, MAX_BYTES)
            start = events[0].offset if events else end
            return EventPage(self._window(events, start_time, end_time), f"f/{end}", f"b/{start}")
        if next_token is not None or start_from_head:
            begin = _offset(next_token, "f") if next_token is not None else 0
            events = self.store.read_forward(stream, begin, limit, MAX_BYTES)
            end = events[-1].end if events else begin
            return EventPage(self._window(events, start_time, end_time), f"f/{end}", f"b/{begin}")
        events = self.store.read_backward(stream, None, limit, MAX_BYTES)
        end = events[-1].end if events else self.store.size(stream)
        start = events[0].offset if events else end
        return EventPage(self._window(events, start_time, end_time), f"f/{end}", f"b/{start}")

    @staticmethod
    def _window(events: list[Event], start: int | None, end: int | None) -> list[Event]:
        if start is None and end is None:
            return events
        return [
            e
            for e in events
            if (start is None or e.timestamp >= start) and (end is None or e.timestamp < end)
        ]

    def streams(
        self, prefix: str | None, next_token: str | None, limit: int | None, descending: bool
    ) -> tuple[list[StreamInfo], str | None]:
        """DescribeLogStreams, in creation order (or newest first with ``descending``)."""
        limit = limit or MAX_STREAMS
        if not 1 <= limit <= MAX_STREAMS:
            raise InvalidRequest(f"limit is {limit}; it must be between 1 and {MAX_STREAMS}")
        after = self.ctx.tokens.decode(next_token, "DescribeLogStreams", [prefix, descending])
        with self.ctx.store.read() as conn:
            rows = repo.streams_with_prefix(conn, prefix, after, limit + 1, descending)
        out = []
        for r in rows[:limit]:
            first = self.store.read_forward(r.log_stream, 0, 1, 64 * 1024)
            last = self.store.read_backward(r.log_stream, None, 1, 64 * 1024)
            out.append(
                StreamInfo(
                    name=r.log_stream,
                    created_at=r.started_at or r.stopped_at or 0,
                    first_event=first[0].timestamp if first else None,
                    last_event=last[-1].timestamp if last else None,
                    stored_bytes=self.store.size(r.log_stream),
                )
            )
        token = None
        if len(rows) > limit:
            token = self.ctx.tokens.encode(
                "DescribeLogStreams", [prefix, descending], rows[limit - 1].id
            )
        return out, token

    def filter(
        self,
        *,
        names: list[str] | None,
        prefix: str | None,
        pattern: str | None,
        start_time: int | None,
        end_time: int | None,
        limit: int | None,
        next_token: str | None,
    ) -> tuple[list[tuple[str, Event]], list[str], str | None]:
        """FilterLogEvents over the named streams (or those with ``prefix``)."""
        if names and prefix:
            raise InvalidRequest("give logStreamNames or logStreamNamePrefix, not both")
        limit = limit or MAX_EVENTS
        match = _matcher(pattern)
        cursor: list[Any] = [0, 0]  # stream index, byte offset
        if next_token:
            try:
                cursor = orjson.loads(base64.urlsafe_b64decode(next_token.encode()))
            except ValueError:
                raise InvalidRequest("nextToken is not a token FilterLogEvents issued") from None
        if names:
            streams = names
        else:
            with self.ctx.store.read() as conn:
                streams = [
                    r.log_stream for r in repo.streams_with_prefix(conn, prefix, None, 10_000)
                ]
        found: list[tuple[str, Event]] = []
        index, offset = int(cursor[0]), int(cursor[1])
        while index < len(streams) and len(found) < limit:
            events = self.store.read_forward(streams[index], offset, 1000, MAX_BYTES)
            if not events:
                index, offset = index + 1, 0
                continue
            for e in events:
                offset = e.end
                in_time = (start_time is None or e.timestamp >= start_time) and (
                    end_time is None or e.timestamp < end_time
                )
                if in_time and match(e.message):
                    found.append((streams[index], e))
                    if len(found) >= limit:
                        break
        token = None
        if index < len(streams):
            token = base64.urlsafe_b64encode(orjson.dumps([index, offset])).decode()
        return found, streams[:index], token


def _matcher(pattern: str | None) -> Any:
    """CloudWatch's simplest filter patterns: terms that must all appear, or "a phrase"."""
    if not pattern or not pattern.strip():
        return lambda _m: True
    terms = [t.strip('"') for t in re.findall(r'"[^"]*"|\S+', pattern)]
    return lambda message: all(t in message for t in terms)
