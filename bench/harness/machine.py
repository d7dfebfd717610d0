"""What the numbers were measured on: hardware, OS, versions, commit, load."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = [
    "batchyard",
    "boto3",
    "botocore",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "psycopg",
    "orjson",
    "psutil",
]


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=cwd)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float:
    try:
        m = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        return round(int(m.group(1)) / 2**20, 1) if m else 0.0
    except OSError:
        return 0.0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def tool_versions() -> dict[str, str]:
    def first(cmd: list[str]) -> str:
        if not shutil.which(cmd[0]):
            return "not installed"
        return (_run(cmd).splitlines() or [""])[0]

    return {
        "xargs": first(["xargs", "--version"]),
        "parallel": first(["parallel", "--version"]),
        "wrk": first(["wrk", "-v"]).split(" [")[0].split(" Copyright")[0],
        "slurm": first(["slurmctld", "-V"]),
        "sqlite": sqlite3.sqlite_version,
    }


def info(repo: Path) -> dict[str, Any]:
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    commit = _run(["git", "rev-parse", "HEAD"], repo)
    dirty = bool(_run(["git", "status", "--porcelain", "--untracked-files=no"], repo))
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _mem_gib(),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "packages": versions,
        "tools": tool_versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "load_average_at_start": list(os.getloadavg()),
    }
