"""The ``local`` provider: jobs run as processes on this host."""

from __future__ import annotations

import os
import socket

import psutil

from batchyard.domain.resources import ComputeEnvironment
from batchyard.providers.base import Capacity, Check, Provider


def host_capacity() -> Capacity:
    """This host's CPUs (those this process may use) and memory."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return Capacity(vcpus=float(cpus), memory_mib=psutil.virtual_memory().total // 2**20)


class LocalProvider(Provider):
    name = "local"

    def __init__(self) -> None:
        self.host = host_capacity()

    def capacity(self, ce: ComputeEnvironment) -> Capacity:
        declared = ce.max_vcpus
        vcpus = self.host.vcpus if declared is None else min(float(declared), self.host.vcpus)
        return Capacity(vcpus=vcpus, memory_mib=self.host.memory_mib, gpus=0)

    async def check(self, ce: ComputeEnvironment) -> Check:
        cap = self.capacity(ce)
        declared = ce.max_vcpus
        if declared is None:
            bound = f"all {self.host.vcpus:g} CPUs of this host"
        elif declared > self.host.vcpus:
            bound = f"maxvCpus {declared} capped at this host's {self.host.vcpus:g} CPUs"
        else:
            bound = f"maxvCpus {declared}; this host has {self.host.vcpus:g} CPUs"
        where = socket.gethostname()
        if cap.vcpus <= 0:
            return Check(
                True,
                f"ComputeEnvironment Healthy, but with no capacity: {bound}; raise maxvCpus "
                "for jobs to run",
                cap,
            )
        return Check(
            True,
            f"ComputeEnvironment Healthy: local provider on {where}, usable capacity "
            f"{cap.describe()} ({bound})",
            cap,
        )
