"""The provider interface: the only thing the scheduler knows about where jobs run.

A provider runs *attempts*. The scheduler hands it launch specs in batches; the provider
reports back through :class:`Events` — an attempt started, an attempt ended (exit code,
reason, usage), or an attempt is lost (it never started, or nobody can say how it ended).
After a restart the scheduler tells the provider which attempts the store believes active,
and the provider answers, through the same events, with what really became of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from batchyard.domain.resources import ComputeEnvironment


@dataclass(frozen=True, slots=True)
class Capacity:
    """What a compute environment can run at once."""

    vcpus: float
    memory_mib: int
    gpus: int = 0

    def describe(self) -> str:
        gpu = f", {self.gpus} GPUs" if self.gpus else ""
        return f"{self.vcpus:g} vCPUs, {self.memory_mib:,} MiB memory{gpu}"


@dataclass(frozen=True, slots=True)
class Check:
    """A provider's verdict on a compute environment: usable or not, and why."""

    ok: bool
    reason: str
    capacity: Capacity
    pool: str = ""  # environments in one pool share its capacity (e.g. one host)
    pool_capacity: Capacity | None = None


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    attempt_id: int
    job_id: str
    attempt: int  # 1-based
    compute_environment: str
    argv: list[str]
    env: dict[str, str]
    log_path: str
    vcpus: float
    memory_mib: int
    gpus: int = 0
    # a node of a multi-node parallel job: which one, and (on every node) the whole gang's
    # needs as (vcpus, memory_mib, gpus) per node index, so a provider can reserve them at
    # once and spread them over distinct machines
    node_index: int | None = None
    gang: str | None = None  # the multi-node job's id
    gang_needs: tuple[tuple[float, int, int], ...] | None = None
    # set when the attempt cannot start (a secret is missing): it is failed with this
    # reason instead of being launched
    error: str | None = None
    # start only once this attempt (of a sibling, on the same reservation) has ended; only
    # for providers that say ``follows``
    after: int | None = None


@dataclass(frozen=True, slots=True)
class Started:
    attempt_id: int
    at: int
    # where it runs, for reconciling; ``ran_as``: the identity it runs as (see ran_as_text)
    ref: dict[str, Any] = field(default_factory=dict)


def ran_as_text(ran_as: dict[str, Any]) -> str:
    """The identity an attempt ran as, for a person: ``{"uid", "gid", "group", "user"}``
    (``user``: the account's name when the uid has one) as ``uid 2000000059, group
    batchyard-jobs`` or ``user nobody (uid 65534), group nogroup``."""
    uid = f"uid {ran_as['uid']}"
    who = f"user {ran_as['user']} ({uid})" if ran_as.get("user") else uid
    group = ran_as.get("group")
    return f"{who}, group {group}" if group else f"{who}, gid {ran_as.get('gid')}"


@dataclass(frozen=True, slots=True)
class Exited:
    """An attempt ended. ``exit_code`` is None when no process ever ran or its status is
    unknown; ``never_started`` means the job may simply run again (no attempt was used)."""

    attempt_id: int
    at: int
    exit_code: int | None
    reason: str | None = None
    usage: dict[str, Any] | None = None
    never_started: bool = False


@dataclass(frozen=True, slots=True)
class ActiveAttempt:
    attempt_id: int
    job_id: str
    status: str  # STARTING or RUNNING, as the store has it
    ref: dict[str, Any] | None
    compute_environment: str = ""


class Events(Protocol):
    def started(self, items: list[Started]) -> None: ...

    def exited(self, items: list[Exited]) -> None: ...


class Provider:
    """Runs attempts for the compute environments that name it."""

    name: str = ""
    # Whether :attr:`LaunchSpec.after` is honoured: the scheduler then queues short array
    # children behind their running siblings, so that they start back to back.
    follows: bool = False

    async def start(self, events: Events) -> None:
        """Connect to whatever runs the jobs; from now on report through ``events``."""

    async def check(self, ce: ComputeEnvironment) -> Check:
        """Can ``ce`` work, and what can it give (bounded by its maxvCpus)?"""
        raise NotImplementedError

    # Providers whose capacity changes on its own (nodes join and leave a cluster) are
    # checked again this often; None: only when the compute environment changes.
    recheck_seconds: float | None = None

    def claim_ref(self, compute_environment: str) -> dict[str, Any]:
        """What to record with an attempt when it is claimed, before it is launched, so that
        whoever reconciles it later knows where to ask (e.g. which agent)."""
        return {}

    async def scale(self, ce: ComputeEnvironment, vcpus: int) -> None:
        """A managed compute environment's desired vCPUs (its queues' demand, clamped to
        minvCpus..maxvCpus): providers with an autoscaler pass it on."""

    async def forget(self, ce: ComputeEnvironment) -> None:
        """The compute environment was deleted: release what the provider keeps for it."""

    async def launch(self, specs: list[LaunchSpec]) -> None:
        """Start these attempts; each is reported as started or exited later."""
        raise NotImplementedError

    async def terminate(self, attempt_ids: list[int], grace_seconds: float) -> None:
        """Stop these attempts' process trees: SIGTERM, then SIGKILL after the grace."""
        raise NotImplementedError

    async def reconcile(self, active: list[ActiveAttempt]) -> None:
        """After a restart: report what became of the attempts the store thinks active."""
        raise NotImplementedError

    def acknowledge(self, attempt_ids: list[int]) -> None:
        """The store has recorded these exits durably; the provider may forget them."""

    async def close(self) -> None:
        """Release what the provider holds; running jobs are left running."""
