"""SubmitJob: resolve the job definition and overrides into the job that will run, check it
against AWS's rules, and store it (with its array children) in one transaction.

The job is evaluated against its dependencies right here, in the same transaction that reads
them, so a job with nothing to wait for is RUNNABLE the moment SubmitJob returns and the
scheduler only has to dispatch it.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from batchyard.domain import checks, params, requirements, retry
from batchyard.domain import nodes as node_rules
from batchyard.domain.clock import now_ms
from batchyard.domain.dependencies import MAX_DEPENDENCIES, readiness
from batchyard.domain.jobs import Job, JobStatus, child_id, empty_counts, node_id
from batchyard.domain.resources import ACTIVE, DELETED, DELETING, ENABLED, JobDefinition, JobQueue
from batchyard.errors import Conflict, InvalidRequest, NotFound, NotSupported
from batchyard.service.context import SUBMITTED, Context
from batchyard.service.job_definitions import MAX_SCHEDULING_PRIORITY, parse_ref
from batchyard.service.suggest import unknown, unknown_definition
from batchyard.store import jobs as jobs_repo
from batchyard.store import resources as repo
from batchyard.store.raw import Raw, json_param

S = JobStatus
MIN_ARRAY, MAX_ARRAY = 2, 10_000
# A tag that makes SubmitJob idempotent (AWS's has no token): the same token for the same
# queue and job name within 24 hours returns the first job instead of creating another.
CLIENT_TOKEN_TAG = "batchyard:client-token"
CLIENT_TOKEN_TTL_MS = 24 * 3600 * 1000
LOOKUP_SECONDS = 1.0
RESERVED_ENV_PREFIX = "AWS_BATCH"


@dataclass(slots=True)
class Submission:
    """SubmitJob's request, snake_case, references already reduced to names and ids."""

    name: str
    queue: str
    job_definition: str
    parameters: dict[str, str] | None = None
    container_overrides: dict[str, Any] | None = None
    array_size: int | None = None
    depends_on: list[dict[str, Any]] | None = None
    retry_strategy: dict[str, Any] | None = None
    timeout: dict[str, Any] | None = None
    tags: dict[str, str] | None = None
    propagate_tags: bool | None = None
    share_identifier: str | None = None
    scheduling_priority_override: int | None = None
    node_overrides: dict[str, Any] | None = None
    consumable_resource_properties_override: dict[str, Any] | None = None
    eks_properties_override: dict[str, Any] | None = None
    ecs_properties_override: dict[str, Any] | None = None


def check_environment(env: list[dict[str, Any]], field: str) -> None:
    for i, var in enumerate(env):
        name = var.get("name") or ""
        if not name:
            raise InvalidRequest(f"{field}[{i}].name is required")
        if name.startswith(RESERVED_ENV_PREFIX):
            raise InvalidRequest(
                f"{field}[{i}].name {name!r}: names starting with {RESERVED_ENV_PREFIX} are "
                "reserved for the variables batchyard sets itself"
            )


def merge_environment(
    base: list[dict[str, Any]], extra: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The definition's variables with the overrides' on top (same name: the override wins)."""
    merged = {v["name"]: v.get("value", "") for v in base}
    for v in extra:
        merged[v["name"]] = v.get("value", "")
    return [{"name": k, "value": v} for k, v in merged.items()]


def resolve_container(
    jd: JobDefinition, overrides: dict[str, Any] | None, parameters: dict[str, str]
) -> dict[str, Any]:
    """The container the job runs: the definition's, overridden, ``Ref::`` substituted."""
    return override_container(jd.spec.get("container_properties") or {}, overrides, parameters)


def override_container(
    base: dict[str, Any],
    overrides: dict[str, Any] | None,
    parameters: dict[str, str],
    field: str = "containerOverrides",
) -> dict[str, Any]:
    container = dict(base)
    overrides = overrides or {}
    check_environment(overrides.get("environment") or [], f"{field}.environment")
    if overrides.get("command") is not None:
        container["command"] = overrides["command"]
    if overrides.get("environment"):
        container["environment"] = merge_environment(
            container.get("environment") or [], overrides["environment"]
        )
    if overrides.get("instance_type") is not None:
        container["instance_type"] = overrides["instance_type"]
    if overrides.get("resource_requirements"):
        by_type = {r["type"]: r for r in container.get("resource_requirements") or []}
        for r in overrides["resource_requirements"]:
            by_type[r["type"]] = r
        container["resource_requirements"] = list(by_type.values())
    for key in ("vcpus", "memory"):
        if overrides.get(key) is not None:
            container[key] = overrides[key]
    if container.get("command"):
        container["command"] = params.substitute(container["command"], parameters)
    return container


def _require_command(container: dict[str, Any], jd: JobDefinition, who: str) -> None:
    if not container.get("command"):
        raise InvalidRequest(
            f"{who} has no command: batchyard runs the command on the host, not a container "
            f"image's default; set the command in {jd.ref}'s container or in the overrides"
        )


class Submitter:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lookups: dict[tuple[str, str], tuple[int, float, JobQueue, JobDefinition]] = {}

    async def submit(self, sub: Submission) -> Job:
        """Check, then store in the shared durable commit, waiting for it without holding a
        thread: SubmitJob is the busiest call there is, and a thread parked per waiting
        submission would fight the others for the interpreter.

        The queue and the job definition are looked up first, outside the shared commit
        (which does one submission after another); inside it they are only re-checked."""
        checks.job_name(sub.name)
        tags = checks.tags(sub.tags or {})
        if sub.array_size is not None and not MIN_ARRAY <= sub.array_size <= MAX_ARRAY:
            raise InvalidRequest(
                f"arrayProperties.size is {sub.array_size}; it must be between {MIN_ARRAY} and "
                f"{MAX_ARRAY} (leave arrayProperties out for a single job)"
            )
        if sub.scheduling_priority_override is not None:
            checks.in_range(
                sub.scheduling_priority_override,
                "schedulingPriorityOverride",
                0,
                MAX_SCHEDULING_PRIORITY,
            )
        for what, value in (
            ("eksPropertiesOverride", sub.eks_properties_override),
            ("ecsPropertiesOverride", sub.ecs_properties_override),
        ):
            if value:
                raise NotSupported(f"{what} is not supported by batchyard yet")
        retry.validate(sub.retry_strategy)
        self._check_timeout(sub.timeout)
        if len(sub.depends_on or []) > MAX_DEPENDENCIES:
            raise InvalidRequest(
                f"dependsOn lists {len(sub.depends_on or [])} jobs; a job can depend on at most "
                f"{MAX_DEPENDENCIES}"
            )
        token = tags.get(CLIENT_TOKEN_TAG)
        key = (sub.queue, sub.job_definition)
        found = self._remembered(key)
        if found is None:  # a read of the store: on a worker thread
            found = await asyncio.to_thread(self._lookup, *key)
        queue, jd = found

        def work(conn: Connection) -> tuple[Job, bool]:
            return self._store_in(conn, sub, queue, jd, tags, token)

        def after(result: tuple[Job, bool]) -> None:
            job, created = result
            if not created:
                return
            if job.status == S.PENDING and any(d.get("job_id") for d in sub.depends_on or []):
                # On PostgreSQL a dependency may finish between the read of its status above
                # and this commit; the scheduler, not seeing this job yet, left it waiting.
                self.ctx.recheck([job.seq])
            self.ctx.wake(SUBMITTED)

        for _ in range(3):  # a concurrent submission with the same token: read its job
            try:
                job, _created = await asyncio.wrap_future(self.ctx.store.grouped(work, after))
                return job
            except IntegrityError:
                if token is None:
                    raise
        raise Conflict(  # pragma: no cover - three conflicts in a row
            f"SubmitJob with {CLIENT_TOKEN_TAG} {token!r} conflicted; retry"
        )

    def _remembered(self, key: tuple[str, str]) -> tuple[JobQueue, JobDefinition] | None:
        """What :meth:`_lookup` read for ``key`` less than a second ago, if this server has
        changed no resource since."""
        hit = self._lookups.get(key)
        if hit is not None and hit[0] == self.ctx.generation and time.monotonic() < hit[1]:
            return hit[2], hit[3]
        return None

    def _lookup(self, queue_name: str, definition: str) -> tuple[JobQueue, JobDefinition]:
        """The queue and job definition a submission names, read and remembered for a second
        (and until this server changes any resource): a burst of submissions reads them once.
        What could make them stale is checked again inside the commit (see _recheck)."""
        key = (queue_name, definition)
        generation, now = self.ctx.generation, time.monotonic()
        with self.ctx.store.read() as conn:
            queue = self._queue(conn, queue_name)
            jd = self._definition(conn, definition)
        if len(self._lookups) > 1024:
            self._lookups.clear()
        self._lookups[key] = (generation, now + LOOKUP_SECONDS, queue, jd)
        return queue, jd

    def _store_in(
        self,
        conn: Connection,
        sub: Submission,
        queue: JobQueue,
        jd: JobDefinition,
        tags: dict[str, str],
        token: str | None,
    ) -> tuple[Job, bool]:
        now = now_ms()
        job_id = str(uuid.uuid4())
        self._recheck(conn, queue, jd)
        if token is not None:
            scope = f"SubmitJob:{queue.id}:{sub.name}"
            seen = repo.idempotent_result(conn, scope, token, now - CLIENT_TOKEN_TTL_MS)
            if seen is not None:
                first = jobs_repo.job_by_id(conn, seen[1]["job_id"])
                if first is not None:
                    return first, False
            # claimed first: a concurrent twin now waits on this row, then conflicts
            repo.remember_result(conn, scope, token, "", {"job_id": job_id}, now)
        plan = self._plan(conn, sub, queue, jd, tags, now, job_id)
        return plan.store(conn), True

    def _recheck(self, conn: Connection, queue: JobQueue, jd: JobDefinition) -> None:
        """The queue and definition read before the commit may have changed since."""
        raw = Raw(conn)
        rows = raw.query("SELECT state, status FROM job_queues WHERE id = :id", {"id": queue.id})
        if not rows or rows[0][1] in (DELETING, DELETED):
            raise NotFound(f"jobQueue: job queue {queue.name!r} does not exist")
        if rows[0][0] != ENABLED:
            raise Conflict(f"job queue {queue.name!r} is DISABLED and accepts no new jobs")
        rows = raw.query("SELECT status FROM job_definitions WHERE id = :id", {"id": jd.id})
        if not rows or rows[0][0] != ACTIVE:
            raise Conflict(f"jobDefinition: {jd.ref} is INACTIVE (deregistered)")

    def _check_timeout(self, timeout: dict[str, Any] | None) -> None:
        seconds = (timeout or {}).get("attempt_duration_seconds")
        low = self.ctx.settings.min_attempt_duration_seconds
        if seconds is not None and seconds < low:
            raise InvalidRequest(
                f"timeout.attemptDurationSeconds is {seconds}; the minimum is {low} seconds"
            )

    def _queue(self, conn: Connection, name: str) -> JobQueue:
        queue = repo.job_queue(conn, name)
        if queue is None or queue.status in (DELETING, DELETED):
            raise unknown(conn, "job queue", name, "jobQueue")
        if queue.state != ENABLED:
            raise Conflict(
                f"job queue {name!r} is DISABLED and accepts no new jobs; enable it with "
                "UpdateJobQueue state=ENABLED"
            )
        return queue

    def _definition(self, conn: Connection, ref: str) -> JobDefinition:
        name, revision = parse_ref(ref, "jobDefinition")
        jd = repo.job_definition(conn, name, revision)
        if jd is None:
            raise unknown_definition(conn, name, revision, "jobDefinition")
        if jd.status != ACTIVE:
            raise Conflict(
                f"jobDefinition: {jd.ref} is INACTIVE (deregistered); use an ACTIVE revision"
            )
        if jd.type == "container" and "container_properties" not in jd.spec:
            raise NotSupported(
                f"jobDefinition {jd.ref} uses ecsProperties or eksProperties; batchyard runs jobs "
                "from containerProperties so far"
            )
        return jd

    def _plan(
        self,
        conn: Connection,
        sub: Submission,
        queue: JobQueue,
        jd: JobDefinition,
        tags: dict[str, str],
        now: int,
        job_id: str,
    ) -> _Plan:
        has_policy = queue.scheduling_policy is not None
        if has_policy and not sub.share_identifier:
            raise InvalidRequest(
                f"job queue {queue.name!r} has a fair-share scheduling policy, so SubmitJob "
                "needs a shareIdentifier"
            )
        if sub.share_identifier and not has_policy:
            raise InvalidRequest(
                "shareIdentifier applies only to queues with a fair-share scheduling policy; "
                f"{queue.name!r} has none (leave shareIdentifier out)"
            )
        parameters = {**(jd.spec.get("parameters") or {}), **(sub.parameters or {})}
        nodes: list[tuple[dict[str, Any], requirements.Resources]] = []
        if jd.type == "multinode":
            if sub.array_size is not None:
                raise InvalidRequest("a multi-node parallel job cannot also be an array job")
            if sub.container_overrides:
                raise InvalidRequest(
                    "containerOverrides do not apply to multi-node parallel jobs; use "
                    "nodeOverrides.nodePropertyOverrides"
                )
            num_nodes, main_node, per_node = node_rules.containers(
                jd.spec["node_properties"], sub.node_overrides
            )
            for i, (base_container, extra) in enumerate(per_node):
                c = override_container(base_container, extra, parameters, f"node {i} overrides")
                _require_command(c, jd, f"node {i}")
                nodes.append((c, requirements.resolve(requirements.requested(c, f"node {i}"))))
            container = None
            need = nodes[main_node][1]
        else:
            container = resolve_container(jd, sub.container_overrides, parameters)
            _require_command(container, jd, "the job")
            need = requirements.resolve(requirements.requested(container, "containerProperties"))
        priority = sub.scheduling_priority_override
        if priority is None:
            priority = jd.spec.get("scheduling_priority")
        deps = sub.depends_on or []
        spec = {
            "container": container,
            "parameters": parameters,
            "depends_on": [{"job_id": d.get("job_id"), "type": d.get("type")} for d in deps]
            or None,
            "retry_strategy": _first(sub.retry_strategy, jd.spec.get("retry_strategy")),
            "timeout": _first(sub.timeout, jd.spec.get("timeout")),
            "propagate_tags": _first(sub.propagate_tags, jd.spec.get("propagate_tags")),
            "platform_capabilities": jd.spec.get("platform_capabilities"),
            "consumable_resource_properties": _first(
                sub.consumable_resource_properties_override,
                jd.spec.get("consumable_resource_properties"),
            ),
        }
        base = {
            "name": sub.name,
            "queue_id": queue.id,
            "definition_id": jd.id,
            "created_at": now,
            "updated_at": now,
            "rank": -(priority or 0) if has_policy else 0,
            "root_seq": 0,  # the root's own seq, known once it is inserted
            "scheduling_priority": priority,
            "share_identifier": sub.share_identifier,
            "vcpus": need.vcpus,
            "memory_mib": need.memory_mib,
            "gpus": need.gpus,
        }
        plan = _Plan(now)
        waits, n_to_n, sequential = self._dependencies(conn, job_id, deps, sub.array_size, plan)
        if sequential:
            spec["sequential"] = True
        if nodes:
            ready = readiness(waits)
            path = [S.SUBMITTED, S.PENDING] + ([ready.status] if ready.status != S.PENDING else [])
            spec["node_properties"] = {
                "num_nodes": num_nodes,
                "main_node": main_node,
                "node_range_properties": jd.spec["node_properties"]["node_range_properties"],
            }
            plan.add(
                job_id,
                {**base, "num_nodes": num_nodes, "tags": tags, "spec": spec},
                path,
                ready.reason,
            )
            failed = ready.status == S.FAILED
            for i, (c, r) in enumerate(nodes):
                plan.add(
                    node_id(job_id, i),
                    {
                        **base,
                        "node_index": i,
                        "pos": i,
                        "vcpus": r.vcpus,
                        "memory_mib": r.memory_mib,
                        "gpus": r.gpus,
                        "tags": {},
                        "spec": {"container": c},
                    },
                    [S.FAILED if failed else S.PENDING],
                    ready.reason if failed else "Waiting for the multi-node job to start",
                    parent=job_id,
                )
            return plan
        if sub.array_size is None:
            ready = readiness(waits)
            path = [S.SUBMITTED, S.PENDING] + ([ready.status] if ready.status != S.PENDING else [])
            plan.add(job_id, {**base, "tags": tags, "spec": spec}, path, ready.reason)
            return plan
        counts = empty_counts()
        child_rows = []
        for i in range(sub.array_size):
            cid = child_id(job_id, i)
            own = [(child_id(d.id, i), d.child_status.get(i, S.PENDING)) for d in n_to_n]
            for d in n_to_n:
                plan.edge(cid, child_id(d.id, i), "N_TO_N")
            if sequential and i > 0:
                own.append((child_id(job_id, i - 1), S.PENDING))
                plan.edge(cid, child_id(job_id, i - 1), "SEQUENTIAL")
            ready = readiness(waits + own)
            counts[ready.status] += 1
            child_rows.append(
                (
                    cid,
                    {**base, "array_index": i, "pos": i, "tags": {}, "spec": {}},
                    [ready.status],
                    ready.reason,
                )
            )
        parent_status = S.FAILED if counts[S.FAILED] == sub.array_size else S.PENDING
        reason = readiness(waits).reason if parent_status == S.FAILED else None
        parent = {
            **base,
            "array_size": sub.array_size,
            "array_counts": counts,
            "tags": tags,
            "spec": spec,
        }
        plan.add(job_id, parent, [S.SUBMITTED, parent_status], reason)
        for cid, row, path, why in child_rows:
            plan.add(cid, row, path, why, parent=job_id)
        return plan

    def _dependencies(
        self,
        conn: Connection,
        job_id: str,
        deps: list[dict[str, Any]],
        array_size: int | None,
        plan: _Plan,
    ) -> tuple[list[tuple[str, S]], list[_ArrayDep], bool]:
        """Check dependsOn. Returns the (id, status) pairs the whole job waits on, the arrays
        it follows index by index (N_TO_N), and whether its children run one after another."""
        found = jobs_repo.jobs_by_ids(conn, [d["job_id"] for d in deps if d.get("job_id")])
        waits: list[tuple[str, S]] = []
        n_to_n: list[_ArrayDep] = []
        sequential = False
        for i, d in enumerate(deps):
            kind, dep_id, where = d.get("type"), d.get("job_id"), f"dependsOn[{i}]"
            if kind == "SEQUENTIAL" and not dep_id:
                if array_size is None:
                    raise InvalidRequest(
                        f"{where}: a SEQUENTIAL dependency without a jobId is only for array "
                        "jobs (it runs the array's children one after another); to wait for "
                        "another job, give its jobId"
                    )
                sequential = True
                continue
            # SEQUENTIAL with a jobId is a plain dependency on that job, as on AWS (for an
            # array job too: the whole array waits for it)
            if not dep_id:
                raise InvalidRequest(f"{where}.jobId is required (only SEQUENTIAL goes without)")
            dep = found.get(dep_id)
            if dep is None:
                raise NotFound(f"{where}: job {dep_id} does not exist")
            if kind == "N_TO_N":
                if array_size is None or dep.array_size is None:
                    raise InvalidRequest(
                        f"{where}: an N_TO_N dependency needs both jobs to be array jobs"
                    )
                if dep.array_size != array_size:
                    raise InvalidRequest(
                        f"{where}: N_TO_N needs arrays of the same size; {dep_id} has "
                        f"{dep.array_size} children, this job {array_size}"
                    )
                kids = jobs_repo.children(conn, dep.seq)
                n_to_n.append(
                    _ArrayDep(
                        dep.id, {c.array_index: c.status for c in kids if c.array_index is not None}
                    )
                )
                continue
            waits.append((dep.id, dep.status))
            plan.edge(job_id, dep.id, None)
        return waits, n_to_n, sequential


@dataclass(slots=True)
class _ArrayDep:
    id: str
    child_status: dict[int, S]


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


class _Plan:
    """The rows one submission writes, keyed by job id until the database assigns seqs."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.rows: list[tuple[str, dict[str, Any], str | None]] = []
        self.history: list[tuple[str, S | None, S, str | None]] = []
        self.edges: list[tuple[str, str, str | None]] = []

    def add(
        self,
        job_id: str,
        row: dict[str, Any],
        path: list[S],
        reason: str | None,
        parent: str | None = None,
    ) -> None:
        final = path[-1]
        row = {**row, "id": job_id, "status": final, "status_reason": reason}
        if final == S.FAILED:
            row["stopped_at"] = self.now
        self.rows.append((job_id, row, parent))
        prev: S | None = None
        for status in path:
            self.history.append((job_id, prev, status, reason if status == final else None))
            prev = status

    def edge(self, job_id: str, depends_on: str, kind: str | None) -> None:
        self.edges.append((job_id, depends_on, kind))

    def store(self, conn: Connection) -> Job:
        """Insert the rows (driver-level SQL: SubmitJob is the hottest write there is)."""
        raw = Raw(conn)
        root_id, root_row, _ = self.rows[0]
        root_seq = _insert_job(raw, root_row)
        raw.execute("UPDATE jobs SET root_seq = :s WHERE seq = :s", {"s": root_seq})
        root_row = {**root_row, "seq": root_seq, "root_seq": root_seq}
        seqs = {root_id: root_seq}
        kids = [
            {**row, "parent_seq": root_seq, "root_seq": root_seq} for _, row, _ in self.rows[1:]
        ]
        if kids:
            _insert_jobs(raw, kids)
            seqs.update(
                raw.query("SELECT id, seq FROM jobs WHERE parent_seq = :p", {"p": root_seq})
            )
        outside = {d for _, d, _ in self.edges} - seqs.keys()
        if outside:
            seqs.update(jobs_repo.seqs_for_ids(conn, sorted(outside)))
        raw.executemany(
            "INSERT INTO job_transitions (job_seq, at, from_status, to_status, reason) "
            "VALUES (:seq, :at, :src, :dst, :reason)",
            [
                {
                    "seq": seqs[j],
                    "at": self.now,
                    "src": a.value if a is not None else None,
                    "dst": b.value,
                    "reason": why,
                }
                for j, a, b, why in self.history
            ],
        )
        raw.executemany(
            "INSERT INTO job_dependencies (job_seq, depends_on_seq, type) VALUES (:j, :d, :k)",
            [{"j": seqs[j], "d": seqs[d], "k": k} for j, d, k in self.edges],
        )
        return _job_from_row(root_row)


_DEFAULTS = {
    "started_at": None,
    "stopped_at": None,
    "parent_seq": None,
    "array_size": None,
    "array_index": None,
    "node_index": None,
    "num_nodes": None,
    "pos": 0,
    "attempt_count": 0,
    "is_cancelled": False,
    "is_terminated": False,
    "array_counts": None,
}
_JSON = ("array_counts", "tags", "spec")


def _params(raw: Raw, row: dict[str, Any]) -> dict[str, Any]:
    values = {**_DEFAULTS, **row}
    for key in _JSON:
        values[key] = raw.dumps(values[key])
    for key in ("status",):
        values[key] = str(values[key])
    return values


@functools.cache
def _insert_sql(pg: bool) -> str:
    columns = [
        *_DEFAULTS,
        "id",
        "name",
        "queue_id",
        "definition_id",
        "status",
        "status_reason",
        "created_at",
        "updated_at",
        "rank",
        "root_seq",
        "scheduling_priority",
        "share_identifier",
        "vcpus",
        "memory_mib",
        "gpus",
        "tags",
        "spec",
    ]
    values = [json_param(c, pg) if c in _JSON else f":{c}" for c in columns]
    return f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join(values)})"


def _insert_job(raw: Raw, row: dict[str, Any]) -> int:
    return int(raw.query(_insert_sql(raw.pg) + " RETURNING seq", _params(raw, row))[0][0])


def _insert_jobs(raw: Raw, rows: list[dict[str, Any]]) -> None:
    raw.executemany(_insert_sql(raw.pg), [_params(raw, r) for r in rows])


def _job_from_row(row: dict[str, Any]) -> Job:
    values = {**_DEFAULTS, **row}
    values["status"] = S(values["status"])
    return Job(**{k: v for k, v in values.items() if k in Job.__dataclass_fields__})
