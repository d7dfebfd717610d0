"""Tags on any taggable resource, addressed by its kind and name (the ARN's resource part)."""

from __future__ import annotations

import builtins  # builtins.list in annotations: a method below is named list

from sqlalchemy import Connection, Table, select, update

from batchyard.domain import checks
from batchyard.domain.resources import DELETED
from batchyard.errors import InvalidRequest, NotFound
from batchyard.service.compute_environments import PROVIDER_TAG
from batchyard.service.context import Context
from batchyard.service.job_definitions import parse_ref
from batchyard.store import tables as t

_TABLES: dict[str, Table] = {
    "compute-environment": t.compute_environments,
    "job-queue": t.job_queues,
    "job-definition": t.job_definitions,
    "scheduling-policy": t.scheduling_policies,
    "consumable-resource": t.consumable_resources,
    "job": t.jobs,
}


def _where(kind: str, resource: str) -> list:
    table = _TABLES.get(kind)
    if table is None:
        raise InvalidRequest(
            f"resources of type {kind} cannot be tagged; taggable types are: {', '.join(_TABLES)}"
        )
    if kind == "job-definition":
        name, revision = parse_ref(resource, "resourceArn")
        if revision is None:
            raise InvalidRequest("a job definition ARN must end with :revision to be tagged")
        return [table.c.name == name, table.c.revision == revision]
    if kind == "job":
        if ":" in resource or "#" in resource:
            raise InvalidRequest(
                "child jobs of array and multi-node parallel jobs cannot be tagged; tag the parent"
            )
        return [table.c.id == resource]
    if kind == "job-queue":
        return [table.c.name == resource, table.c.status != DELETED]
    return [table.c.name == resource]


class Tags:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _current(
        self, conn: Connection, kind: str, resource: str, lock: bool = False
    ) -> dict[str, str]:
        """The resource's tags; ``lock`` holds its row until the transaction ends, so that
        concurrent TagResource/UntagResource calls on PostgreSQL do not lose each other's keys."""
        table = _TABLES.get(kind)
        where = _where(kind, resource)
        assert table is not None
        query = select(table.c.tags).where(*where)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"{kind} {resource!r} does not exist")
        return dict(row.tags or {})

    def list(self, kind: str, resource: str) -> dict[str, str]:
        with self.ctx.store.read() as conn:
            return self._current(conn, kind, resource)

    def tag(self, kind: str, resource: str, tags: dict[str, str]) -> None:
        checks.tags(tags)
        with self.ctx.store.write() as conn:
            current = self._current(conn, kind, resource, lock=True)
            new_provider = tags.get(PROVIDER_TAG)
            if (
                kind == "compute-environment"
                and new_provider is not None
                and new_provider != current.get(PROVIDER_TAG, "local")
            ):
                raise InvalidRequest(
                    f"tag {PROVIDER_TAG} chooses a compute environment's provider when it is "
                    "created and cannot change; create a new compute environment instead"
                )
            merged = {**current, **tags}
            checks.tags(merged, "tags (existing and new together)")
            self._save(conn, kind, resource, merged)

    def untag(self, kind: str, resource: str, keys: builtins.list[str]) -> None:
        with self.ctx.store.write() as conn:
            current = self._current(conn, kind, resource, lock=True)
            if kind == "compute-environment" and PROVIDER_TAG in keys and PROVIDER_TAG in current:
                raise InvalidRequest(
                    f"tag {PROVIDER_TAG} chooses the compute environment's provider and cannot "
                    "be removed"
                )
            for k in keys:
                current.pop(k, None)
            self._save(conn, kind, resource, current)

    def _save(self, conn: Connection, kind: str, resource: str, tags: dict[str, str]) -> None:
        table = _TABLES[kind]
        conn.execute(update(table).where(*_where(kind, resource)).values(tags=tags))
