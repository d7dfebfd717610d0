"""The same work without a scheduler: xargs, GNU parallel, and Python's own launch rate."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path


def shell_rate(pipeline: str, n: int, timeout: float = 1800) -> dict[str, float | str]:
    """Run ``pipeline`` (a shell pipeline doing n launches); returns seconds and launches/s."""
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", pipeline], check=True, timeout=timeout, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    return {"command": pipeline, "n": n, "seconds": seconds, "per_second": n / seconds}


def xargs(n: int, procs: int, command: str = "true", out: Path | None = None) -> dict:
    """``seq n | xargs -P<procs> -n1 <command>`` (command gets the number as its argument)."""
    redirect = f" > {out}" if out else " > /dev/null"
    return shell_rate(f"seq 0 {n - 1} | xargs -P{procs} -n1 {command}{redirect}", n)


def parallel(n: int, jobs: int, command: str = "true", out: Path | None = None) -> dict | None:
    if not shutil.which("parallel"):
        return None
    redirect = f" > {out}" if out else " > /dev/null"
    # --will-cite silences the citation notice; GNU parallel runs each command through sh
    return shell_rate(f"seq 0 {n - 1} | parallel --will-cite -j{jobs} {command}{redirect}", n)


def spawn_rate(n: int, concurrency: int, method: str) -> dict[str, float | str]:
    """Launch ``true`` n times, ``concurrency`` at a time (one thread each), with
    ``os.posix_spawn`` + ``waitpid`` or ``subprocess.Popen(...).wait()``."""
    true = shutil.which("true") or "/bin/true"
    env = dict(os.environ)
    counter = iter(range(n))
    lock = threading.Lock()

    def take() -> bool:
        with lock:
            return next(counter, None) is not None

    def worker_spawn() -> None:
        while take():
            pid = os.posix_spawn(true, [true], env)
            os.waitpid(pid, 0)

    def worker_popen() -> None:
        while take():
            subprocess.Popen([true]).wait()

    target = {"posix_spawn": worker_spawn, "popen": worker_popen}[method]
    threads = [threading.Thread(target=target) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    return {
        "command": f"{method} true ×{n}, {concurrency} threads",
        "n": n,
        "seconds": seconds,
        "per_second": n / seconds,
    }
