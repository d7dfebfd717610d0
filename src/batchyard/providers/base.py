"""The provider interface: the only thing the scheduler knows about where jobs run."""

from __future__ import annotations

from dataclasses import dataclass

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


class Provider:
    """Runs attempts for the compute environments that name it."""

    name: str = ""

    async def check(self, ce: ComputeEnvironment) -> Check:
        """Can ``ce`` work, and what can it give (bounded by its maxvCpus)?"""
        raise NotImplementedError

    async def close(self) -> None:
        """Release what the provider holds; running jobs are left running."""
