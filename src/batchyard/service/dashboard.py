"""Reads the dashboard needs beyond the AWS operations: searching jobs across queues with
free text, a job's history and dependents, an array's children by index, recent failures,
and time series (throughput, queue depth, waiting times) from the transitions table.

Everything here only reads; the dashboard's actions go through the same services as the
AWS API (service/jobs.py, job_queues.py, compute_environments.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, or_, select, text

from batchyard.domain.clock import now_ms
from batchyard.domain.jobs import TERMINAL, Job
from batchyard.events.outbox import Outbox
from batchyard.service.context import Context
from batchyard.service.jobs import JobView
from batchyard.service.services import Services
from batchyard.service.suggest import unknown
from batchyard.store import jobs as repo
from batchyard.store import resources as res
from batchyard.store import tables as t

_j = t.jobs
_h = t.job_transitions
MAX_PAGE = 200


@dataclass(slots=True)
class Search:
    queue: str | None = None
    status: str | None = None
    name: str | None = None  # ListJobs' JOB_NAME: exact, or a prefix ending in *
    definition: str | None = None  # name, name:revision or a name prefix ending in *
    created_after: int | None = None
    created_before: int | None = None
    share_identifier: str | None = None
    text: str | None = None  # free text: part of the name, or the start of the id
    older_than: int | None = None  # paging cursors (job seq)
    newer_than: int | None = None
    limit: int = 50


@dataclass(slots=True)
class SearchResult:
    views: list[JobView]
    total: int
    older: int | None  # cursor for the next (older) page
    newer: int | None  # cursor for the previous (newer) page
    exact: str | None = None  # a job id the text names exactly


@dataclass(slots=True)
class Series:
    since: int
    width_ms: int
    buckets: int
    succeeded: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    submitted: list[int] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)  # RUNNABLE at the end of each bucket
    waits: list[float] = field(default_factory=list)  # seconds, RUNNABLE -> STARTING


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Dashboard:
    def __init__(self, ctx: Context, services: Services, outbox: Outbox) -> None:
        self.ctx = ctx
        self.services = services
        self.outbox = outbox

    # ---- jobs -----------------------------------------------------------------------------

    def search(self, s: Search) -> SearchResult:
        limit = max(1, min(MAX_PAGE, s.limit))
        with self.ctx.store.read() as conn:
            where: list[ColumnElement[bool]] = [_j.c.parent_seq.is_(None)]
            if s.queue:
                queue = res.job_queue(conn, s.queue)
                if queue is None:
                    raise unknown(conn, "job queue", s.queue)
                where.append(_j.c.queue_id == queue.id)
            if s.status:
                where.append(_j.c.status == s.status)
            if s.name:
                low = func.lower(_j.c.name)
                if s.name.endswith("*"):
                    where.append(low.like(_like(s.name[:-1].lower()) + "%", escape="\\"))
                else:
                    where.append(low == s.name.lower())
            if s.definition:
                where.append(_j.c.definition_id.in_(self._definition_ids(conn, s.definition)))
            if s.created_after is not None:
                where.append(_j.c.created_at > s.created_after)
            if s.created_before is not None:
                where.append(_j.c.created_at < s.created_before)
            if s.share_identifier:
                where.append(_j.c.share_identifier == s.share_identifier)
            exact = None
            if s.text:
                needle = s.text.strip()
                if repo.job_by_id(conn, needle) is not None:
                    exact = needle
                where.append(
                    or_(
                        func.lower(_j.c.name).like(f"%{_like(needle.lower())}%", escape="\\"),
                        _j.c.id.like(f"{_like(needle)}%", escape="\\"),
                    )
                )
            total = conn.execute(select(func.count()).select_from(_j).where(*where)).scalar()
            q = select(_j).where(*where).limit(limit + 1)
            if s.newer_than is not None:
                rows = list(conn.execute(q.where(_j.c.seq > s.newer_than).order_by(_j.c.seq.asc())))
                more_newer = len(rows) > limit
                rows = list(reversed(rows[:limit]))
                more_older = bool(rows)
            else:
                if s.older_than is not None:
                    q = q.where(_j.c.seq < s.older_than)
                rows = list(conn.execute(q.order_by(_j.c.seq.desc())))
                more_older = len(rows) > limit
                rows = rows[:limit]
                more_newer = s.older_than is not None and bool(rows)
            jobs = [repo.to_job(r) for r in rows]
        views = self._views(jobs)
        return SearchResult(
            views,
            int(total or 0),
            older=jobs[-1].seq if jobs and more_older else None,
            newer=jobs[0].seq if jobs and more_newer else None,
            exact=exact,
        )

    def _views(self, jobs: list[Job]) -> list[JobView]:
        by_id = {v.job.id: v for v in self.services.jobs.describe([j.id for j in jobs][:100])}
        rest = [j.id for j in jobs][100:]
        for i in range(0, len(rest), 100):
            by_id.update({v.job.id: v for v in self.services.jobs.describe(rest[i : i + 100])})
        return [by_id[j.id] for j in jobs if j.id in by_id]

    def _definition_ids(self, conn: Connection, value: str) -> list[int]:
        if value.endswith("*"):
            prefix = value[:-1]
            return [jd.id for jd in res.job_definitions(conn) if jd.name.startswith(prefix)]
        name, _, rev = value.partition(":")
        return [
            jd.id
            for jd in res.job_definitions(conn)
            if jd.name == name and (not rev or str(jd.revision) == rev)
        ]

    def recent_failures(self, limit: int = 10) -> list[JobView]:
        with self.ctx.store.read() as conn:
            rows = conn.execute(
                select(_j)
                .where(_j.c.status == "FAILED", _j.c.array_size.is_(None))
                .order_by(_j.c.stopped_at.desc())
                .limit(limit)
            )
            jobs = [repo.to_job(r) for r in rows]
        return self._views(jobs)

    def history(self, job_id: str) -> list[dict[str, Any]]:
        rows = self.services.jobs.history(job_id)
        return [
            {"id": r.id, "at": r.at, "from": r.from_status, "to": r.to_status, "reason": r.reason}
            for r in rows
        ]

    def dependencies(self, view: JobView) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """What the job waits for, and what waits for it: (id, name, status, type) each."""
        job = view.job
        with self.ctx.store.read() as conn:
            own = [job.seq] + ([job.parent_seq] if job.parent_seq is not None else [])
            edges = repo.dependencies_of(conn, own)
            targets = {d: kind for es in edges.values() for d, kind in es}
            after = repo.dependents_of(conn, [job.seq])
            waiting = {s for ss in after.values() for s in ss}
            found = repo.jobs_by_seqs(conn, set(targets) | waiting)
        up = [
            {"job_id": d.id, "name": d.name, "status": d.status.value, "type": targets[d.seq]}
            for d in sorted((found[s] for s in targets if s in found), key=lambda d: d.seq)
        ]
        down = [
            {"job_id": d.id, "name": d.name, "status": d.status.value, "type": None}
            for d in sorted((found[s] for s in waiting if s in found), key=lambda d: d.seq)
        ]
        return up, down

    def children(self, parent: Job, limit: int = 10_000) -> list[str]:
        """The status of each child of an array, by index (the parent's view where a child
        has no row of its own yet)."""
        size = parent.array_size or 0
        statuses = [parent.status.value if parent.status not in TERMINAL else "PENDING"] * size
        with self.ctx.store.read() as conn:
            rows = conn.execute(
                select(_j.c.array_index, _j.c.status)
                .where(_j.c.parent_seq == parent.seq, _j.c.array_index.is_not(None))
                .limit(limit)
            )
            for index, status in rows:
                if 0 <= index < size:
                    statuses[index] = status
        return statuses[:limit]

    def queue_jobs(self, queue_id: int, statuses: list[str], limit: int) -> list[JobView]:
        with self.ctx.store.read() as conn:
            rows = conn.execute(
                select(_j)
                .where(
                    _j.c.queue_id == queue_id,
                    _j.c.status.in_(statuses),
                    _j.c.array_size.is_(None),
                    _j.c.node_index.is_(None),
                )
                .order_by(_j.c.seq.desc())
                .limit(limit)
            )
            jobs = [repo.to_job(r) for r in rows]
        return self._views(jobs)

    def running_on(self, environment: str, limit: int = 200) -> list[JobView]:
        with self.ctx.store.read() as conn:
            rows = conn.execute(
                select(_j)
                .join(t.attempts, t.attempts.c.job_seq == _j.c.seq)
                .where(
                    t.attempts.c.compute_environment == environment,
                    t.attempts.c.status.in_(["STARTING", "RUNNING"]),
                )
                .limit(limit)
            )
            jobs = [repo.to_job(r) for r in rows]
        return self._views(jobs)

    # ---- time series ------------------------------------------------------------------------

    def series(self, window_ms: int, buckets: int, queue_id: int | None = None) -> Series:
        """Per bucket of the last ``window_ms``: jobs finished (succeeded, failed), jobs
        submitted and RUNNABLE jobs at the bucket's end; and the waits of the jobs dispatched
        in the window. Array parents are left out (their children count)."""
        now = now_ms()
        width = max(1000, math.ceil(window_ms / buckets))
        since = now - width * buckets
        start = self.outbox.before_time(since)
        out = Series(since, width, buckets)
        out.succeeded, out.failed, out.submitted = [0] * buckets, [0] * buckets, [0] * buckets
        net = [0] * buckets
        where_queue = " AND j.queue_id = :queue" if queue_id is not None else ""
        params: dict[str, Any] = {"start": start, "since": since, "width": width}
        if queue_id is not None:
            params["queue"] = queue_id
        with self.ctx.store.read() as conn:
            rows = conn.execute(
                text(
                    "SELECT (t.at - CAST(:since AS BIGINT)) / CAST(:width AS BIGINT) AS b, "
                    "t.from_status, t.to_status, COUNT(*) FROM job_transitions t "
                    "JOIN jobs j ON j.seq = t.job_seq WHERE t.id > :start AND t.at >= :since "
                    f"AND j.array_size IS NULL{where_queue} "
                    "GROUP BY b, t.from_status, t.to_status"
                ),
                params,
            )
            for b, src, dst, n in rows:
                b = int(b)
                if not 0 <= b < buckets:
                    continue
                if dst == "SUCCEEDED":
                    out.succeeded[b] += n
                elif dst == "FAILED":
                    out.failed[b] += n
                if src is None:
                    out.submitted[b] += n
                if dst == "RUNNABLE":
                    net[b] += n
                if src == "RUNNABLE":
                    net[b] -= n
            counts = repo.count_by_status(conn, [queue_id] if queue_id is not None else None)
            depth = sum(n for (_, s), n in counts.items() if s == "RUNNABLE")
            waits = conn.execute(
                text(
                    "SELECT t.at - (SELECT MAX(p.at) FROM job_transitions p "
                    "WHERE p.job_seq = t.job_seq AND p.id < t.id AND p.to_status = 'RUNNABLE') "
                    "FROM job_transitions t JOIN jobs j ON j.seq = t.job_seq "
                    f"WHERE t.id > :start AND t.at >= :since AND t.to_status = 'STARTING'"
                    f"{where_queue} ORDER BY t.id DESC LIMIT 20000"
                ),
                params,
            )
            out.waits = [max(0, w) / 1000 for (w,) in waits if w is not None]
        depths = [0] * buckets
        for b in range(buckets - 1, -1, -1):
            depths[b] = max(0, depth)
            depth -= net[b]
        out.depth = depths
        return out

    def timeline(self, job_id: str) -> list[dict[str, Any]]:
        """The job's history as spans: each status from when it was entered to the next."""
        history = self.history(job_id)
        spans = []
        for i, h in enumerate(history):
            end = history[i + 1]["at"] if i + 1 < len(history) else None
            spans.append({**h, "until": end})
        return spans
