"""Job queues: create, update, delete, describe."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from batchyard.domain import checks
from batchyard.domain.clock import now_ms
from batchyard.domain.resources import (
    CREATING,
    DELETED,
    DELETING,
    DISABLED,
    ENABLED,
    INVALID,
    UPDATING,
    JobQueue,
    Page,
)
from batchyard.errors import Conflict, InvalidRequest, NotSupported
from batchyard.service.compute_environments import resource_family
from batchyard.service.context import RESOURCES, Context
from batchyard.service.pagination import cut_page, page_size
from batchyard.service.suggest import unknown
from batchyard.store import resources as repo

MAX_PRIORITY = 1000
MAX_ENVIRONMENTS = 3
MAX_TIME_LIMIT_SECONDS = 86_400


class JobQueues:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def create(
        self,
        *,
        name: str,
        priority: int,
        compute_environment_order: list[dict[str, Any]] | None,
        state: str | None = None,
        scheduling_policy: str | None = None,
        tags: dict[str, str] | None = None,
        job_state_time_limit_actions: list[dict[str, Any]] | None = None,
        job_queue_type: str | None = None,
        service_environment_order: list[dict[str, Any]] | None = None,
    ) -> JobQueue:
        checks.resource_name(name, "jobQueueName")
        checks.in_range(priority, "priority", 0, MAX_PRIORITY)
        tags = checks.tags(tags or {})
        if service_environment_order:
            raise NotSupported(
                "serviceEnvironmentOrder (SageMaker service environments) is not supported by "
                "batchyard; give the queue a computeEnvironmentOrder instead"
            )
        if not compute_environment_order:
            raise InvalidRequest(
                "computeEnvironmentOrder is required: list 1 to 3 compute environments, "
                'e.g. [{"order": 1, "computeEnvironment": "my-ce"}]'
            )
        actions = self._time_limit_actions(job_state_time_limit_actions or [])
        spec: dict[str, Any] = {"job_state_time_limit_actions": actions}
        if job_queue_type is not None:
            spec["job_queue_type"] = job_queue_type
        now = now_ms()
        try:
            with self.ctx.store.write() as conn:
                if repo.job_queue(conn, name) is not None:
                    raise Conflict(f"A job queue named {name!r} already exists")
                entries = self._environments(conn, compute_environment_order)
                policy_id = self._policy_id(conn, scheduling_policy)
                queue_id = repo.insert_job_queue(
                    conn,
                    name=name,
                    state=state or ENABLED,
                    status=CREATING,
                    status_reason=None,
                    priority=priority,
                    scheduling_policy_id=policy_id,
                    spec=spec,
                    tags=tags,
                    created_at=now,
                    updated_at=now,
                )
                repo.set_queue_environments(conn, queue_id, entries)
                queue = repo.job_queue_by_id(conn, queue_id)
        except IntegrityError:
            raise Conflict(f"A job queue named {name!r} already exists") from None
        self.ctx.changed(RESOURCES)
        assert queue is not None
        return queue

    def _environments(self, conn: Connection, order: list[dict[str, Any]]) -> list[tuple[int, int]]:
        """Check computeEnvironmentOrder against AWS's rules -> ``(order, ce_id)`` pairs."""
        if len(order) > MAX_ENVIRONMENTS:
            raise InvalidRequest(
                f"computeEnvironmentOrder lists {len(order)} compute environments; a job queue "
                f"can use at most {MAX_ENVIRONMENTS}"
            )
        seen_orders: set[int] = set()
        seen_names: set[str] = set()
        families: dict[str, str] = {}
        entries = []
        for entry in order:
            position, name = entry["order"], entry["compute_environment"]
            if position in seen_orders:
                raise InvalidRequest(
                    f"computeEnvironmentOrder uses order {position} twice; each compute "
                    "environment needs a distinct order"
                )
            if name in seen_names:
                raise InvalidRequest(f"computeEnvironmentOrder lists {name!r} twice")
            seen_orders.add(position)
            seen_names.add(name)
            ce = repo.compute_environment(conn, name, lock="share")  # no delete meanwhile
            if ce is None:
                raise unknown(conn, "compute environment", name, "computeEnvironmentOrder")
            if ce.status in (DELETING, DELETED):
                raise Conflict(f"compute environment {name!r} is being deleted")
            if ce.status == INVALID:
                raise Conflict(
                    f"compute environment {name!r} is INVALID ({ce.status_reason}); fix it "
                    "with UpdateComputeEnvironment before adding it to a queue"
                )
            families[name] = resource_family(ce)
            entries.append((position, ce.id))
        if len(set(families.values())) > 1:
            kinds = ", ".join(f"{n}: {f}" for n, f in families.items())
            raise InvalidRequest(
                f"computeEnvironmentOrder mixes EC2 and Fargate compute environments ({kinds}); "
                "a queue must use one kind"
            )
        return entries

    def _policy_id(self, conn: Connection, name: str | None) -> int | None:
        if name is None:
            return None
        policy = repo.scheduling_policy(conn, name, lock="share")  # no delete meanwhile
        if policy is None:
            raise unknown(conn, "scheduling policy", name)
        return policy.id

    def _time_limit_actions(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        lo = self.ctx.settings.min_time_limit_seconds
        for i, a in enumerate(actions):
            field = f"jobStateTimeLimitActions[{i}]"
            if not a["reason"].strip():
                raise InvalidRequest(
                    f"{field}.reason must not be empty; it becomes the statusReason"
                )
            checks.in_range(
                a["max_time_seconds"], f"{field}.maxTimeSeconds", lo, MAX_TIME_LIMIT_SECONDS
            )
            if a["action"] != "CANCEL":
                raise InvalidRequest(
                    f"{field}.action {a['action']} applies only to SageMaker service "
                    "environments; queues of compute environments support CANCEL"
                )
        return actions

    def get(self, name: str) -> JobQueue:
        with self.ctx.store.read() as conn:
            queue = repo.job_queue(conn, name)
            if queue is None:
                raise unknown(conn, "job queue", name)
        return queue

    def update(
        self,
        name: str,
        *,
        state: str | None = None,
        priority: int | None = None,
        compute_environment_order: list[dict[str, Any]] | None = None,
        scheduling_policy: str | None = None,
        job_state_time_limit_actions: list[dict[str, Any]] | None = None,
        service_environment_order: list[dict[str, Any]] | None = None,
    ) -> JobQueue:
        if priority is not None:
            checks.in_range(priority, "priority", 0, MAX_PRIORITY)
        if service_environment_order:
            raise NotSupported("serviceEnvironmentOrder is not supported by batchyard")
        with self.ctx.store.write() as conn:
            queue = repo.job_queue(conn, name, lock="update")
            if queue is None:
                raise unknown(conn, "job queue", name)
            if queue.status == DELETING:
                raise Conflict(f"job queue {name!r} is being deleted; it cannot change")
            values: dict[str, Any] = {"updated_at": now_ms(), "status": UPDATING}
            if state is not None:
                values["state"] = state
            if priority is not None:
                values["priority"] = priority
            if scheduling_policy is not None:
                if queue.scheduling_policy is None:
                    raise InvalidRequest(
                        f"job queue {name!r} was created without a scheduling policy (FIFO); "
                        "AWS Batch does not let a FIFO queue gain one: create a new queue with "
                        "schedulingPolicyArn instead"
                    )
                values["scheduling_policy_id"] = self._policy_id(conn, scheduling_policy)
            if job_state_time_limit_actions is not None:
                spec = dict(queue.spec)
                spec["job_state_time_limit_actions"] = self._time_limit_actions(
                    job_state_time_limit_actions
                )
                values["spec"] = spec
            if compute_environment_order is not None:
                if not compute_environment_order:
                    raise InvalidRequest(
                        "computeEnvironmentOrder must list at least one compute environment"
                    )
                repo.set_queue_environments(
                    conn, queue.id, self._environments(conn, compute_environment_order)
                )
            repo.update_job_queue(conn, queue.id, **values)
            queue = repo.job_queue_by_id(conn, queue.id)
        self.ctx.changed(RESOURCES)
        assert queue is not None
        return queue

    def delete(self, name: str) -> None:
        with self.ctx.store.write() as conn:
            queue = repo.job_queue(conn, name, lock="update")
            if queue is None:
                raise unknown(conn, "job queue", name)
            if queue.status == DELETING:
                return
            if queue.state != DISABLED:
                raise Conflict(
                    f"job queue {name!r} is ENABLED; set its state to DISABLED with UpdateJobQueue "
                    "before deleting it"
                )
            repo.update_job_queue(
                conn, queue.id, status=DELETING, status_reason="Deleting", updated_at=now_ms()
            )
        self.ctx.changed(RESOURCES)

    def describe(
        self, names: list[str] | None, max_results: int | None, next_token: str | None
    ) -> Page:
        if names is not None:
            if len(names) > 100:
                raise InvalidRequest(
                    f"jobQueues lists {len(names)} entries; at most 100 are allowed"
                )
            with self.ctx.store.read() as conn:
                return Page(repo.job_queues(conn, names=names))
        limit = page_size(max_results)
        after = self.ctx.tokens.decode(next_token, "DescribeJobQueues", None)
        with self.ctx.store.read() as conn:
            items = repo.job_queues(conn, after_id=after, limit=limit + 1)
        return cut_page(self.ctx.tokens, "DescribeJobQueues", None, items, limit)
