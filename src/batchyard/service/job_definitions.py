"""Job definitions: register (a new revision each time), describe, deregister."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError

from batchyard.domain import checks, requirements, retry
from batchyard.domain.clock import now_ms
from batchyard.domain.resources import ACTIVE, INACTIVE, JobDefinition, Page
from batchyard.errors import Conflict, InvalidRequest
from batchyard.service.context import RESOURCES, Context
from batchyard.service.pagination import cut_page, page_size
from batchyard.service.suggest import unknown, unknown_definition
from batchyard.store import resources as repo

MAX_SCHEDULING_PRIORITY = 9999
_RANGE = re.compile(r"([0-9]*):([0-9]*)|([0-9]+)")
_CONTAINER_KINDS = ("container_properties", "ecs_properties", "eks_properties")


def parse_ref(ref: str, field: str) -> tuple[str, int | None]:
    """``name`` or ``name:revision`` -> (name, revision or None)."""
    name, sep, rev = ref.rpartition(":")
    if not sep:
        return checks.resource_name(ref, field), None
    if not (rev.isascii() and rev.isdigit()) or int(rev) < 1:
        raise InvalidRequest(f"{field} {ref!r}: the revision after ':' must be a positive number")
    return checks.resource_name(name, field), int(rev)


def node_ranges(node_properties: dict[str, Any], field: str = "nodeProperties") -> None:
    """Check numNodes, mainNode and that every targetNodes range lies within the nodes."""
    n = node_properties["num_nodes"]
    if n < 1:
        raise InvalidRequest(f"{field}.numNodes is {n}; it must be at least 1")
    main = node_properties["main_node"]
    if not 0 <= main < n:
        raise InvalidRequest(f"{field}.mainNode is {main}; it must be between 0 and {n - 1}")
    ranges = node_properties["node_range_properties"]
    if not ranges:
        raise InvalidRequest(f"{field}.nodeRangeProperties must list at least one node range")
    for i, r in enumerate(ranges):
        where = f"{field}.nodeRangeProperties[{i}].targetNodes"
        m = _RANGE.fullmatch(r["target_nodes"])
        if m is None:
            raise InvalidRequest(
                f"{where} {r['target_nodes']!r} is not a node range; use 'N', 'start:end', "
                "'start:' or ':end' with node indexes"
            )
        lo, hi = (m.group(3), m.group(3)) if m.group(3) else (m.group(1), m.group(2))
        start = int(lo) if lo else 0
        end = int(hi) if hi else n - 1
        if not 0 <= start <= end < n:
            raise InvalidRequest(f"{where} {r['target_nodes']!r} is outside nodes 0 to {n - 1}")
        requirements.requested(r.get("container"), f"{field}.nodeRangeProperties[{i}].container")


class JobDefinitions:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def register(
        self,
        *,
        name: str,
        type: str,
        tags: dict[str, str] | None = None,
        **properties: Any,
    ) -> JobDefinition:
        """``properties``: everything else RegisterJobDefinition takes, kept as the spec."""
        checks.resource_name(name, "jobDefinitionName")
        tags = checks.tags(tags or {})
        spec = {k: v for k, v in properties.items() if v is not None}
        self._validate(type, spec)
        for _ in range(5):  # concurrent registrations race for the next revision number
            try:
                with self.ctx.store.write() as conn:
                    self._check_consumables(conn, spec.get("consumable_resource_properties"))
                    revision = repo.latest_revision(conn, name) + 1
                    jd_id = repo.insert_job_definition(
                        conn,
                        name=name,
                        revision=revision,
                        status=ACTIVE,
                        type=type,
                        spec=spec,
                        tags=tags,
                        created_at=now_ms(),
                    )
                    jd = repo.job_definition_by_id(conn, jd_id)
                assert jd is not None
                self.ctx.changed(RESOURCES)
                return jd
            except IntegrityError:
                continue
        raise Conflict(
            f"could not register a new revision of {name!r}: too many concurrent "
            "registrations; retry"
        )

    def _validate(self, type: str, spec: dict[str, Any]) -> None:
        kinds = [k for k in _CONTAINER_KINDS if k in spec]
        if type == "container":
            if "node_properties" in spec:
                raise InvalidRequest(
                    "nodeProperties is only for type multinode; this job definition is "
                    "type container"
                )
            if len(kinds) != 1:
                raise InvalidRequest(
                    "a container job definition needs exactly one of containerProperties, "
                    f"ecsProperties or eksProperties (got {len(kinds)})"
                )
        else:
            if "node_properties" not in spec:
                raise InvalidRequest("a multinode job definition needs nodeProperties")
            if kinds:
                raise InvalidRequest(
                    "a multinode job definition takes its containers from "
                    "nodeProperties.nodeRangeProperties; remove containerProperties"
                )
            node_ranges(spec["node_properties"])
        requirements.requested(spec.get("container_properties"), "containerProperties")
        if "scheduling_priority" in spec:
            checks.in_range(
                spec["scheduling_priority"], "schedulingPriority", 0, MAX_SCHEDULING_PRIORITY
            )
        retry.validate(spec.get("retry_strategy"))
        timeout = (spec.get("timeout") or {}).get("attempt_duration_seconds")
        low = self.ctx.settings.min_attempt_duration_seconds
        if timeout is not None and timeout < low:
            raise InvalidRequest(
                f"timeout.attemptDurationSeconds is {timeout}; the minimum is {low} seconds"
            )

    def _check_consumables(self, conn: Any, props: dict[str, Any] | None) -> None:
        for i, req in enumerate((props or {}).get("consumable_resource_list") or []):
            where = f"consumableResourceProperties.consumableResourceList[{i}]"
            name = req.get("consumable_resource")
            if name is None:
                raise InvalidRequest(f"{where}.consumableResource is required")
            if repo.consumable_resource(conn, name) is None:
                raise unknown(conn, "consumable resource", name, where)
            if (req.get("quantity") or 0) < 1:
                raise InvalidRequest(f"{where}.quantity must be at least 1")

    def get(self, ref: str, field: str = "jobDefinition") -> JobDefinition:
        """A job definition by ``name`` (newest ACTIVE revision) or ``name:revision``."""
        name, revision = parse_ref(ref, field)
        with self.ctx.store.read() as conn:
            jd = repo.job_definition(conn, name, revision)
            if jd is None:
                raise unknown_definition(conn, name, revision, field)
        return jd

    def deregister(self, ref: str) -> None:
        name, revision = parse_ref(ref, "jobDefinition")
        if revision is None:
            raise InvalidRequest(
                f"jobDefinition {ref!r} has no revision; deregister one revision at a time "
                "with name:revision or its ARN"
            )
        with self.ctx.store.write() as conn:
            jd = repo.job_definition(conn, name, revision)
            if jd is None:
                raise unknown_definition(conn, name, revision)
            if jd.status == INACTIVE:
                raise Conflict(f"job definition {name}:{revision} is already INACTIVE")
            repo.update_job_definition(conn, jd.id, status=INACTIVE)
        self.ctx.changed(RESOURCES)

    def describe(
        self,
        refs: list[str] | None,
        name: str | None,
        status: str | None,
        max_results: int | None,
        next_token: str | None,
    ) -> Page:
        if status is not None and status not in (ACTIVE, INACTIVE):
            raise InvalidRequest(f"status {status!r} is not valid; use ACTIVE or INACTIVE")
        if refs is not None:
            if name is not None or status is not None:
                raise InvalidRequest(
                    "jobDefinitions can't be combined with jobDefinitionName or status; "
                    "send one or the other"
                )
            if len(refs) > 100:
                raise InvalidRequest(
                    f"jobDefinitions lists {len(refs)} entries; at most 100 are allowed"
                )
            parsed = [parse_ref(r, "jobDefinitions") for r in refs]
            with self.ctx.store.read() as conn:
                return Page(repo.job_definitions(conn, refs=parsed))
        if name is not None:
            checks.resource_name(name, "jobDefinitionName")
        limit = page_size(max_results)
        filters = [name, status]
        after = self.ctx.tokens.decode(next_token, "DescribeJobDefinitions", filters)
        with self.ctx.store.read() as conn:
            items = repo.job_definitions(
                conn, name=name, status=status, after_id=after, limit=limit + 1
            )
        return cut_page(self.ctx.tokens, "DescribeJobDefinitions", filters, items, limit)
