"""Users, access keys, policies, secrets and the audit log: the security tables' queries.

Secrets arrive here already encrypted (Fernet tokens); nothing in this module sees a secret
in clear.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from batchyard.store import tables
from batchyard.store.raw import Raw

_u, _k, _p = tables.auth_users, tables.auth_keys, tables.auth_policies
_s, _a = tables.secrets, tables.audit_log
FINISHED = ("SUCCEEDED", "FAILED")


def _row(row: Any) -> dict[str, Any]:
    """A row as a plain dict (names as ``str``: SQLAlchemy's are a subclass JSON encoders
    refuse)."""
    return {str(k): v for k, v in row._mapping.items()}


UNFINISHED = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")


# ---- users and groups ----------------------------------------------------------------------


def user(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(_u).where(_u.c.name == name)).first()
    return _row(row) if row is not None else None


def ensure_user(conn: Connection, name: str, now: int) -> dict[str, Any]:
    found = user(conn, name)
    if found is not None:
        return found
    conn.execute(insert(_u).values(name=name, groups=[], created_at=now))
    return {"name": name, "groups": [], "created_at": now}


def set_groups(conn: Connection, name: str, groups: list[str]) -> None:
    conn.execute(update(_u).where(_u.c.name == name).values(groups=sorted(set(groups))))


def users(conn: Connection) -> list[dict[str, Any]]:
    return [_row(r) for r in conn.execute(select(_u).order_by(_u.c.name))]


# ---- access keys ---------------------------------------------------------------------------


def insert_key(conn: Connection, **values: Any) -> None:
    conn.execute(insert(_k).values(**values))


def key(conn: Connection, access_key_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(_k).where(_k.c.access_key_id == access_key_id)).first()
    return _row(row) if row is not None else None


def keys(conn: Connection, user_name: str | None = None) -> list[dict[str, Any]]:
    q = select(_k).order_by(_k.c.user_name, _k.c.created_at)
    if user_name is not None:
        q = q.where(_k.c.user_name == user_name)
    return [_row(r) for r in conn.execute(q)]


def revoke(conn: Connection, ids: Iterable[str], now: int) -> list[str]:
    ids = list(ids)
    if not ids:
        return []
    live = [
        r.access_key_id
        for r in conn.execute(
            select(_k.c.access_key_id).where(_k.c.access_key_id.in_(ids), _k.c.revoked_at.is_(None))
        )
    ]
    if live:
        conn.execute(update(_k).where(_k.c.access_key_id.in_(live)).values(revoked_at=now))
    return live


def touch_keys(conn: Connection, used: dict[str, int]) -> None:
    for access_key_id, at in used.items():
        conn.execute(update(_k).where(_k.c.access_key_id == access_key_id).values(last_used_at=at))


# ---- policies ------------------------------------------------------------------------------


def put_policy(conn: Connection, kind: str, owner: str, name: str, doc: str, now: int) -> bool:
    """Attach (or replace) a policy; True when it replaced one."""
    where = (_p.c.owner_kind == kind, _p.c.owner == owner, _p.c.name == name)
    replaced = conn.execute(delete(_p).where(*where)).rowcount > 0
    conn.execute(
        insert(_p).values(owner_kind=kind, owner=owner, name=name, document=doc, updated_at=now)
    )
    return replaced


def delete_policy(conn: Connection, kind: str, owner: str, name: str) -> bool:
    where = (_p.c.owner_kind == kind, _p.c.owner == owner, _p.c.name == name)
    return conn.execute(delete(_p).where(*where)).rowcount > 0


def policies(
    conn: Connection, kind: str | None = None, owner: str | None = None
) -> list[dict[str, Any]]:
    q = select(_p).order_by(_p.c.owner_kind, _p.c.owner, _p.c.name)
    if kind is not None:
        q = q.where(_p.c.owner_kind == kind)
    if owner is not None:
        q = q.where(_p.c.owner == owner)
    return [_row(r) for r in conn.execute(q)]


def policies_of(
    conn: Connection, user_name: str, groups: list[str], access_key_id: str | None
) -> list[dict[str, Any]]:
    """Every policy that applies to a request by this user (through this key)."""
    owners = [("user", user_name)] + [("group", g) for g in groups]
    if access_key_id is not None:
        owners.append(("key", access_key_id))
    out = []
    for kind, owner in owners:
        out += [
            _row(r)
            for r in conn.execute(
                select(_p).where(_p.c.owner_kind == kind, _p.c.owner == owner).order_by(_p.c.name)
            )
        ]
    return out


# ---- secrets -------------------------------------------------------------------------------


def put_secret(conn: Connection, name: str, value: str, description: str | None, now: int) -> int:
    row = conn.execute(select(_s.c.version).where(_s.c.name == name)).first()
    if row is None:
        conn.execute(
            insert(_s).values(
                name=name,
                value=value,
                description=description,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
        return 1
    values: dict[str, Any] = {"value": value, "version": row.version + 1, "updated_at": now}
    if description is not None:
        values["description"] = description
    conn.execute(update(_s).where(_s.c.name == name).values(**values))
    return int(row.version) + 1


def secret_values(conn: Connection, names: Iterable[str]) -> dict[str, str]:
    names = list(set(names))
    if not names:
        return {}
    rows = conn.execute(select(_s.c.name, _s.c.value).where(_s.c.name.in_(names)))
    return {r.name: r.value for r in rows}


def secrets(conn: Connection) -> list[dict[str, Any]]:
    cols = [_s.c.name, _s.c.description, _s.c.version, _s.c.created_at, _s.c.updated_at]
    return [_row(r) for r in conn.execute(select(*cols).order_by(_s.c.name))]


def delete_secret(conn: Connection, name: str) -> bool:
    return conn.execute(delete(_s).where(_s.c.name == name)).rowcount > 0


# ---- what requests name ----------------------------------------------------------------------


def queues_of_jobs(conn: Connection, job_ids: Iterable[str]) -> dict[str, str]:
    """Job id -> the name of its job queue, for the jobs that exist."""
    ids = list(set(job_ids))
    out: dict[str, str] = {}
    j, q = tables.jobs, tables.job_queues
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        rows = conn.execute(
            select(j.c.id, q.c.name).join(q, q.c.id == j.c.queue_id).where(j.c.id.in_(chunk))
        )
        out.update({r[0]: r[1] for r in rows})
    return out


def job_of_stream(conn: Connection, stream: str) -> tuple[str, str] | None:
    """A log stream -> (job id, queue name)."""
    a, j, q = tables.attempts, tables.jobs, tables.job_queues
    row = conn.execute(
        select(j.c.id, q.c.name)
        .select_from(a.join(j, j.c.seq == a.c.job_seq).join(q, q.c.id == j.c.queue_id))
        .where(a.c.log_stream == stream)
    ).first()
    return (row[0], row[1]) if row is not None else None


def unfinished_jobs(conn: Connection, queue: str) -> int:
    """Jobs of the (live) queue named ``queue`` that have not finished, children included."""
    j, q = tables.jobs, tables.job_queues
    ids = select(q.c.id).where(q.c.name == queue, q.c.status != "DELETED").scalar_subquery()
    return int(
        conn.execute(
            select(func.count())
            .select_from(j)
            .where(j.c.queue_id == ids, j.c.status.in_(UNFINISHED))
        ).scalar_one()
    )


# ---- the audit log ---------------------------------------------------------------------------


_AUDIT_COLUMNS = (
    "at",
    "principal",
    "access_key_id",
    "action",
    "resources",
    "source",
    "outcome",
    "status",
    "message",
    "request_id",
)


def insert_audit(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Driver-level: every SubmitJob is audited, so this runs thousands of times a second."""
    raw = Raw(conn)
    values = ", ".join(raw.json(c) if c == "resources" else f":{c}" for c in _AUDIT_COLUMNS)
    raw.executemany(
        f"INSERT INTO audit_log ({', '.join(_AUDIT_COLUMNS)}) VALUES ({values})",
        [{**r, "resources": raw.dumps(r["resources"])} for r in rows],
    )


def audit(
    conn: Connection,
    *,
    since: int | None = None,
    until: int | None = None,
    principal: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first."""
    q = select(_a).order_by(_a.c.id.desc()).limit(limit)
    if since is not None:
        q = q.where(_a.c.at >= since)
    if until is not None:
        q = q.where(_a.c.at < until)
    if principal is not None:
        q = q.where(_a.c.principal == principal)
    if action is not None:
        q = q.where(_a.c.action == action)
    if outcome is not None:
        q = q.where(_a.c.outcome == outcome)
    if before_id is not None:
        q = q.where(_a.c.id < before_id)
    return [_row(r) for r in conn.execute(q)]


def expire_audit(conn: Connection, before: int) -> int:
    return conn.execute(delete(_a).where(_a.c.at < before)).rowcount
