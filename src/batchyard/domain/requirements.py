"""A job's resource request (vCPUs, memory, GPUs) from a container's properties.

AWS lets a container state them two ways: the deprecated ``vcpus``/``memory`` fields, or
``resourceRequirements`` entries (VCPU as a decimal, MEMORY in MiB, GPU as a count), the
latter winning. Jobs that state neither get the documented defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchyard.errors import InvalidRequest

DEFAULT_VCPUS = 1.0
DEFAULT_MEMORY_MIB = 2048


@dataclass(frozen=True, slots=True)
class Resources:
    vcpus: float
    memory_mib: int
    gpus: int = 0

    def describe(self) -> str:
        gpu = f", {self.gpus} GPU" if self.gpus else ""
        return f"{self.vcpus:g} vCPU, {self.memory_mib} MiB{gpu}"


def _number(value: str, field: str, kind: type) -> float:
    try:
        number = kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise InvalidRequest(f"{field} {value!r} is not {what}") from None
    if number < 0 or number != number:
        raise InvalidRequest(f"{field} {value!r} must not be negative")
    return number


def requested(container: dict[str, Any] | None, field: str) -> dict[str, float]:
    """The explicitly requested amounts (keys ``vcpus``, ``memory_mib``, ``gpus``), validated."""
    container = container or {}
    out: dict[str, float] = {}
    if container.get("vcpus") is not None:
        out["vcpus"] = float(container["vcpus"])
    if container.get("memory") is not None:
        out["memory_mib"] = container["memory"]
    seen = set()
    for i, req in enumerate(container.get("resource_requirements") or []):
        where = f"{field}.resourceRequirements[{i}]"
        kind = req["type"]
        if kind in seen:
            raise InvalidRequest(f"{where}: {kind} is given more than once")
        seen.add(kind)
        if kind == "VCPU":
            out["vcpus"] = _number(req["value"], f"{where}.value", float)
        elif kind == "MEMORY":
            out["memory_mib"] = _number(req["value"], f"{where}.value", int)
        elif kind == "GPU":
            out["gpus"] = _number(req["value"], f"{where}.value", int)
    if "vcpus" in out and out["vcpus"] <= 0:
        raise InvalidRequest(f"{field}: the vCPU request must be greater than 0")
    if "memory_mib" in out and out["memory_mib"] < 4:
        raise InvalidRequest(f"{field}: the memory request must be at least 4 MiB")
    return out


def resolve(*layers: dict[str, float]) -> Resources:
    """Merge requests, later layers (overrides) winning, then apply the defaults."""
    merged: dict[str, float] = {}
    for layer in layers:
        merged.update(layer)
    return Resources(
        vcpus=float(merged.get("vcpus", DEFAULT_VCPUS)),
        memory_mib=int(merged.get("memory_mib", DEFAULT_MEMORY_MIB)),
        gpus=int(merged.get("gpus", 0)),
    )
