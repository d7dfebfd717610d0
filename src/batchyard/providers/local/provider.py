"""The ``local`` provider, server side: capacity of this host, and the connection to the agent
that runs the jobs (started on demand, left running when the server stops while jobs run)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from batchyard.config import ConfigError
from batchyard.domain.clock import now_ms
from batchyard.domain.resources import ComputeEnvironment
from batchyard.providers.base import (
    ActiveAttempt,
    Capacity,
    Check,
    Events,
    Exited,
    LaunchSpec,
    Provider,
    Started,
)
from batchyard.providers.local import wire

log = logging.getLogger(__name__)
POOL = "local"


def resolve_user(name: str) -> dict[str, Any]:
    """The account jobs run as: uid, gid and home, looked up once at start-up."""
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise ConfigError(
            f"run_as: there is no user {name!r} on this host; create it (e.g. useradd "
            "--system batchyard-jobs) or change run_as"
        ) from None
    return {"uid": entry.pw_uid, "gid": entry.pw_gid, "name": entry.pw_name, "home": entry.pw_dir}


def host_capacity() -> Capacity:
    """This host's CPUs (those this process may use) and memory."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return Capacity(vcpus=float(cpus), memory_mib=psutil.virtual_memory().total // 2**20)


class LocalProvider(Provider):
    name = "local"

    def __init__(
        self,
        home: Path,
        log_limit_bytes: int = 1 << 40,
        enforce_limits: bool = True,
        run_as: str | None = None,
    ) -> None:
        self.home = home
        self.user = resolve_user(run_as) if run_as else None
        self.host = host_capacity()
        self.log_limit_bytes = log_limit_bytes
        self.enforce_limits = enforce_limits
        self.events: Events | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._state: asyncio.Future[dict[str, Any]] | None = None
        self._active: set[int] = set()  # attempts handed to the current agent
        self._closing = False

    # ---- capacity ---------------------------------------------------------------------

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
        if cap.vcpus <= 0:
            reason = (
                f"ComputeEnvironment Healthy, but with no capacity: {bound}; raise maxvCpus "
                "for jobs to run"
            )
        else:
            reason = (
                f"ComputeEnvironment Healthy: local provider on {socket.gethostname()}, usable "
                f"capacity {cap.describe()} ({bound})"
            )
        return Check(True, reason, cap, pool=POOL, pool_capacity=self.host)

    # ---- the agent ----------------------------------------------------------------------

    async def start(self, events: Events) -> None:
        self.events = events
        await self._connect()

    async def _connect(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        path = str(self.home / wire.SOCKET)
        deadline = time.monotonic() + 30
        spawned = False
        while True:
            try:
                self._reader, self._writer = await asyncio.open_unix_connection(path, limit=1 << 26)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if not spawned:
                    self._spawn_agent()
                    spawned = True
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the local agent did not start; see {self.home / wire.LOG_FILE}"
                    ) from None
                await asyncio.sleep(0.02)
        self._state = asyncio.get_running_loop().create_future()
        self._read_task = asyncio.create_task(self._read_loop(), name="batchyard-agent-reader")
        self._send({"op": "hello", "version": wire.VERSION})

    def _spawn_agent(self) -> None:
        cmd = [sys.executable, "-m", "batchyard.providers.local.agent", "--dir", str(self.home)]
        if not self.enforce_limits:
            cmd.append("--no-limits")
        with open(self.home / wire.LOG_FILE, "ab") as out:
            subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                close_fds=True,
                cwd=self.home,
            )
        log.info("started the local agent for %s", self.home)

    def _send(self, message: dict[str, Any]) -> None:
        if self._writer is None or self._writer.is_closing():
            raise ConnectionError("the local agent is not connected")
        self._writer.write(wire.encode(message))

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                self._dispatch(wire.decode(line))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("local agent connection failed")
        if not self._closing:
            await self._agent_lost()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        assert self.events is not None
        op = msg.get("op")
        if op == "state":
            if self._state is not None and not self._state.done():
                self._state.set_result(msg)
        elif op == "started":
            self.events.started(
                [Started(i["id"], i["at"], {"pid": i["pid"]}) for i in msg["items"]]
            )
        elif op == "exited":
            self.events.exited([_exited(i) for i in msg["items"]])

    async def _agent_lost(self) -> None:
        """The agent died under us: its jobs' exit statuses are gone with it. Stop whatever it
        left running (a retry must not run beside a survivor) and report them lost."""
        log.error("the local agent went away; %d running attempts are lost", len(self._active))
        lost = sorted(self._active)
        self._active.clear()
        assert self.events is not None
        self.events.exited(
            [
                Exited(
                    attempt_id=a,
                    at=now_ms(),
                    exit_code=None,
                    reason="batchyard's local agent stopped while the job ran; its exit status "
                    "is unknown",
                )
                for a in lost
            ]
        )
        with contextlib.suppress(Exception):
            await self._connect()

    # ---- the provider interface -------------------------------------------------------------

    async def launch(self, specs: list[LaunchSpec]) -> None:
        items = [
            {
                "id": s.attempt_id,
                "job": s.job_id,
                "argv": s.argv,
                "env": s.env,
                "log": s.log_path,
                "log_limit": self.log_limit_bytes,
                "memory_mib": s.memory_mib,
                "user": self.user,
            }
            for s in specs
        ]
        self._active.update(s.attempt_id for s in specs)
        self._send({"op": "launch", "items": items})
        await self._drain()

    async def terminate(self, attempt_ids: list[int], grace_seconds: float) -> None:
        self._send(
            {"op": "kill", "items": [{"id": a, "grace": grace_seconds} for a in attempt_ids]}
        )
        await self._drain()

    def acknowledge(self, attempt_ids: list[int]) -> None:
        self._active.difference_update(attempt_ids)
        with contextlib.suppress(ConnectionError):
            self._send({"op": "ack", "ids": attempt_ids})

    async def reconcile(self, active: list[ActiveAttempt]) -> None:
        assert self._state is not None and self.events is not None
        state = await asyncio.wait_for(self._state, 30)
        running = {r["id"]: r for r in state["running"]}
        exited = {e["id"]: e for e in state["exited"]}
        self._active.update(running)
        started, ended = [], []
        for a in active:
            if a.attempt_id in exited:
                continue  # reported below
            if a.attempt_id in running:
                if a.status == "STARTING":
                    r = running[a.attempt_id]
                    started.append(Started(a.attempt_id, r["at"], {"pid": r["pid"]}))
                continue
            if a.status == "STARTING":
                ended.append(Exited(a.attempt_id, now_ms(), None, never_started=True))
            else:
                ended.append(
                    Exited(
                        a.attempt_id,
                        now_ms(),
                        None,
                        reason="the job's process is gone and its exit status was lost (the "
                        "local agent was restarted or the host rebooted)",
                    )
                )
        known = {a.attempt_id for a in active}
        stray = [i for i in running if i not in known]
        if stray:  # started for a job the store no longer has active: stop it
            self._send({"op": "kill", "items": [{"id": i, "grace": 0} for i in stray]})
        if started:
            self.events.started(started)
        ended += [_exited(e) for e in exited.values()]
        if ended:
            self.events.exited(ended)
        await self._drain()

    async def _drain(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    async def close(self) -> None:
        self._closing = True
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._read_task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()


def _exited(item: dict[str, Any]) -> Exited:
    return Exited(
        attempt_id=item["id"],
        at=item["at"],
        exit_code=item.get("exit_code"),
        reason=item.get("reason"),
        usage=item.get("usage"),
    )
