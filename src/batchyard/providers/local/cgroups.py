"""Memory limits for local jobs through the host's cgroups, where the host allows it.

Detected, not assumed: a pure cgroup v2 host with the memory controller delegated to us
(``memory.max``, ``memory.events`` oom_kill, ``cgroup.kill``), a v1 or hybrid host
(``memory.limit_in_bytes``, ``memory.oom_control``), or neither (no limit; the request is
still accounted for placement). The agent puts a job into its cgroup by moving *itself* in
just before ``posix_spawn`` and back out right after: the child is born inside, with no
wrapper process and no ``preexec_fn``.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
GROUP = "batchyard"


class JobCgroup:
    def __init__(self, cgroups: Cgroups, path: Path) -> None:
        self.cgroups = cgroups
        self.path = path

    def enter(self) -> None:
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def leave(self) -> None:
        (self.cgroups.home / "cgroup.procs").write_text(str(os.getpid()))

    def oom_killed(self) -> bool:
        name = "memory.events" if self.cgroups.version == 2 else "memory.oom_control"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def usage(self) -> dict[str, float]:
        name = "memory.peak" if self.cgroups.version == 2 else "memory.max_usage_in_bytes"
        try:
            return {"cgroup_peak_memory_mib": int((self.path / name).read_text()) / 2**20}
        except (OSError, ValueError):
            return {}

    def kill(self) -> None:
        """SIGKILL every process in the job's cgroup, including any that left its session
        (setsid, double fork): what a container's end would take with it."""
        if self.cgroups.version == 2:
            with contextlib.suppress(OSError):
                (self.path / "cgroup.kill").write_text("1")
                return
        for _ in range(20):  # v1 has no cgroup.kill: repeat while processes keep forking
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Remove the cgroup; one whose killed processes are still exiting is retried the
        next time any job's cgroup is removed."""
        self.cgroups.leftover.append(self.path)
        still = []
        for path in self.cgroups.leftover:
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                still.append(path)
        self.cgroups.leftover = still[-1000:]


class Cgroups:
    """Where job cgroups are made, and how (version 1 or 2)."""

    def __init__(self, version: int, parent: Path, home: Path) -> None:
        self.version = version
        self.parent = parent  # job cgroups are created below this
        self.home = home  # the agent's own cgroup, to return to after a spawn
        self.leftover: list[Path] = []

    def __str__(self) -> str:
        return f"cgroup v{self.version} memory at {self.parent}"

    def create(self, name: str, memory_mib: int) -> JobCgroup:
        path = self.parent / name
        path.mkdir(exist_ok=True)
        limit = str(memory_mib * 2**20)
        if self.version == 2:
            (path / "memory.max").write_text(limit)
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
        else:
            (path / "memory.limit_in_bytes").write_text(limit)
        return JobCgroup(self, path)


def _own_path(controller: str) -> str | None:
    """This process's cgroup path for ``controller`` ("" = the v2 unified hierarchy)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path
    except OSError:
        pass
    return None


def detect() -> Cgroups | None:
    """The memory cgroup set-up this host lets us use, or None."""
    try:
        if (ROOT / "cgroup.controllers").exists():  # pure v2
            own = _own_path("")
            if own is None:
                return None
            home = ROOT / own.lstrip("/")
            parent = home.parent / GROUP if home != ROOT else ROOT / GROUP
            parent.mkdir(exist_ok=True)
            if "memory" not in (parent.parent / "cgroup.subtree_control").read_text().split():
                (parent.parent / "cgroup.subtree_control").write_text("+memory")
            (parent / "cgroup.subtree_control").write_text("+memory")
            return Cgroups(2, parent, home)
        memory = ROOT / "memory"
        if (memory / "memory.limit_in_bytes").exists():  # v1 or hybrid
            own = _own_path("memory")
            home = memory / (own or "/").lstrip("/")
            parent = memory / GROUP
            parent.mkdir(exist_ok=True)
            probe = parent / f"probe-{os.getpid()}"
            probe.mkdir(exist_ok=True)
            probe.rmdir()
            return Cgroups(1, parent, home)
    except OSError:
        return None
    return None
