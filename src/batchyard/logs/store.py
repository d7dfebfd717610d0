"""Log streams on disk.

A stream is a file of records ``<epoch-ms> <line>\\n``, one per line of output, appended by
whoever runs the attempt (the local agent writes it directly). A stream's name follows AWS
Batch's form, ``<job-definition>/default/<32 hex digits>``; the hex part names the file, so
reading a stream needs no lookup. Tokens for paging are byte offsets into the file.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

GROUP = "/aws/batch/job"
_STREAM = re.compile(r"^[A-Za-z0-9_-]{1,128}/default/([0-9a-f]{32})$")


@dataclass(frozen=True, slots=True)
class Event:
    timestamp: int
    message: str
    offset: int  # byte offset of the record, for tokens
    end: int  # byte offset just past it


class LogStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[str] = set()  # the 256 subdirectories, made once each

    def new_stream(self, job_definition: str) -> str:
        return f"{job_definition}/default/{uuid.uuid4().hex}"

    def path(self, stream: str) -> Path | None:
        """The file of a stream, or None if the name is not one of ours."""
        m = _STREAM.match(stream)
        if m is None:
            return None
        key = m.group(1)
        return self.root / key[:2] / f"{key}.log"

    def prepare(self, stream: str) -> str:
        """The file a new stream's writer appends to, its directory made (a plain string:
        the scheduler asks for one per job, and pathlib's parsing would double the cost)."""
        m = _STREAM.match(stream)
        assert m is not None, stream
        key = m.group(1)
        if key[:2] not in self._dirs:
            (self.root / key[:2]).mkdir(parents=True, exist_ok=True)
            self._dirs.add(key[:2])
        return f"{self.root}/{key[:2]}/{key}.log"

    def size(self, stream: str) -> int:
        path = self.path(stream)
        try:
            return path.stat().st_size if path else 0
        except OSError:
            return 0

    def read_forward(self, stream: str, offset: int, limit: int, max_bytes: int) -> list[Event]:
        """Up to ``limit`` events starting at byte ``offset``."""
        path = self.path(stream)
        if path is None:
            return []
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(max_bytes)
        except FileNotFoundError:
            return []
        return _parse(data, offset, limit, complete_only=True)

    def read_backward(
        self, stream: str, end: int | None, limit: int, max_bytes: int
    ) -> list[Event]:
        """Up to ``limit`` events ending before byte ``end`` (the file's end when None)."""
        path = self.path(stream)
        if path is None:
            return []
        try:
            with open(path, "rb") as f:
                size = f.seek(0, 2)
                stop = size if end is None else min(end, size)
                start = max(0, stop - max_bytes)
                f.seek(start)
                data = f.read(stop - start)
        except FileNotFoundError:
            return []
        if start > 0:  # drop the partial record we landed in
            nl = data.find(b"\n")
            if nl < 0:
                return []
            start += nl + 1
            data = data[nl + 1 :]
        events = _parse(data, start, None, complete_only=True)
        return events[-limit:] if limit else events


def _parse(data: bytes, base: int, limit: int | None, complete_only: bool) -> list[Event]:
    events: list[Event] = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            if complete_only:
                break
            nl = len(data)
        line = data[pos:nl]
        ts, _, text = line.partition(b" ")
        try:
            timestamp = int(ts)
        except ValueError:
            timestamp = 0
            text = line
        events.append(Event(timestamp, text.decode("utf-8", "replace"), base + pos, base + nl + 1))
        pos = nl + 1
        if limit is not None and len(events) >= limit:
            break
    return events
