"""How much of the machine other work took while we measured.

The development machines are shared, so every figure is reported with the CPU that
processes outside the benchmark used during its measurement: the machine's busy time
(/proc/stat) minus the benchmark's own (this process and the children it waited for, the
server and its agent — including the jobs they reaped —, and the PostgreSQL cluster). On a
quiet machine ``others_cores`` is close to 0; 1.0 means another process took a whole core.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import psutil

_HZ = os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    v = [int(x) for x in fields]
    # user nice system idle iowait irq softirq steal (guest time is inside user already)
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / _HZ


def _process_seconds(pid: int) -> float:
    """CPU of a process and of the children it reaped."""
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system + t.children_user + t.children_system
    except psutil.Error:
        return 0.0


def _tree_seconds(pid: int) -> dict[int, float]:
    out: dict[int, float] = {}
    with contextlib.suppress(psutil.Error):
        p = psutil.Process(pid)
        for q in [p, *p.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = q.cpu_times()
                out[q.pid] = t.user + t.system
    return out


class CpuMeter:
    def __init__(self, pids: list[int | None], trees: list[int | None] = ()) -> None:
        self.pids = [p for p in pids if p]
        self.trees = [p for p in trees if p]

    def _ours(self) -> tuple[float, dict[int, float]]:
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        own += sum(_process_seconds(p) for p in self.pids)
        tree: dict[int, float] = {}
        for root in self.trees:
            tree.update(_tree_seconds(root))
        return own, tree

    def __enter__(self) -> CpuMeter:
        self.t0 = time.monotonic()
        self.busy0 = _machine_busy_seconds()
        self.own0, self.tree0 = self._ours()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.t0
        busy = _machine_busy_seconds() - self.busy0
        own1, tree1 = self._ours()
        trees = sum(v - self.tree0.get(p, 0.0) for p, v in tree1.items())
        ours = own1 - self.own0 + trees
        self.result = {
            "wall_seconds": wall,
            "machine_busy_seconds": busy,
            # the tracked process trees (the PostgreSQL cluster): the database's own CPU
            "tree_seconds": trees,
            "machine_busy_cores": busy / wall if wall else 0.0,
            "benchmark_cores": ours / wall if wall else 0.0,
            "others_cores": max(0.0, (busy - ours) / wall) if wall else 0.0,
        }
