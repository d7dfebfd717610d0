"""Repositories for jobs, their transitions, dependencies and attempts.

:func:`apply_transitions` is the only way a job's status changes: a compare-and-set on the
status it was read with, and the history row in the same transaction. A change whose job
has moved on meanwhile (a cancel racing a dispatch) is reported back, never applied blindly.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, and_, func, or_, select, update

from batchyard.domain import arrays
from batchyard.domain.jobs import TERMINAL, Job, JobStatus, check_transition
from batchyard.store import tables as t
from batchyard.store.raw import Raw
from batchyard.store.rows import from_row

_j = t.jobs
_a = t.attempts
_d = t.job_dependencies
_h = t.job_transitions


def to_job(row: Row) -> Job:
    return from_row(
        Job,
        row,
        status=JobStatus(row.status),
        is_cancelled=bool(row.is_cancelled),
        is_terminated=bool(row.is_terminated),
    )


# ---- reads ----------------------------------------------------------------------------------


def job_by_id(conn: Connection, job_id: str) -> Job | None:
    return jobs_by_ids(conn, [job_id]).get(job_id)


_JOB_COLUMNS = [c.name for c in _j.columns if c.name in Job.__dataclass_fields__]
_JSON_AT = [i for i, c in enumerate(_JOB_COLUMNS) if c in ("array_counts", "tags", "spec")]


def _jobs_where(raw: Raw, column: str, keys: Iterable[Any]) -> list[Job]:
    """Jobs whose ``column`` is one of ``keys``, in driver-level SQL: the scheduler reads
    jobs on every pass, and DescribeJobs is what every polling client calls."""
    keys = list(set(keys))
    out: list[Job] = []
    for i in range(0, len(keys), 500):
        params: dict[str, Any] = {}
        where = raw.in_list("k", keys[i : i + 500], params)
        for row in raw.query(
            f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs WHERE {column} IN {where}", params
        ):
            values = list(row)
            for i in _JSON_AT:
                values[i] = raw.loads(values[i])
            job = Job(**dict(zip(_JOB_COLUMNS, values, strict=True)))
            job.status = JobStatus(job.status)
            job.is_cancelled = bool(job.is_cancelled)
            job.is_terminated = bool(job.is_terminated)
            out.append(job)
    return out


def jobs_by_ids(conn: Connection, ids: Iterable[str]) -> dict[str, Job]:
    return {j.id: j for j in _jobs_where(Raw(conn), "id", ids)}


def jobs_by_seqs(conn: Connection, seqs: Iterable[int]) -> dict[int, Job]:
    return {j.seq: j for j in _jobs_where(Raw(conn), "seq", seqs)}


def children(
    conn: Connection,
    parent_seq: int,
    status: str | None = None,
    after_index: int = -1,
    limit: int | None = None,
    below_index: int | None = None,
) -> list[Job]:
    q = (
        select(_j)
        .where(_j.c.parent_seq == parent_seq, _j.c.array_index > after_index)
        .order_by(_j.c.array_index)
    )
    if below_index is not None:
        q = q.where(_j.c.array_index < below_index)
    if status is not None:
        q = q.where(_j.c.status == status)
    if limit is not None:
        q = q.limit(limit)
    return [to_job(r) for r in conn.execute(q)]


@dataclass(slots=True)
class JobFilter:
    """ListJobs' query on the jobs of one queue (children and nodes are listed elsewhere)."""

    queue_id: int
    statuses: Sequence[str] | None = None
    name: str | None = None  # case-insensitive; trailing * for a prefix
    definition_ids: Sequence[int] | None = None
    before: int | None = None
    after: int | None = None
    share_identifier: str | None = None


def list_jobs(conn: Connection, f: JobFilter, after_seq: int | None, limit: int) -> list[Job]:
    """Jobs of a queue, newest first (AWS's order), resuming below ``after_seq``."""
    q = (
        select(_j)
        .where(_j.c.queue_id == f.queue_id, _j.c.parent_seq.is_(None))
        .order_by(_j.c.seq.desc())
        .limit(limit)
    )
    if f.statuses is not None:
        q = q.where(_j.c.status.in_(list(f.statuses)))
    if f.name is not None:
        low = func.lower(_j.c.name)
        if f.name.endswith("*"):
            prefix = f.name[:-1].lower()
            q = q.where(func.substr(low, 1, len(prefix)) == prefix)
        else:
            q = q.where(low == f.name.lower())
    if f.definition_ids is not None:
        q = q.where(_j.c.definition_id.in_(list(f.definition_ids)))
    if f.before is not None:
        q = q.where(_j.c.created_at < f.before)
    if f.after is not None:
        q = q.where(_j.c.created_at > f.after)
    if f.share_identifier is not None:
        q = q.where(_j.c.share_identifier == f.share_identifier)
    if after_seq is not None:
        q = q.where(_j.c.seq < after_seq)
    return [to_job(r) for r in conn.execute(q)]


def runnable_head(conn: Connection, queue_id: int, limit: int) -> list[Job]:
    """The first RUNNABLE jobs of a queue in dispatch order (an index walk, not a sort)."""
    rows = conn.execute(
        select(_j)
        .where(_j.c.queue_id == queue_id, _j.c.status == JobStatus.RUNNABLE)
        .order_by(_j.c.rank, _j.c.root_seq, _j.c.pos)
        .limit(limit)
    )
    return [to_job(r) for r in rows]


class Candidate(NamedTuple):
    seq: int
    id: str
    vcpus: float
    memory_mib: int
    gpus: int
    status_reason: str | None
    updated_at: int
    num_nodes: int | None
    parent_seq: int | None


def runnable_candidates(conn: Connection, queue_id: int, limit: int) -> list[Candidate]:
    """Like :func:`runnable_head`, with only the columns placement needs (no documents).
    A multi-node job's nodes are not candidates: the job is, as a whole."""
    rows = Raw(conn).query(
        "SELECT seq, id, vcpus, memory_mib, gpus, status_reason, updated_at, num_nodes, "
        "parent_seq FROM jobs WHERE queue_id = :q AND status = 'RUNNABLE' "
        "AND node_index IS NULL "
        "ORDER BY rank, root_seq, pos LIMIT :n",
        {"q": queue_id, "n": limit},
    )
    return [Candidate(*r) for r in rows]


def nodes_of(conn: Connection, parent_seq: int) -> list[Job]:
    rows = conn.execute(
        select(_j)
        .where(_j.c.parent_seq == parent_seq, _j.c.node_index.is_not(None))
        .order_by(_j.c.node_index)
    )
    return [to_job(r) for r in rows]


def active_multinode(conn: Connection) -> list[Job]:
    """Multi-node jobs that have started and not finished."""
    rows = conn.execute(
        select(_j).where(_j.c.num_nodes.is_not(None), _j.c.status.in_(["STARTING", "RUNNING"]))
    )
    return [to_job(r) for r in rows]


def runnable_vcpus_by_queue(conn: Connection) -> dict[int, float]:
    """The vCPUs RUNNABLE jobs of each queue ask for (a multi-node job counts its nodes)."""
    rows = Raw(conn).query(
        "SELECT queue_id, SUM(vcpus) FROM jobs WHERE status = 'RUNNABLE' "
        "AND num_nodes IS NULL GROUP BY queue_id"
    )
    return {q: float(v or 0) for q, v in rows}


def pending_with_finished_dependency(conn: Connection, limit: int) -> list[int]:
    """PENDING jobs at least one of whose dependencies has finished: the ones a missed
    wake-up could leave waiting (checked at start-up and now and then)."""
    dep = _j.alias("dep")
    rows = conn.execute(
        select(_d.c.job_seq)
        .join(_j, _j.c.seq == _d.c.job_seq)
        .join(dep, dep.c.seq == _d.c.depends_on_seq)
        .where(_j.c.status == JobStatus.PENDING, dep.c.status.in_(["SUCCEEDED", "FAILED"]))
        .distinct()
        .limit(limit)
    )
    return [r[0] for r in rows]


def delete_attempt(conn: Connection, attempt_id: int) -> None:
    from sqlalchemy import delete

    conn.execute(delete(_a).where(_a.c.id == attempt_id))


def dependencies_of(
    conn: Connection, seqs: Iterable[int]
) -> dict[int, list[tuple[int, str | None]]]:
    seqs = list(set(seqs))
    out: dict[int, list[tuple[int, str | None]]] = {s: [] for s in seqs}
    for i in range(0, len(seqs), 500):
        for r in conn.execute(select(_d).where(_d.c.job_seq.in_(seqs[i : i + 500]))):
            out[r.job_seq].append((r.depends_on_seq, r.type))
    return out


def dependents_of(conn: Connection, seqs: Iterable[int]) -> dict[int, list[int]]:
    """For each finished job, the jobs that named it in dependsOn. (Every pass asks, for
    every job that finished: driver-level SQL.)"""
    seqs = list(set(seqs))
    raw = Raw(conn)
    out: dict[int, list[int]] = {}
    for i in range(0, len(seqs), 500):
        params: dict[str, Any] = {}
        where = raw.in_list("s", seqs[i : i + 500], params)
        sql = "SELECT depends_on_seq, job_seq FROM job_dependencies WHERE depends_on_seq IN "
        for dep, job in raw.query(sql + where, params):
            out.setdefault(dep, []).append(job)
    return out


def transitions_of(conn: Connection, seq: int) -> list[Row]:
    return list(conn.execute(select(_h).where(_h.c.job_seq == seq).order_by(_h.c.id)))


class AttemptRow(NamedTuple):
    """A row of the attempts table (the columns in the table's order)."""

    id: int
    job_seq: int
    number: int
    compute_environment: str
    provider: str
    status: str
    started_at: int | None
    stopped_at: int | None
    exit_code: int | None
    reason: str | None
    status_reason: str | None
    log_stream: str
    provider_ref: dict[str, Any] | None
    usage: dict[str, Any] | None


assert list(AttemptRow._fields) == [c.name for c in _a.columns], "attempts' columns changed"


def attempts_of(conn: Connection, seqs: Iterable[int]) -> dict[int, list[AttemptRow]]:
    """Each job's attempts in order (driver-level SQL: DescribeJobs reads them)."""
    raw = Raw(conn)
    seqs = list(set(seqs))
    out: dict[int, list[AttemptRow]] = {s: [] for s in seqs}
    for i in range(0, len(seqs), 500):
        params: dict[str, Any] = {}
        where = raw.in_list("s", seqs[i : i + 500], params)
        for values in raw.query(
            f"SELECT {', '.join(AttemptRow._fields)} FROM attempts WHERE job_seq IN {where} "
            "ORDER BY job_seq, number",
            params,
        ):
            r = AttemptRow(*values)
            out[r.job_seq].append(
                r._replace(provider_ref=raw.loads(r.provider_ref), usage=raw.loads(r.usage))
            )
    return out


def active_attempts(conn: Connection) -> list[Row]:
    return list(conn.execute(select(_a).where(_a.c.status.in_(["STARTING", "RUNNING"]))))


def attempt_by_stream(conn: Connection, stream: str) -> Row | None:
    return conn.execute(select(_a).where(_a.c.log_stream == stream)).first()


def streams_with_prefix(
    conn: Connection,
    prefix: str | None,
    after_id: int | None,
    limit: int,
    descending: bool = False,
) -> list[Row]:
    q = select(_a).order_by(_a.c.id.desc() if descending else _a.c.id).limit(limit)
    if prefix:
        q = q.where(func.substr(_a.c.log_stream, 1, len(prefix)) == prefix)
    if after_id is not None:
        q = q.where(_a.c.id < after_id if descending else _a.c.id > after_id)
    return list(conn.execute(q))


def count_by_status(
    conn: Connection, queue_ids: Sequence[int] | None = None
) -> dict[tuple[int, str], int]:
    """Jobs per (queue, status); array parents are not counted, their children are."""
    q = (
        select(_j.c.queue_id, _j.c.status, func.count())
        .where(_j.c.array_size.is_(None))
        .group_by(_j.c.queue_id, _j.c.status)
    )
    if queue_ids is not None:
        q = q.where(_j.c.queue_id.in_(list(queue_ids)))
    return {(r[0], r[1]): r[2] for r in conn.execute(q)}


def unfinished_in_queue(conn: Connection, queue_id: int, limit: int = 10_000) -> list[Job]:
    rows = conn.execute(
        select(_j)
        .where(
            _j.c.queue_id == queue_id,
            _j.c.status.in_(["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"]),
            _j.c.array_size.is_(None),
        )
        .limit(limit)
    )
    return [to_job(r) for r in rows]


def usage_by_environment(conn: Connection) -> dict[str, tuple[float, int, int, int]]:
    """Per compute environment: (vCPUs, MiB, GPUs, attempts) of the attempts in flight."""
    rows = conn.execute(
        select(
            _a.c.compute_environment,
            func.sum(_j.c.vcpus),
            func.sum(_j.c.memory_mib),
            func.sum(_j.c.gpus),
            func.count(),
        )
        .join(_j, _j.c.seq == _a.c.job_seq)
        .where(_a.c.status.in_(["STARTING", "RUNNING"]))
        .group_by(_a.c.compute_environment)
    )
    return {r[0]: (float(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4])) for r in rows}


def ahead_in_queue(conn: Connection, job: Job, limit: int = 5) -> tuple[int, list[str]]:
    """How many RUNNABLE jobs of the queue come before ``job`` in dispatch order, and the
    first few of them."""
    before = or_(
        _j.c.rank < job.rank,
        and_(_j.c.rank == job.rank, _j.c.root_seq < job.root_seq),
        and_(_j.c.rank == job.rank, _j.c.root_seq == job.root_seq, _j.c.pos < job.pos),
    )
    where = (_j.c.queue_id == job.queue_id, _j.c.status == JobStatus.RUNNABLE, before)
    count = conn.execute(select(func.count()).select_from(_j).where(*where)).scalar() or 0
    first = conn.execute(
        select(_j.c.id).where(*where).order_by(_j.c.rank, _j.c.root_seq, _j.c.pos).limit(limit)
    )
    return int(count), [r[0] for r in first]


def vcpus_in_use(conn: Connection, queue_id: int) -> float:
    q = select(func.coalesce(func.sum(_j.c.vcpus), 0)).where(
        _j.c.queue_id == queue_id, _j.c.status.in_(["STARTING", "RUNNING"])
    )
    return float(conn.execute(q).scalar() or 0)


def busy_queue_ids(conn: Connection) -> set[int]:
    """Queues that still hold unfinished jobs."""
    rows = conn.execute(
        select(_j.c.queue_id)
        .where(_j.c.status.in_([s.value for s in JobStatus if s not in ("SUCCEEDED", "FAILED")]))
        .distinct()
    )
    return {r[0] for r in rows}


# ---- writes ---------------------------------------------------------------------------------


def seqs_for_ids(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(ids), 500):
        for r in conn.execute(select(_j.c.id, _j.c.seq).where(_j.c.id.in_(ids[i : i + 500]))):
            out[r.id] = r.seq
    return out


def clear_status_reason(conn: Connection, seqs: list[int], prefix: str) -> None:
    """Clear the statusReason of these jobs where it still starts with ``prefix``."""
    if seqs:
        raw = Raw(conn)
        params: dict[str, Any] = {"prefix": prefix + "%"}
        where = raw.in_list("s", seqs, params)
        raw.execute(
            f"UPDATE jobs SET status_reason = NULL WHERE seq IN {where} "
            "AND status_reason LIKE :prefix",
            params,
        )


@dataclass(slots=True)
class Change:
    """One status change: applied only if the job is still ``src``."""

    seq: int
    job_id: str
    src: JobStatus | None
    dst: JobStatus
    reason: str | None
    values: dict[str, Any] = field(default_factory=dict)
    parent_seq: int | None = None  # an array child's parent, whose counts follow
    unless_terminated: bool = False  # also require that nobody asked to terminate the job
    node: bool = False  # a node of a multi-node parallel job (may start over with a retry)
    at: int | None = None  # when it happened, if before the pass that records it
    # a status the job passed through on the way from src to dst, and when: the history
    # gets both steps, the job row one write (an attempt that started and ended unseen)
    via: tuple[JobStatus, int] | None = None

    @classmethod
    def fail(cls, job: Job, reason: str, **values: Any) -> Change:
        """A job that has not started ends FAILED (cancelled, terminated, its queue deleted,
        a time limit reached)."""
        node = job.node_index is not None
        return cls(
            job.seq,
            job.id,
            job.status,
            JobStatus.FAILED,
            reason,
            values,
            parent_seq=None if node else job.parent_seq,
            node=node,
        )


def apply_transitions(conn: Connection, changes: Sequence[Change], now: int) -> list[Change]:
    """Compare-and-set each change, record its history, keep array parents' counts, and
    finish parents whose last child finished. Returns the changes applied (parents' too).

    This runs for every status change of every job, so it speaks driver-level SQL."""
    raw = Raw(conn)
    applied: list[Change] = []
    history = []
    deltas: dict[int, dict[str, int]] = {}
    parents = sorted({c.parent_seq for c in changes if c.parent_seq is not None})
    if raw.pg and parents:
        # parents before children, in one order, as TerminateJob and CancelJob take them:
        # the other way round two transactions can deadlock
        params: dict[str, Any] = {}
        where = raw.in_list("p", parents, params)
        raw.query(f"SELECT seq FROM jobs WHERE seq IN {where} ORDER BY seq FOR UPDATE", params)
    statements = []
    for c in changes:
        if c.via is not None:
            check_transition(c.job_id, c.src, c.via[0], c.node)
            check_transition(c.job_id, c.via[0], c.dst, c.node)
        else:
            check_transition(c.job_id, c.src, c.dst, c.node)
        values: dict[str, Any] = {"status": c.dst.value, "updated_at": now, **c.values}
        if c.reason is not None:
            values["status_reason"] = c.reason
        if c.dst in TERMINAL and "stopped_at" not in values:
            values["stopped_at"] = now
        params = {f"v_{k}": v for k, v in values.items()}
        params.update(w_seq=c.seq, w_src=c.src.value if c.src is not None else None, w_f=False)
        statements.append((_cas_sql(tuple(values), c.unless_terminated), params))
    done = _compare_and_set(raw, statements)
    for c, ok in zip(changes, done, strict=True):
        if not ok:
            continue
        applied.append(c)
        src = c.src.value if c.src is not None else None
        if c.via is not None:
            via, at = c.via[0].value, min(c.via[1], now)
            history.append({"seq": c.seq, "at": at, "src": src, "dst": via, "reason": None})
            src = via
        history.append(
            {
                "seq": c.seq,
                "at": now if c.at is None else min(c.at, now),
                "src": src,
                "dst": c.dst.value,
                "reason": c.reason,
            }
        )
        if c.parent_seq is not None:
            delta = deltas.setdefault(c.parent_seq, {})
            if c.src is not None:
                delta[c.src.value] = delta.get(c.src.value, 0) - 1
            delta[c.dst.value] = delta.get(c.dst.value, 0) + 1
    raw.executemany(
        "INSERT INTO job_transitions (job_seq, at, from_status, to_status, reason) "
        "VALUES (:seq, :at, :src, :dst, :reason)",
        history,
    )
    if deltas:
        applied += _update_parents(conn, raw, deltas, now)
    return applied


@functools.cache
def _cas_sql(columns: tuple[str, ...], unless_terminated: bool) -> str:
    sets = ", ".join(f"{c} = :v_{c}" for c in columns)
    guard = " AND is_terminated = :w_f" if unless_terminated else ""
    return f"UPDATE jobs SET {sets} WHERE seq = :w_seq AND status = :w_src{guard} RETURNING seq"


def _compare_and_set(raw: Raw, statements: list[tuple[str, dict[str, Any]]]) -> list[bool]:
    """Run the compare-and-set statements in order; whether each changed its job. Runs of
    the same statement on distinct jobs go together (one round trip on PostgreSQL); a job
    changed twice in a row (STARTING, RUNNING, then its end) starts a new run, so that the
    second change sees the first."""
    done: list[bool] = []
    run: list[dict[str, Any]] = []
    sql = ""
    seqs: set[int] = set()

    def flush() -> None:
        done.extend(bool(rows) for rows in raw.returning_each(sql, run))
        run.clear()
        seqs.clear()

    for statement, params in statements:
        if run and (statement != sql or params["w_seq"] in seqs):
            flush()
        sql = statement
        run.append(params)
        seqs.add(params["w_seq"])
    if run:
        flush()
    return done


def _update_parents(
    conn: Connection, raw: Raw, deltas: dict[int, dict[str, int]], now: int
) -> list[Change]:
    params: dict[str, Any] = {}
    where = raw.in_list("p", deltas, params)
    lock = " FOR UPDATE" if raw.pg else ""
    rows = raw.query(
        "SELECT seq, id, status, status_reason, array_counts, array_size, is_cancelled, "
        f"is_terminated FROM jobs WHERE seq IN {where}{lock}",
        params,
    )
    finished = []
    updates = []
    for seq, job_id, status, reason, counts, size, cancelled, terminated in rows:
        counts = arrays.apply_delta(raw.loads(counts) or {}, deltas[seq])
        updates.append({"seq": seq, "counts": raw.dumps(counts), "now": now})
        done = arrays.outcome(counts, size or 0)
        if done is not None and JobStatus(status) not in TERMINAL:
            final, why = done
            if cancelled or terminated:
                why = reason or why
            finished.append(Change(seq, job_id, JobStatus(status), final, why))
    raw.executemany(
        f"UPDATE jobs SET array_counts = {raw.json('counts')}, updated_at = :now WHERE seq = :seq",
        updates,
    )
    return apply_transitions(conn, finished, now) if finished else []


def flag_terminated(conn: Connection, seq: int, reason: str, statuses: Iterable[str]) -> bool:
    """Ask the scheduler to stop a job, if it is still in one of ``statuses`` (a job that
    ended meanwhile stays as it ended). Returns whether the flag was set."""
    params: dict[str, Any] = {"seq": seq, "reason": reason, "t": True}
    raw = Raw(conn)
    where = raw.in_list("s", statuses, params)
    return (
        raw.execute(
            "UPDATE jobs SET is_terminated = :t, status_reason = :reason "
            f"WHERE seq = :seq AND status IN {where}",
            params,
        )
        == 1
    )


def update_job(conn: Connection, seq: int, **values: Any) -> None:
    conn.execute(update(_j).where(_j.c.seq == seq).values(**values))


def set_wait_reason(conn: Connection, seq: int, reason: str) -> None:
    """Say why a RUNNABLE job waits, unless it has left RUNNABLE meanwhile (a CancelJob
    that committed after the scheduler read it keeps its own reason)."""
    conn.execute(
        update(_j).where(_j.c.seq == seq, _j.c.status == "RUNNABLE").values(status_reason=reason)
    )


class NewAttempt(NamedTuple):
    job_seq: int
    number: int
    compute_environment: str
    provider: str
    log_stream: str
    provider_ref: dict[str, Any]


def insert_attempt(
    conn: Connection,
    job_seq: int,
    number: int,
    compute_environment: str,
    provider: str,
    log_stream: str,
    provider_ref: dict[str, Any],
) -> int:
    new = NewAttempt(job_seq, number, compute_environment, provider, log_stream, provider_ref)
    return insert_attempts(conn, [new])[0]


def insert_attempts(conn: Connection, attempts: Sequence[NewAttempt]) -> list[int]:
    """New STARTING attempts; their ids, in order (one pipeline on PostgreSQL)."""
    raw = Raw(conn)
    results = raw.returning_each(
        "INSERT INTO attempts (job_seq, number, compute_environment, provider, status, "
        f"log_stream, provider_ref) VALUES (:job_seq, :number, :ce, :provider, 'STARTING', "
        f":stream, {raw.json('ref')}) RETURNING id",
        [
            {
                "job_seq": a.job_seq,
                "number": a.number,
                "ce": a.compute_environment,
                "provider": a.provider,
                "stream": a.log_stream,
                "ref": raw.dumps(a.provider_ref),
            }
            for a in attempts
        ],
    )
    return [int(rows[0][0]) for rows in results]


def update_attempts(conn: Connection, updates: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Set columns of many attempts: one executemany per set of columns (pipelined on
    PostgreSQL), as the scheduler records the starts and the ends of a pass."""
    raw = Raw(conn)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for attempt_id, values in updates:
        params: dict[str, Any] = {"w_id": attempt_id}
        for key, value in values.items():
            params[f"v_{key}"] = raw.dumps(value) if key in _ATTEMPT_JSON else value
        groups.setdefault(tuple(values), []).append(params)
    for keys, rows in groups.items():
        sets = ", ".join(
            f"{k} = {raw.json('v_' + k)}" if k in _ATTEMPT_JSON else f"{k} = :v_{k}" for k in keys
        )
        raw.executemany(f"UPDATE attempts SET {sets} WHERE id = :w_id", rows)


_ATTEMPT_JSON = ("provider_ref", "usage")


def finished_before(conn: Connection, cutoff: int, limit: int) -> list[int]:
    rows = conn.execute(
        select(_j.c.seq)
        .where(
            _j.c.stopped_at < cutoff,
            _j.c.status.in_(["SUCCEEDED", "FAILED"]),
            _j.c.parent_seq.is_(None),
        )
        .limit(limit)
    )
    return [r[0] for r in rows]


def delete_jobs(conn: Connection, seqs: Sequence[int]) -> list[str]:
    """Delete jobs (with their children, attempts, history and dependency rows); returns
    the log streams of the deleted attempts, for the caller to remove after commit."""
    from sqlalchemy import delete

    if not seqs:
        return []
    seqs = list(seqs)
    kids = []
    for i in range(0, len(seqs), 500):
        chunk = seqs[i : i + 500]
        kids += [r[0] for r in conn.execute(select(_j.c.seq).where(_j.c.parent_seq.in_(chunk)))]
    everything = seqs + kids
    streams: list[str] = []
    for i in range(0, len(everything), 500):
        chunk = everything[i : i + 500]
        streams += [
            r[0] for r in conn.execute(select(_a.c.log_stream).where(_a.c.job_seq.in_(chunk)))
        ]
        conn.execute(delete(_h).where(_h.c.job_seq.in_(chunk)))
        conn.execute(delete(_a).where(_a.c.job_seq.in_(chunk)))
        conn.execute(delete(_d).where(or_(_d.c.job_seq.in_(chunk), _d.c.depends_on_seq.in_(chunk))))
        conn.execute(delete(_j).where(_j.c.seq.in_(chunk)))
    return streams
