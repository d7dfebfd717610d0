"""Output framing (providers/logframe.py): every byte of a job's output reaches its log, in
order, as records no longer than a CloudWatch event."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchyard.providers.logframe import MAX_EVENT_BYTES, LogFrame


def frame(chunks: list[bytes], max_event: int = MAX_EVENT_BYTES, limit: int = 1 << 40) -> bytes:
    """The records for output arriving in these chunks, then the stream's end."""
    f = LogFrame(limit, max_event)
    return b"".join(f.feed(c) for c in chunks) + f.feed(b"", final=True)


def messages(records: bytes) -> list[bytes]:
    assert records == b"" or records.endswith(b"\n")
    out = []
    for record in records.split(b"\n")[:-1]:
        ts, space, message = record.partition(b" ")
        assert ts.isdigit() and space, record
        out.append(message)
    return out


def expected(data: bytes, m: int) -> list[bytes]:
    """What the framing promises for ASCII output: each line (the last one also without its
    newline) as consecutive pieces of ``m`` bytes, the last one shorter or equal."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line[i : i + m] for line in lines for i in range(0, max(len(line), 1), m)]


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


ASCII = st.lists(st.text(alphabet="ab\n", max_size=60).map(str.encode), max_size=8).map(b"".join)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80).map(
    str.encode
)
CUTS = st.lists(st.integers(min_value=0), max_size=10)


@given(data=st.binary(max_size=200) | ASCII, cuts=CUTS, m=st.integers(1, 9))
def test_nothing_is_lost_and_no_record_is_over_the_maximum(data, cuts, m):
    out = messages(frame(chunked(data, cuts), m))
    assert all(len(msg) <= m for msg in out)
    # each line is its own records, in order; their messages, plus a newline where each
    # line ended, are the output again
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    per_line = [messages(frame([line + b"\n"], m)) for line in lines]
    assert out == [msg for msgs in per_line for msg in msgs]
    rebuilt = b"\n".join(b"".join(msgs) for msgs in per_line)
    assert rebuilt == data.removesuffix(b"\n")


@given(data=ASCII, cuts=CUTS, m=st.integers(1, 9))
def test_a_long_line_is_split_into_pieces_of_the_maximum(data, cuts, m):
    assert messages(frame(chunked(data, cuts), m)) == expected(data, m)


@given(text=TEXT, cuts=CUTS, m=st.integers(4, 12))
def test_a_long_text_line_is_cut_between_characters(text, cuts, m):
    out = messages(frame(chunked(text, cuts), m))
    assert b"".join(out) == text.replace(b"\n", b"")
    assert all(len(msg) <= m for msg in out)
    for msg in out:
        msg.decode("utf-8")  # each piece is whole characters


def test_a_multi_megabyte_line_in_odd_pieces_keeps_every_byte():
    # one 3,100,093-byte line written in 100,003-byte pieces, then a short one
    line = (b"0123456789" * 310_010)[:3_100_093]
    data = line + b"\nafter\n"
    f = LogFrame()
    records = []
    for i in range(0, len(data), 100_003):
        records.append(f.feed(data[i : i + 100_003]))
        assert len(f.buf) <= MAX_EVENT_BYTES  # a long line does not pile up in memory
    records.append(f.feed(b"", final=True))
    got = messages(b"".join(records))
    assert got[-1] == b"after"
    assert b"".join(got[:-1]) == line
    assert [len(g) for g in got[:-1]] == [MAX_EVENT_BYTES] * 11 + [len(line) - 11 * MAX_EVENT_BYTES]


def test_short_lines_empty_lines_and_a_last_line_without_newline():
    assert messages(frame([b"one\n\n", b"\ntwo\nthr", b"ee"])) == [
        b"one",
        b"",
        b"",
        b"two",
        b"three",
    ]
    assert messages(frame([b"\n"])) == [b""]
    assert frame([]) == frame([b""]) == b""
    f = LogFrame()
    assert f.feed(b"no newline yet") == b""  # a partial line waits for its end
    assert messages(f.feed(b"", final=True)) == [b"no newline yet"]


def test_one_timestamp_per_record():
    records = frame([b"a\nb\n"])
    ts = [r.split(b" ", 1)[0] for r in records.split(b"\n")[:-1]]
    assert len(ts) == 2 and all(t.isdigit() and len(t) >= 13 for t in ts)


def test_the_log_limit_ends_the_log_with_a_notice():
    f = LogFrame(limit=100)
    first = f.feed(b"x" * 20 + b"\n")
    assert messages(first) == [b"x" * 20]
    notice = f.feed(b"y" * 200 + b"\n")
    assert messages(notice) == [
        b"[batchyard: output truncated: the attempt's log reached 100 bytes]"
    ]
    assert f.feed(b"more\n") == b"" and f.feed(b"", final=True) == b""
    assert f.logged == len(first) + len(notice)


def test_the_ray_task_gets_the_framing_by_value():
    """The Ray cluster's nodes need not have batchyard: the task's code, framing included,
    travels by value (as the Ray bridge registers it) and works where batchyard cannot be
    imported."""
    cloudpickle = pytest.importorskip("ray.cloudpickle")
    from batchyard.providers import logframe
    from batchyard.providers.ray import remote

    cloudpickle.register_pickle_by_value(logframe)
    cloudpickle.register_pickle_by_value(remote)
    try:
        shipped = cloudpickle.dumps(remote._Attempt)
    finally:
        cloudpickle.unregister_pickle_by_value(remote)
        cloudpickle.unregister_pickle_by_value(logframe)
    program = (
        "import pickle, sys\n"
        "sys.modules['batchyard'] = None  # importing batchyard fails from here on\n"
        "attempt = pickle.loads(sys.stdin.buffer.read())(None, {'id': 1})\n"
        "out = attempt.frame.feed(b'x' * 300000 + b'\\n')\n"
        "print(len(out.split(b'\\n')) - 1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        input=shipped,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.strip() == b"2"


@given(data=st.binary(min_size=1, max_size=40), m=st.integers(1, 9))
def test_output_given_with_the_streams_end_is_framed_the_same(data, m):
    """``feed(data, final=True)`` keeps the promises too (a last line of ``m + 1`` bytes
    without a newline was once one record over the maximum)."""
    f = LogFrame(1 << 40, m)
    got = messages(f.feed(data, final=True))
    assert all(len(x) <= m for x in got)
    assert got == messages(frame([data], m))
