"""Memory limits for local jobs through the host's cgroups, where the host allows it.

Detected, not assumed: a pure cgroup v2 host with the memory controller delegated to us
(``memory.max``, ``memory.events`` oom_kill, ``cgroup.kill``), a v1 or hybrid host
(``memory.limit_in_bytes``, ``memory.oom_control``), or neither (no limit; the request is
still accounted for placement). The agent puts a job into its cgroup by moving *itself* in
just before ``posix_spawn`` and back out right after: the child is born inside, with no
wrapper process and no ``preexec_fn``. On v1 only the calling thread moves (``tasks``):
moving a whole process (``cgroup.procs``) takes a kernel lock whose RCU synchronization
costs milliseconds per move on an otherwise idle host.

On v1 a job's cgroups are reused: making and removing a memory and a cpuacct cgroup costs
about 0.15 ms of kernel time per job, resetting an empty one for the next job a fraction of
that. Its counters start afresh (peak memory, CPU time) and an OOM kill is told from the
count it had when the job started; page cache a finished job left charged to it is
reclaimed first, unless it is small (``LEFTOVER_BYTES``). v2 cannot reset ``memory.peak``,
so there each job gets a new cgroup.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
GROUP = "batchyard"
MAX_SPARE = 64  # empty cgroups kept for reuse
# Page cache a finished job leaves charged to its cgroup is reclaimed before reuse when it is
# more than this (reclaiming costs a few hundred microseconds even for little): the next
# job's peak memory may count up to this much of it.
LEFTOVER_BYTES = 4 << 20


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    """A small cgroup file, without a Python file object (this runs for every job)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def _move_here(cgroup: Path, version: int) -> None:
    """Move the calling thread (v1) or this process (v2) into ``cgroup``."""
    if version == 1:
        _write(cgroup / "tasks", b"0")
    else:
        _write(cgroup / "cgroup.procs", str(os.getpid()).encode())


class JobCgroup:
    def __init__(self, cgroups: Cgroups, path: Path, cpu_path: Path | None = None) -> None:
        self.cgroups = cgroups
        self.path = path
        self.cpu_path = cpu_path  # v1: the job's cpuacct cgroup (CPU time of the whole tree)
        self.limit = b""  # the memory limit written last
        self.oom_base = 0  # OOM kills counted before this job (a reused cgroup's)

    def enter(self) -> None:
        _move_here(self.path, self.cgroups.version)
        if self.cpu_path is not None:
            try:
                _move_here(self.cpu_path, 1)
            except OSError:
                self.cpu_path = None  # no whole-tree CPU figure then; rusage still counts

    def leave(self) -> None:
        _move_here(self.cgroups.home, self.cgroups.version)
        if self.cpu_path is not None and self.cgroups.cpu_home is not None:
            with contextlib.suppress(OSError):
                _move_here(self.cgroups.cpu_home, 1)

    def oom_kills(self) -> int:
        name = "memory.events" if self.cgroups.version == 2 else "memory.oom_control"
        try:
            for line in _read(self.path / name).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def oom_killed(self) -> bool:
        return self.oom_kills() > self.oom_base

    def set_limit(self, memory_mib: int) -> None:
        limit = b"%d" % (memory_mib * 2**20)
        if limit == self.limit:
            return
        if self.cgroups.version == 2:
            _write(self.path / "memory.max", limit)
            with contextlib.suppress(OSError):
                _write(self.path / "memory.swap.max", b"0")
        else:
            _write(self.path / "memory.limit_in_bytes", limit)
        self.limit = limit

    def reset(self) -> bool:
        """Make an empty v1 cgroup ready for another job: False if it is not empty."""
        try:
            if _read(self.path / "cgroup.procs").strip():
                return False
            if int(_read(self.path / "memory.usage_in_bytes")) > LEFTOVER_BYTES:
                with contextlib.suppress(OSError):  # page cache the last job left charged
                    _write(self.path / "memory.force_empty", b"0")
            _write(self.path / "memory.max_usage_in_bytes", b"0")
            if self.cpu_path is not None:
                _write(self.cpu_path / "cpuacct.usage", b"0")
        except (OSError, ValueError):
            return False
        self.oom_base = self.oom_kills()
        return True

    def usage(self) -> dict[str, float]:
        """Peak memory and CPU time of everything that ran in the cgroup (the whole tree)."""
        out: dict[str, float] = {}
        name = "memory.peak" if self.cgroups.version == 2 else "memory.max_usage_in_bytes"
        with contextlib.suppress(OSError, ValueError):
            peak = int(_read(self.path / name)) / 2**20
            out["cgroup_peak_memory_mib"] = round(peak, 3)
        with contextlib.suppress(OSError, ValueError):
            if self.cgroups.version == 2:  # cpu.stat is there without the cpu controller
                for line in _read(self.path / "cpu.stat").splitlines():
                    key, _, value = line.partition(" ")
                    if key == "usage_usec":
                        out["cgroup_cpu_seconds"] = round(int(value) / 1e6, 6)
            elif self.cpu_path is not None:
                nanos = int(_read(self.cpu_path / "cpuacct.usage"))
                out["cgroup_cpu_seconds"] = round(nanos / 1e9, 6)
        return out

    def kill(self) -> None:
        """SIGKILL every process in the job's cgroup, including any that left its session
        (setsid, double fork): what a container's end would take with it."""
        if self.cgroups.version == 2:
            with contextlib.suppress(OSError):
                (self.path / "cgroup.kill").write_text("1")
                return
        for _ in range(20):  # v1 has no cgroup.kill: repeat while processes keep forking
            try:
                pids = [int(p) for p in _read(self.path / "cgroup.procs").split()]
            except (OSError, ValueError):
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def release(self) -> None:
        """The job is over: keep the cgroup for another job if it can be reused, else remove
        it. Thread-safe."""
        if self.cgroups.version == 1 and self.reset():
            with self.cgroups.lock:
                if len(self.cgroups.spare) < MAX_SPARE:
                    self.cgroups.spare.append(self)
                    return
        self.remove()

    def remove(self) -> None:
        """Remove the cgroup; one whose killed processes are still exiting is retried the
        next time any job's cgroup is removed. Thread-safe."""
        with self.cgroups.lock:
            self.cgroups.leftover.append(self.path)
            if self.cpu_path is not None:
                self.cgroups.leftover.append(self.cpu_path)
            still = []
            for path in self.cgroups.leftover:
                try:
                    os.rmdir(path)
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
        self.spare: list[JobCgroup] = []  # empty ones, ready for another job (v1)
        self.names = itertools.count()
        self.lock = threading.Lock()
        # v1: the cpuacct hierarchy, for the CPU time of a job's whole process tree
        self.cpu_parent: Path | None = None
        self.cpu_home: Path | None = None

    def __str__(self) -> str:
        return f"cgroup v{self.version} memory at {self.parent}"

    def take(self, memory_mib: int) -> JobCgroup:
        """A cgroup for one job, limited to ``memory_mib``: a spare one, or a new one."""
        with self.lock:
            cgroup = self.spare.pop() if self.spare else None
        if cgroup is None:
            # one host may run several agents (several data dirs): names must not clash
            cgroup = self._create(f"{os.getpid()}-{next(self.names)}")
        try:
            cgroup.set_limit(memory_mib)
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def close(self) -> None:
        """Remove the spare cgroups (the agent exits)."""
        with self.lock:
            spare, self.spare = self.spare, []
        for cgroup in spare:
            cgroup.remove()

    def _create(self, name: str) -> JobCgroup:
        path = self.parent / name
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        cpu_path = None
        if self.cpu_parent is not None:
            try:
                os.mkdir(self.cpu_parent / name)
                cpu_path = self.cpu_parent / name
            except FileExistsError:
                cpu_path = self.cpu_parent / name
            except OSError:
                pass
        return JobCgroup(self, path, cpu_path)


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
            cgroups = Cgroups(1, parent, home)
            _cpuacct(cgroups)
            return cgroups
    except OSError:
        return None
    return None


def _cpuacct(cgroups: Cgroups) -> None:
    """v1: use the cpuacct hierarchy too, where there is one we may write to."""
    cpuacct = ROOT / "cpuacct"
    try:
        if not (cpuacct / "cpuacct.usage").exists():
            return
        own = _own_path("cpuacct")
        parent = cpuacct / GROUP
        parent.mkdir(exist_ok=True)
        probe = parent / f"probe-{os.getpid()}"
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError:
        return
    cgroups.cpu_parent = parent
    cgroups.cpu_home = cpuacct / (own or "/").lstrip("/")
