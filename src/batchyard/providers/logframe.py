"""How a job's output becomes log records, ``<epoch-ms> <message>\\n``: one framing for every
provider (the local agent writes the records to the stream's file, the Ray task sends them
to the server, which writes them).

- A record holds one line of output without its newline; the log store serves each record as
  one event.
- A line longer than :data:`MAX_EVENT_BYTES` is split into several records, in order, each at
  most that long. A cut that would fall inside a UTF-8 character moves back to the
  character's start, so every piece of a text line still reads as text.
- A partial line stays in the buffer until its newline comes or the stream ends (then it is a
  record of its own). Only pieces of a line already longer than an event leave early, so the
  buffer never holds more than one event plus one read.
- No byte is dropped, with one deliberate exception: the attempt's log limit. Once the records
  would pass it, one notice saying so is written instead, and the rest of the output is
  discarded.

This module imports nothing but the standard library: the Ray provider ships it to the
cluster by value, together with :mod:`batchyard.providers.ray.remote`.
"""

from __future__ import annotations

import time

# CloudWatch Logs takes events of at most 256 KiB, counting each event's message plus 26
# bytes of overhead (PutLogEvents); the awslogs log driver that AWS Batch jobs write through
# splits longer lines into messages of this many bytes.
MAX_EVENT_BYTES = 256 * 1024 - 26
NO_LIMIT = 1 << 40
TRUNCATED = b"[batchyard: output truncated: the attempt's log reached %d bytes]\n"


class LogFrame:
    """One output stream's framing state: the partial line, and how much has been logged."""

    __slots__ = ("buf", "limit", "logged", "max_event", "truncated")

    def __init__(self, limit: int = NO_LIMIT, max_event: int = MAX_EVENT_BYTES) -> None:
        self.buf = bytearray()  # output not yet framed: the start of a line
        self.limit = limit  # the records' total size allowed for this stream
        self.logged = 0  # bytes of records returned so far
        self.max_event = max_event
        self.truncated = False

    def feed(self, data: bytes, final: bool = False) -> bytes:
        """Add output; return the records it completes (b"" when none). ``final``: the
        stream has ended, so a partial line is complete too."""
        buf = self.buf
        if data:
            buf += data
        if not buf:
            return b""
        end = buf.rfind(b"\n")
        if end < 0 and not final and len(buf) <= self.max_event:
            return b""  # the common wait for a line's end: no work
        if self.truncated:
            buf.clear()
            return b""
        m = self.max_event
        lines: list[bytes] = []
        cut = len(buf) if final else end + 1
        if cut > 0:
            chunk = bytes(buf[:cut])
            del buf[:cut]
            lines = chunk.split(b"\n")
            if chunk[-1] == 0x0A:  # (the empty rest after the last newline)
                lines.pop()
            if len(chunk) > m:  # some line may be longer than an event
                lines = [piece for line in lines for piece in _pieces(line, m)]
        if len(buf) > m:  # a line longer than an event is still coming: send what is whole
            done, start = _whole(buf, m)
            lines += done
            del buf[:start]
        ts = b"%d " % (time.time_ns() // 1_000_000)
        out = ts + (b"\n" + ts).join(lines) + b"\n"
        if self.logged + len(out) > self.limit:
            out = ts + TRUNCATED % self.limit
            self.truncated = True
            buf.clear()
        self.logged += len(out)
        return out


def _pieces(line: bytes, m: int) -> list[bytes]:
    """A complete line as the messages of its records."""
    if len(line) <= m:
        return [line]
    done, start = _whole(line, m)
    done.append(line[start:])
    return done


def _whole(data: bytes | bytearray, m: int) -> tuple[list[bytes], int]:
    """Cut pieces of at most ``m`` bytes off ``data`` while more than ``m`` remain; return
    them and where the rest (1 to ``m`` bytes) begins."""
    done: list[bytes] = []
    start, n = 0, len(data)
    while n - start > m:
        end = start + m
        for k in range(end, max(start, end - 4), -1):  # a UTF-8 character is 1-4 bytes
            if data[k] & 0xC0 != 0x80:  # not a continuation byte: a character starts here
                end = k
                break
        done.append(bytes(data[start:end]))
        start = end
    return done, start
