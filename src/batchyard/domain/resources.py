"""The resources a user declares: compute environments, queues, job definitions, scheduling
policies and consumable resources. ``spec`` holds the declared settings batchyard records and
returns without acting on them (subnets, launch templates...), in snake_case."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

ENABLED, DISABLED = "ENABLED", "DISABLED"
# Lifecycle statuses shared by compute environments and job queues (AWS's CEStatus/JQStatus).
CREATING, UPDATING, DELETING, DELETED, VALID, INVALID = (
    "CREATING",
    "UPDATING",
    "DELETING",
    "DELETED",
    "VALID",
    "INVALID",
)
MANAGED, UNMANAGED = "MANAGED", "UNMANAGED"
ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"
# The job definitions `batchyard submit -- CMD` registers, one per distinct command (and
# image), are named by a hash of it after this prefix.
INLINE_PREFIX = "batchyard-inline-"
INLINE_LABEL = "inline: "  # JobDefinition.label of such a definition: this, then its command
LABEL_COMMAND_CHARS = 30


@dataclass(slots=True)
class ComputeEnvironment:
    id: int
    name: str
    uuid: str
    type: str
    state: str
    status: str
    status_reason: str | None
    provider: str
    spec: dict[str, Any]
    tags: dict[str, str]
    created_at: int
    updated_at: int

    @property
    def compute_resources(self) -> dict[str, Any] | None:
        return self.spec.get("compute_resources")

    @property
    def max_vcpus(self) -> int | None:
        """The vCPU ceiling the user declared (managed: maxvCpus; unmanaged: unmanagedvCpus)."""
        cr = self.compute_resources
        if cr is not None:
            return cr.get("max_vcpus")
        return self.spec.get("unmanaged_vcpus")


@dataclass(slots=True)
class QueueEnvironment:
    order: int
    compute_environment: str  # name


@dataclass(slots=True)
class JobQueue:
    id: int
    name: str
    state: str
    status: str
    status_reason: str | None
    priority: int
    scheduling_policy: str | None  # name
    compute_environment_order: list[QueueEnvironment]
    spec: dict[str, Any]
    tags: dict[str, str]
    created_at: int
    updated_at: int

    @property
    def job_state_time_limit_actions(self) -> list[dict[str, Any]]:
        return self.spec.get("job_state_time_limit_actions") or []


@dataclass(slots=True)
class JobDefinition:
    id: int
    name: str
    revision: int
    status: str
    type: str
    spec: dict[str, Any]
    tags: dict[str, str]
    created_at: int

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.revision}"

    @property
    def label(self) -> str:
        """The name people read: ``name:revision``, or for an inline definition (whose name
        is a hash) what it runs: ``inline: python3 -c 'print(1)'``, shortened."""
        if not self.name.startswith(INLINE_PREFIX):
            return self.ref
        command = shlex.join((self.spec.get("container_properties") or {}).get("command") or [])
        if len(command) > LABEL_COMMAND_CHARS:
            command = command[: LABEL_COMMAND_CHARS - 1] + "…"
        return INLINE_LABEL + command


@dataclass(slots=True)
class SchedulingPolicy:
    id: int
    name: str
    spec: dict[str, Any]
    tags: dict[str, str]
    created_at: int


@dataclass(slots=True)
class ConsumableResource:
    id: int
    name: str
    resource_type: str
    total_quantity: int
    in_use_quantity: int
    tags: dict[str, str]
    created_at: int

    @property
    def available_quantity(self) -> int:
        return max(0, self.total_quantity - self.in_use_quantity)


@dataclass(slots=True)
class Page:
    """One page of a listing and the opaque token for the next one, if any."""

    items: list[Any]
    next_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
