"""Repositories for the declared resources: rows in, domain objects out.

Every function takes the caller's connection, so a service decides the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Row,
    Select,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from batchyard.domain.resources import (
    DELETED,
    DELETING,
    INVALID,
    VALID,
    ComputeEnvironment,
    ConsumableResource,
    JobDefinition,
    JobQueue,
    QueueEnvironment,
    SchedulingPolicy,
)
from batchyard.store import tables as t
from batchyard.store.rows import from_row

# Row locks for read-modify-write transactions: "update" for the row about to change, "share"
# for a row that must not change or go away meanwhile. They matter on PostgreSQL; SQLite
# serializes writers anyway and SQLAlchemy leaves the clause out there.
Lock = Literal["update", "share"] | None


def _locked(query: Select, lock: Lock) -> Select:
    return query if lock is None else query.with_for_update(read=lock == "share")


# ---- compute environments -------------------------------------------------------------------

_ce = t.compute_environments


def _insert(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    """Insert one row; its new id."""
    key = conn.execute(insert(table).values(**values)).inserted_primary_key
    assert key is not None  # None only for statements that are not an INSERT
    return int(key[0])


def _to_ce(row: Row) -> ComputeEnvironment:
    return from_row(ComputeEnvironment, row)


def insert_compute_environment(conn: Connection, **values: Any) -> int:
    return _insert(conn, _ce, values)


def compute_environment(
    conn: Connection, name: str, lock: Lock = None
) -> ComputeEnvironment | None:
    row = conn.execute(_locked(select(_ce).where(_ce.c.name == name), lock)).first()
    return _to_ce(row) if row else None


def compute_environments(
    conn: Connection,
    names: Sequence[str] | None = None,
    after_id: int | None = None,
    limit: int | None = None,
    statuses: Iterable[str] | None = None,
) -> list[ComputeEnvironment]:
    q = select(_ce).order_by(_ce.c.id)
    if names is not None:
        q = q.where(_ce.c.name.in_(names))
    if statuses is not None:
        q = q.where(_ce.c.status.in_(list(statuses)))
    if after_id is not None:
        q = q.where(_ce.c.id > after_id)
    if limit is not None:
        q = q.limit(limit)
    return [_to_ce(r) for r in conn.execute(q)]


def update_compute_environment(conn: Connection, ce_id: int, **values: Any) -> None:
    conn.execute(update(_ce).where(_ce.c.id == ce_id).values(**values))


def settle(
    conn: Connection, table: str, row_id: int, seen_at: int, status: str, reason: str, now: int
) -> bool:
    """Record the outcome of a status check (VALID, INVALID, DELETED) on a compute environment
    or queue, unless the row changed since the check read it (an update or delete committed
    meanwhile): compare-and-set on ``updated_at``. Returns whether it applied."""
    t_ = _ce if table == "compute_environments" else _jq
    result = conn.execute(
        update(t_)
        .where(t_.c.id == row_id, t_.c.updated_at == seen_at)
        .values(status=status, status_reason=reason, updated_at=max(now, seen_at + 1))
    )
    return result.rowcount == 1


def delete_compute_environment(conn: Connection, ce_id: int) -> None:
    conn.execute(delete(_ce).where(_ce.c.id == ce_id))


# ---- job queues -----------------------------------------------------------------------------

_jq = t.job_queues
_jqce = t.job_queue_compute_environments
_sp = t.scheduling_policies


def _queue_order(conn: Connection, queue_ids: list[int]) -> dict[int, list[QueueEnvironment]]:
    order: dict[int, list[QueueEnvironment]] = {qid: [] for qid in queue_ids}
    if not queue_ids:
        return order
    rows = conn.execute(
        select(_jqce.c.queue_id, _jqce.c.position, _ce.c.name)
        .join(_ce, _ce.c.id == _jqce.c.compute_environment_id)
        .where(_jqce.c.queue_id.in_(queue_ids))
        .order_by(_jqce.c.queue_id, _jqce.c.position)
    )
    for r in rows:
        order[r.queue_id].append(QueueEnvironment(order=r.position, compute_environment=r.name))
    return order


def _to_queues(conn: Connection, rows: Sequence[Row]) -> list[JobQueue]:
    order = _queue_order(conn, [r.id for r in rows])
    policy_ids = {r.scheduling_policy_id for r in rows if r.scheduling_policy_id is not None}
    policies: dict[int, str] = {}
    if policy_ids:
        found = conn.execute(select(_sp.c.id, _sp.c.name).where(_sp.c.id.in_(policy_ids)))
        policies = {p.id: p.name for p in found}
    return [
        JobQueue(
            id=r.id,
            name=r.name,
            state=r.state,
            status=r.status,
            status_reason=r.status_reason,
            priority=r.priority,
            scheduling_policy=policies.get(r.scheduling_policy_id),
            compute_environment_order=order[r.id],
            spec=r.spec,
            tags=r.tags,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


def insert_job_queue(conn: Connection, **values: Any) -> int:
    return _insert(conn, _jq, values)


def set_queue_environments(conn: Connection, queue_id: int, entries: list[tuple[int, int]]) -> None:
    """Replace the queue's compute environments with ``(position, compute_environment_id)``."""
    conn.execute(delete(_jqce).where(_jqce.c.queue_id == queue_id))
    if entries:
        conn.execute(
            insert(_jqce),
            [
                {"queue_id": queue_id, "compute_environment_id": ce_id, "position": pos}
                for pos, ce_id in entries
            ],
        )


def job_queue(conn: Connection, name: str, lock: Lock = None) -> JobQueue | None:
    query = select(_jq).where(_jq.c.name == name, _jq.c.status != DELETED)
    rows = conn.execute(_locked(query, lock)).all()
    return _to_queues(conn, rows)[0] if rows else None


def job_queue_by_id(conn: Connection, queue_id: int) -> JobQueue | None:
    rows = conn.execute(select(_jq).where(_jq.c.id == queue_id)).all()
    return _to_queues(conn, rows)[0] if rows else None


def job_queues(
    conn: Connection,
    names: Sequence[str] | None = None,
    after_id: int | None = None,
    limit: int | None = None,
    statuses: Iterable[str] | None = None,
) -> list[JobQueue]:
    q = select(_jq).where(_jq.c.status != DELETED).order_by(_jq.c.id)
    if names is not None:
        q = q.where(_jq.c.name.in_(names))
    if statuses is not None:
        q = q.where(_jq.c.status.in_(list(statuses)))
    if after_id is not None:
        q = q.where(_jq.c.id > after_id)
    if limit is not None:
        q = q.limit(limit)
    return _to_queues(conn, conn.execute(q).all())


def queues_using_compute_environment(conn: Connection, ce_id: int) -> list[str]:
    rows = conn.execute(
        select(_jq.c.name)
        .join(_jqce, _jqce.c.queue_id == _jq.c.id)
        .where(_jqce.c.compute_environment_id == ce_id, _jq.c.status != DELETED)
        .order_by(_jq.c.name)
    )
    return [r.name for r in rows]


def queues_using_policy(conn: Connection, policy_id: int) -> list[str]:
    rows = conn.execute(
        select(_jq.c.name)
        .where(_jq.c.scheduling_policy_id == policy_id, _jq.c.status != DELETED)
        .order_by(_jq.c.name)
    )
    return [r.name for r in rows]


def update_job_queue(conn: Connection, queue_id: int, **values: Any) -> None:
    """Change a queue. Settling it (VALID, INVALID) is compare-and-set, as for compute
    environments: a deleted queue never comes back."""
    q = update(_jq).where(_jq.c.id == queue_id)
    if values.get("status") in (VALID, INVALID):
        q = q.where(_jq.c.status.not_in([DELETING, DELETED]))
    conn.execute(q.values(**values))


# ---- job definitions ------------------------------------------------------------------------

_jd = t.job_definitions


def _to_jd(row: Row) -> JobDefinition:
    return from_row(JobDefinition, row)


def latest_revision(conn: Connection, name: str) -> int:
    return conn.execute(select(func.max(_jd.c.revision)).where(_jd.c.name == name)).scalar() or 0


def insert_job_definition(conn: Connection, **values: Any) -> int:
    return _insert(conn, _jd, values)


def job_definition(
    conn: Connection, name: str, revision: int | None = None, active_only: bool = False
) -> JobDefinition | None:
    """One revision; without ``revision`` the newest ACTIVE one (AWS's rule for SubmitJob)."""
    q = select(_jd).where(_jd.c.name == name)
    if revision is not None:
        q = q.where(_jd.c.revision == revision)
    else:
        q = q.where(_jd.c.status == "ACTIVE").order_by(_jd.c.revision.desc()).limit(1)
    if active_only:
        q = q.where(_jd.c.status == "ACTIVE")
    row = conn.execute(q).first()
    return _to_jd(row) if row else None


def job_definition_by_id(conn: Connection, jd_id: int) -> JobDefinition | None:
    row = conn.execute(select(_jd).where(_jd.c.id == jd_id)).first()
    return _to_jd(row) if row else None


def job_definitions_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, JobDefinition]:
    rows = conn.execute(select(_jd).where(_jd.c.id.in_(list(set(ids)))))
    return {r.id: _to_jd(r) for r in rows}


def job_definitions(
    conn: Connection,
    refs: Sequence[tuple[str, int | None]] | None = None,
    name: str | None = None,
    status: str | None = None,
    after_id: int | None = None,
    limit: int | None = None,
) -> list[JobDefinition]:
    q = select(_jd).order_by(_jd.c.id)
    if refs is not None:
        exact = [(n, r) for n, r in refs if r is not None]
        names = [n for n, r in refs if r is None]
        cond = [and_(_jd.c.name == n, _jd.c.revision == r) for n, r in exact]
        if names:
            cond.append(_jd.c.name.in_(names))
        if not cond:
            return []
        q = q.where(or_(*cond))
    if name is not None:
        q = q.where(_jd.c.name == name)
    if status is not None:
        q = q.where(_jd.c.status == status)
    if after_id is not None:
        q = q.where(_jd.c.id > after_id)
    if limit is not None:
        q = q.limit(limit)
    return [_to_jd(r) for r in conn.execute(q)]


def update_job_definition(conn: Connection, jd_id: int, **values: Any) -> None:
    conn.execute(update(_jd).where(_jd.c.id == jd_id).values(**values))


# ---- scheduling policies --------------------------------------------------------------------


def _to_sp(row: Row) -> SchedulingPolicy:
    return from_row(SchedulingPolicy, row)


def insert_scheduling_policy(conn: Connection, **values: Any) -> int:
    return _insert(conn, _sp, values)


def scheduling_policy(conn: Connection, name: str, lock: Lock = None) -> SchedulingPolicy | None:
    row = conn.execute(_locked(select(_sp).where(_sp.c.name == name), lock)).first()
    return _to_sp(row) if row else None


def scheduling_policies(
    conn: Connection,
    names: Sequence[str] | None = None,
    after_id: int | None = None,
    limit: int | None = None,
) -> list[SchedulingPolicy]:
    q = select(_sp).order_by(_sp.c.id)
    if names is not None:
        q = q.where(_sp.c.name.in_(names))
    if after_id is not None:
        q = q.where(_sp.c.id > after_id)
    if limit is not None:
        q = q.limit(limit)
    return [_to_sp(r) for r in conn.execute(q)]


def update_scheduling_policy(conn: Connection, sp_id: int, **values: Any) -> None:
    conn.execute(update(_sp).where(_sp.c.id == sp_id).values(**values))


def delete_scheduling_policy(conn: Connection, sp_id: int) -> None:
    conn.execute(delete(_sp).where(_sp.c.id == sp_id))


# ---- consumable resources -------------------------------------------------------------------

_cr = t.consumable_resources


def _to_cr(row: Row) -> ConsumableResource:
    return from_row(ConsumableResource, row)


def insert_consumable_resource(conn: Connection, **values: Any) -> int:
    return _insert(conn, _cr, values)


def consumable_resource(
    conn: Connection, name: str, lock: Lock = None
) -> ConsumableResource | None:
    row = conn.execute(_locked(select(_cr).where(_cr.c.name == name), lock)).first()
    return _to_cr(row) if row else None


def consumable_resources(
    conn: Connection,
    name_patterns: Sequence[str] | None = None,
    after_id: int | None = None,
    limit: int | None = None,
) -> list[ConsumableResource]:
    """``name_patterns``: case-insensitive names, a trailing ``*`` matching any suffix."""
    q = select(_cr).order_by(_cr.c.id)
    if name_patterns is not None:
        conds = []
        for p in name_patterns:
            low = func.lower(_cr.c.name)
            if p.endswith("*"):
                prefix = p[:-1].lower()
                conds.append(func.substr(low, 1, len(prefix)) == prefix)
            else:
                conds.append(low == p.lower())
        q = q.where(or_(*conds))
    if after_id is not None:
        q = q.where(_cr.c.id > after_id)
    if limit is not None:
        q = q.limit(limit)
    return [_to_cr(r) for r in conn.execute(q)]


def update_consumable_resource(conn: Connection, cr_id: int, **values: Any) -> None:
    conn.execute(update(_cr).where(_cr.c.id == cr_id).values(**values))


def delete_consumable_resource(conn: Connection, cr_id: int) -> None:
    conn.execute(delete(_cr).where(_cr.c.id == cr_id))


# ---- names ----------------------------------------------------------------------------------

Kind = Literal[
    "job queue", "compute environment", "job definition", "scheduling policy", "consumable resource"
]


def names(conn: Connection, kind: Kind) -> list[str]:
    """Every name of a kind that a request could name now (live queues, job definitions
    with an ACTIVE revision): the candidates for a "did you mean"."""
    table, live = {
        "job queue": (_jq, _jq.c.status.not_in([DELETING, DELETED])),
        "compute environment": (_ce, None),
        "job definition": (_jd, _jd.c.status == "ACTIVE"),
        "scheduling policy": (_sp, None),
        "consumable resource": (_cr, None),
    }[kind]
    q = select(table.c.name).distinct()
    if live is not None:
        q = q.where(live)
    return [r.name for r in conn.execute(q)]


# ---- idempotency tokens ---------------------------------------------------------------------

_idem = t.idempotency_tokens


def idempotent_result(
    conn: Connection, scope: str, token: str, since_ms: int
) -> tuple[str, Any] | None:
    row = conn.execute(
        select(_idem.c.request_hash, _idem.c.result).where(
            _idem.c.scope == scope, _idem.c.token == token, _idem.c.created_at >= since_ms
        )
    ).first()
    return (row.request_hash, row.result) if row else None


def remember_result(
    conn: Connection, scope: str, token: str, request_hash: str, result: Any, now: int
) -> None:
    conn.execute(delete(_idem).where(_idem.c.scope == scope, _idem.c.token == token))
    conn.execute(
        insert(_idem).values(
            scope=scope, token=token, request_hash=request_hash, result=result, created_at=now
        )
    )
