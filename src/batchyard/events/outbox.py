"""Following ``job_transitions`` in id order, without ever skipping a row.

A reader keeps a :class:`Position`: the id of the last row it has dealt with. Reading
``id > position`` is enough on SQLite, where writers are serialized and ids are handed out in
commit order. PostgreSQL hands out ids when rows are *inserted*, and transactions commit in
any order: row 105 may be visible while row 104 is still in a transaction that has not
committed yet, or that will roll back (then 104 never appears). A reader that moved past 105
would miss 104 for good.

So on PostgreSQL a reader stops at the first gap and remembers it together with the ``xmax``
of the snapshot it saw the gap in (the first transaction id not yet handed out then). The
transaction holding the missing id existed at that moment, so its id is below that ``xmax``.
Once the oldest transaction still running (the current snapshot's ``xmin``) is at or beyond
it, every transaction that could fill the gap has ended; if the row is still not visible it
was rolled back (or deleted) and the reader moves on. Rows are read in the same REPEATABLE
READ snapshot as ``xmin``/``xmax``, so nothing can commit between the two. A gap normally
closes within milliseconds; an unrelated transaction left open for a long time would hold it
open too, so after :data:`MAX_GAP_SECONDS` the reader moves on anyway and logs it.

A time-based settle window (read only rows older than a second or two) would be simpler, but
it is a guess: a transaction held open longer than the window still loses its event, and
every event is delayed by the window. Tracking gaps costs nothing while there are none.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from batchyard.store.db import Store

log = logging.getLogger(__name__)

MAX_GAP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Transition:
    id: int
    job_seq: int
    at: int
    from_status: str | None
    to_status: str
    reason: str | None


@dataclass(slots=True)
class Position:
    """Where a reader is: the last row dealt with, and a gap it is waiting on (PostgreSQL)."""

    id: int
    gap: tuple[int, int, float] | None = None  # (missing id, snapshot xmax, seen at monotonic)


_COLUMNS = "id, job_seq, at, from_status, to_status, reason"


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.pg = store.dialect == "postgresql"

    def latest(self) -> int:
        """The id of the newest row (0 when there is none): "from now on"."""
        with self.store.read() as conn:
            return int(conn.execute(text("SELECT MAX(id) FROM job_transitions")).scalar() or 0)

    def before_time(self, at_ms: int) -> int:
        """A position just before the first row at or after ``at_ms`` (ids follow time closely
        enough for a binary search on the primary key; no index on ``at`` is needed)."""
        with self.store.read() as conn:
            lo = int(conn.execute(text("SELECT MIN(id) FROM job_transitions")).scalar() or 0)
            hi = int(conn.execute(text("SELECT MAX(id) FROM job_transitions")).scalar() or 0)
            if hi == 0:
                return 0
            q = text("SELECT at FROM job_transitions WHERE id >= :m ORDER BY id LIMIT 1")
            lo -= 1  # invariant: rows <= lo are before at_ms; the answer is in (lo, hi]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                at = conn.execute(q, {"m": mid}).scalar()
                if at is None or at >= at_ms:
                    hi = mid
                else:
                    lo = mid
            last = conn.execute(q, {"m": hi}).scalar()
            return hi if last is not None and last < at_ms else lo

    def back(self, count: int) -> int:
        """A position ``count`` rows before the newest one (for "the last N events")."""
        with self.store.read() as conn:
            row = conn.execute(
                text("SELECT id FROM job_transitions ORDER BY id DESC LIMIT 1 OFFSET :n"),
                {"n": max(0, count)},
            ).first()
            if row is not None:
                return int(row[0])
        return 0

    def read(self, pos: Position, limit: int = 500) -> list[Transition]:
        """The rows after ``pos`` that can be dealt with now, in id order; advances ``pos``."""
        if not self.pg:
            with self.store.read() as conn:
                rows = self._rows(conn, pos.id, limit)
            if rows:
                pos.id = rows[-1].id
            return rows
        with (
            self.store.engine.connect().execution_options(
                isolation_level="REPEATABLE READ"
            ) as conn,
            conn.begin(),
        ):
            xmin, xmax = conn.execute(
                text(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
                    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
                )
            ).one()
            rows = self._rows(conn, pos.id, limit)
        return self._contiguous(pos, rows, int(xmin), int(xmax))

    @staticmethod
    def _rows(conn: Connection, after: int, limit: int) -> list[Transition]:
        result = conn.execute(
            text(f"SELECT {_COLUMNS} FROM job_transitions WHERE id > :a ORDER BY id LIMIT :n"),
            {"a": after, "n": limit},
        )
        return [Transition(*r) for r in result]

    @staticmethod
    def _contiguous(
        pos: Position, rows: list[Transition], xmin: int, xmax: int
    ) -> list[Transition]:
        out: list[Transition] = []
        for row in rows:
            expected = pos.id + 1
            if row.id != expected:
                gap = pos.gap
                if gap is None or gap[0] != expected:
                    pos.gap = (expected, xmax, time.monotonic())
                    break
                closed = xmin >= gap[1]
                if not closed and time.monotonic() - gap[2] < MAX_GAP_SECONDS:
                    break
                if not closed:
                    log.warning(
                        "job_transitions ids %d-%d are still missing after %.0f s (a long "
                        "transaction holds the database's xmin back); moving on",
                        expected,
                        row.id - 1,
                        MAX_GAP_SECONDS,
                    )
            pos.gap = None
            pos.id = row.id
            out.append(row)
        return out


def as_dict(t: Transition) -> dict[str, Any]:
    return {
        "id": t.id,
        "job_seq": t.job_seq,
        "at": t.at,
        "from": t.from_status,
        "to": t.to_status,
        "reason": t.reason,
    }
