"""What every workload gets: the run's mode and sizes, fresh servers, databases, a log."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.meter import CpuMeter
from harness.postgres import PostgresCluster
from harness.server import BenchServer

MODES = ("full", "quick", "tiny")


@dataclass
class Context:
    mode: str  # full | quick | tiny (tiny: the smoke test's sizes)
    root: Path  # scratch dir of this run (servers' data dirs, Slurm, files)
    stores: list[str]
    keep: bool = False
    problems: list[str] = field(default_factory=list)
    _pg: PostgresCluster | None = None
    _t0: float = field(default_factory=time.monotonic)

    @property
    def quick(self) -> bool:
        return self.mode != "full"

    def size(self, full: Any, quick: Any, tiny: Any | None = None) -> Any:
        if self.mode == "full":
            return full
        if self.mode == "tiny" and tiny is not None:
            return tiny
        return quick

    @property
    def cores(self) -> int:
        return os.cpu_count() or 1

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self._t0:7.1f}s] {message}", file=sys.stderr, flush=True)

    def problem(self, message: str) -> None:
        """Something wrong with the server seen while measuring (reported, never fatal)."""
        self.log(f"PROBLEM: {message}")
        self.problems.append(message)

    def pg(self) -> PostgresCluster:
        if self._pg is None:
            self.log("starting a throwaway PostgreSQL cluster")
            self._pg = PostgresCluster()  # in /tmp: the postgres user cannot enter root
        return self._pg

    def database_url(self, store: str) -> str | None:
        if store == "sqlite":
            return None
        if store == "postgresql":
            return self.pg().create_database()
        raise ValueError(f"unknown store {store!r}")

    def server(self, store: str, **settings: Any) -> BenchServer:
        """A fresh server (own data dir, own database) — use it as a context manager."""
        server = BenchServer(self.root, self.database_url(store), keep=self.keep, **settings)
        return server

    def meter(self, server: BenchServer | None = None) -> CpuMeter:
        """Measures the CPU other work took meanwhile (see harness/meter.py)."""
        pids = [server.proc.pid if server.proc else None, server.agent_pid()] if server else []
        trees = [self._pg.postmaster_pid()] if self._pg else []
        return CpuMeter(pids, trees)

    def check_server(self, server: BenchServer, what: str) -> None:
        for line in server.errors_in_log():
            self.problem(f"{what} ({server.store}): server log: {line[:300]}")

    def close(self) -> None:
        if self._pg is not None:
            self._pg.stop()
            self._pg = None
