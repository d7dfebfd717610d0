"""Compute environments: create, update, delete, describe.

A compute environment is created CREATING (or moved to UPDATING by an update); the
scheduler's controller asks its provider whether it can work and moves it to VALID or INVALID
with a reason, as AWS Batch does asynchronously.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from batchyard.domain import checks
from batchyard.domain.clock import now_ms
from batchyard.domain.resources import (
    CREATING,
    DELETING,
    DISABLED,
    ENABLED,
    MANAGED,
    UNMANAGED,
    UPDATING,
    ComputeEnvironment,
    Page,
)
from batchyard.errors import Conflict, InvalidRequest
from batchyard.service.context import RESOURCES, Context
from batchyard.service.pagination import cut_page, page_size
from batchyard.service.suggest import unknown
from batchyard.store import resources as repo

PROVIDER_TAG = "batchyard:provider"
_EC2_FAMILY = {"EC2", "SPOT", "ECS_MANAGED_INSTANCES"}
_FARGATE_FAMILY = {"FARGATE", "FARGATE_SPOT"}


def resource_family(ce: ComputeEnvironment) -> str:
    """EC2 or FARGATE: AWS does not let one queue mix the two families."""
    cr = ce.compute_resources or {}
    return "FARGATE" if cr.get("type") in _FARGATE_FAMILY else "EC2"


def _check_vcpus(cr: dict[str, Any], field: str = "computeResources") -> None:
    lo, hi, want = cr.get("min_vcpus"), cr.get("max_vcpus"), cr.get("desired_vcpus")
    for name, value in (("minvCpus", lo), ("maxvCpus", hi), ("desiredvCpus", want)):
        if value is not None and value < 0:
            raise InvalidRequest(f"{field}.{name} is {value}; it must not be negative")
    if lo is not None and hi is not None and hi < lo:
        raise InvalidRequest(
            f"{field}.maxvCpus ({hi}) must be greater than or equal to minvCpus ({lo})"
        )
    if want is not None:
        if lo is not None and want < lo:
            raise InvalidRequest(f"{field}.desiredvCpus ({want}) is below minvCpus ({lo})")
        if hi is not None and want > hi:
            raise InvalidRequest(f"{field}.desiredvCpus ({want}) is above maxvCpus ({hi})")


# Structures inside computeResources that an update amends member by member (their update
# shapes leave out members the full shapes require).
_AMENDED = ("managed_instances_provider", "instance_launch_template")


def _overlay(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` over ``old``; the structures named in ``_AMENDED`` are overlaid the same way."""
    merged = {**old, **new}
    for key in _AMENDED:
        if isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
            merged[key] = _overlay(old[key], new[key])
    return merged


class ComputeEnvironments:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def create(
        self,
        *,
        name: str,
        type: str,
        state: str | None = None,
        compute_resources: dict[str, Any] | None = None,
        unmanaged_vcpus: int | None = None,
        tags: dict[str, str] | None = None,
        **settings: Any,
    ) -> ComputeEnvironment:
        """``settings``: serviceRole, eksConfiguration, context... recorded as declared."""
        checks.resource_name(name, "computeEnvironmentName")
        tags = checks.tags(tags or {})
        provider = self._provider(tags)
        if type == MANAGED:
            if compute_resources is None:
                raise InvalidRequest(
                    "computeResources is required for a MANAGED compute environment "
                    "(at least its type and maxvCpus)"
                )
            if unmanaged_vcpus is not None:
                raise InvalidRequest(
                    "unmanagedvCpus applies only to UNMANAGED compute environments"
                )
            _check_vcpus(compute_resources)
            compute_resources.setdefault("min_vcpus", 0)
        else:
            if compute_resources is not None:
                raise InvalidRequest(
                    "computeResources applies only to MANAGED compute environments; an "
                    "UNMANAGED one takes its capacity from its provider (see unmanagedvCpus)"
                )
            if unmanaged_vcpus is not None and unmanaged_vcpus < 0:
                raise InvalidRequest(
                    f"unmanagedvCpus is {unmanaged_vcpus}; it must not be negative"
                )
        spec = {k: v for k, v in settings.items() if v is not None}
        spec["compute_resources"] = compute_resources
        spec["unmanaged_vcpus"] = unmanaged_vcpus
        spec.setdefault(
            "update_policy",
            {"terminate_jobs_on_update": False, "job_execution_timeout_minutes": 30},
        )
        now = now_ms()
        try:
            with self.ctx.store.write() as conn:
                if repo.compute_environment(conn, name) is not None:
                    raise Conflict(f"A compute environment named {name!r} already exists")
                repo.insert_compute_environment(
                    conn,
                    name=name,
                    uuid=str(uuid.uuid4()),
                    type=type,
                    state=state or ENABLED,
                    status=CREATING,
                    status_reason=None,
                    provider=provider,
                    spec=spec,
                    tags=tags,
                    created_at=now,
                    updated_at=now,
                )
                ce = repo.compute_environment(conn, name)
        except IntegrityError:
            raise Conflict(f"A compute environment named {name!r} already exists") from None
        self.ctx.changed(RESOURCES)
        assert ce is not None
        return ce

    def _provider(self, tags: dict[str, str]) -> str:
        provider = tags.get(PROVIDER_TAG, "local")
        if provider not in self.ctx.providers:
            known = ", ".join(sorted(self.ctx.providers))
            raise InvalidRequest(
                f"tag {PROVIDER_TAG}={provider!r} names an unknown provider; "
                f"the providers available on this server are: {known}"
            )
        return provider

    def get(self, name: str) -> ComputeEnvironment:
        with self.ctx.store.read() as conn:
            ce = repo.compute_environment(conn, name)
            if ce is None:
                raise unknown(conn, "compute environment", name)
        return ce

    def update(
        self,
        name: str,
        *,
        state: str | None = None,
        unmanaged_vcpus: int | None = None,
        compute_resources: dict[str, Any] | None = None,
        **settings: Any,
    ) -> ComputeEnvironment:
        with self.ctx.store.write() as conn:
            ce = repo.compute_environment(conn, name, lock="update")
            if ce is None:
                raise unknown(conn, "compute environment", name)
            if ce.status == DELETING:
                raise Conflict(f"compute environment {name!r} is being deleted; it cannot change")
            spec = dict(ce.spec)
            if unmanaged_vcpus is not None:
                if ce.type != UNMANAGED:
                    raise InvalidRequest(
                        "unmanagedvCpus applies only to UNMANAGED compute environments; "
                        f"{name!r} is MANAGED (change computeResources.maxvCpus instead)"
                    )
                if unmanaged_vcpus < 0:
                    raise InvalidRequest(
                        f"unmanagedvCpus is {unmanaged_vcpus}; it must not be negative"
                    )
                spec["unmanaged_vcpus"] = unmanaged_vcpus
            if compute_resources is not None:
                if ce.type != MANAGED:
                    raise InvalidRequest(
                        f"computeResources can only be updated on a MANAGED compute environment; "
                        f"{name!r} is UNMANAGED"
                    )
                # updateToLatestImageVersion asks for an action; it is not a setting to keep
                compute_resources.pop("update_to_latest_image_version", None)
                merged = _overlay(spec.get("compute_resources") or {}, compute_resources)
                _check_vcpus(merged)
                spec["compute_resources"] = merged
            eks = settings.pop("eks_configuration", None)
            if eks is not None:
                if not spec.get("eks_configuration"):
                    raise InvalidRequest(
                        f"eksConfiguration can only be updated on an EKS compute environment; "
                        f"{name!r} was created without one"
                    )
                spec["eks_configuration"] = {**spec["eks_configuration"], **eks}
            for key, value in settings.items():
                if value is not None:
                    spec[key] = value
            values: dict[str, Any] = {"spec": spec, "updated_at": now_ms(), "status": UPDATING}
            if state is not None:
                values["state"] = state
            repo.update_compute_environment(conn, ce.id, **values)
            ce = repo.compute_environment(conn, name)
        self.ctx.changed(RESOURCES)
        assert ce is not None
        return ce

    def delete(self, name: str) -> None:
        with self.ctx.store.write() as conn:
            ce = repo.compute_environment(conn, name, lock="update")
            if ce is None:
                raise unknown(conn, "compute environment", name)
            if ce.status == DELETING:
                return  # already on its way out: deleting twice is not an error in AWS
            if ce.state != DISABLED:
                raise Conflict(
                    f"compute environment {name!r} is ENABLED; set its state to DISABLED with "
                    "UpdateComputeEnvironment before deleting it"
                )
            queues = repo.queues_using_compute_environment(conn, ce.id)
            if queues:
                raise Conflict(
                    f"compute environment {name!r} is still used by job queue(s) "
                    f"{', '.join(queues)}; remove it from their computeEnvironmentOrder "
                    "(UpdateJobQueue) or delete them first"
                )
            repo.update_compute_environment(
                conn, ce.id, status=DELETING, status_reason="Deleting", updated_at=now_ms()
            )
        self.ctx.changed(RESOURCES)

    def describe(
        self,
        names: list[str] | None,
        max_results: int | None,
        next_token: str | None,
    ) -> Page:
        if names is not None:
            if len(names) > 100:
                raise InvalidRequest(
                    f"computeEnvironments lists {len(names)} entries; at most 100 are allowed"
                )
            with self.ctx.store.read() as conn:
                return Page(repo.compute_environments(conn, names=names))
        limit = page_size(max_results)
        after = self.ctx.tokens.decode(next_token, "DescribeComputeEnvironments", None)
        with self.ctx.store.read() as conn:
            items = repo.compute_environments(conn, after_id=after, limit=limit + 1)
        return cut_page(self.ctx.tokens, "DescribeComputeEnvironments", None, items, limit)
