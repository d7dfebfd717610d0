"""The ``local`` provider, server side: capacity of this host, and the connection to the agent
that runs the jobs (started on demand, left running when the server stops while jobs run)."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from batchyard.auth.isolation import JobIdentity
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
from batchyard.providers.exits import exited
from batchyard.providers.local import wire
from batchyard.providers.local.link import AgentLink

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


def group_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def account(uid: int, gid: int) -> dict[str, Any]:
    """An account's identity as attempts record it (``ran_as``, see providers/base.py)."""
    try:
        name: str | None = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = None
    return {"uid": uid, "gid": gid, "group": group_name(gid), "user": name}


def host_capacity() -> Capacity:
    """This host's CPUs (those this process may use) and memory."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return Capacity(vcpus=float(cpus), memory_mib=psutil.virtual_memory().total // 2**20)


class LocalProvider(Provider):
    name = "local"
    follows = True

    def __init__(
        self,
        home: Path,
        log_limit_bytes: int = 1 << 40,
        enforce_limits: bool = True,
        run_as: str | None = None,
        identity: JobIdentity | None = None,
    ) -> None:
        self.home = home
        # who jobs run as (docs/security.md): one user, or a uid of its own per attempt
        self.identity = identity
        if identity is not None:
            run_as = identity.run_as
        self.user = resolve_user(run_as) if run_as else None
        if self.user is not None:  # its groups, to find a command the job may execute
            self.user["gids"] = os.getgrouplist(self.user["name"], self.user["gid"])
        # who each attempt runs as, recorded with it (the per-attempt uids have no name)
        self.account = (
            account(self.user["uid"], self.user["gid"])
            if self.user is not None
            else account(os.geteuid(), os.getegid())
        )
        self.host = host_capacity()
        self.log_limit_bytes = log_limit_bytes
        self.enforce_limits = enforce_limits
        self.events: Events | None = None
        self.links: dict[str, AgentLink] = {}  # by socket path: ours, and adopted ones
        self.owner: dict[int, AgentLink] = {}  # attempt id -> the agent running it
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

    # ---- the agents ---------------------------------------------------------------------

    @property
    def socket(self) -> Path:
        return self.home / wire.SOCKET

    async def start(self, events: Events) -> None:
        self.events = events
        self._closing = False
        self.links.clear()
        self.owner.clear()
        await self._own_link()

    async def _own_link(self) -> AgentLink:
        """The link to this server's agent, starting the agent if none answers."""
        link = self.links.get(str(self.socket))
        if link is not None:
            return link
        assert self.events is not None
        self.home.mkdir(parents=True, exist_ok=True)
        link = AgentLink(self.socket, self.events, self._link_closed)
        deadline = time.monotonic() + 30
        spawned = False
        while True:
            try:
                await link.connect()
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
        self.links[str(self.socket)] = link
        return link

    def _link_closed(self, link: AgentLink) -> None:
        self.links.pop(str(link.path), None)
        for attempt in [a for a, p in self.owner.items() if p is link]:
            del self.owner[attempt]
        if link.path == self.socket and not self._closing:
            # our own agent died: start a new one for the jobs to come
            asyncio.get_running_loop().create_task(self._own_link())

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

    # ---- the provider interface -------------------------------------------------------------

    def claim_ref(self, compute_environment: str) -> dict[str, Any]:
        return {"agent": str(self.socket)}

    async def launch(self, specs: list[LaunchSpec]) -> None:
        link = await self._own_link()
        items = []
        for s in specs:
            user = self._user_of(s.attempt_id)
            items.append(
                {
                    "id": s.attempt_id,
                    "job": s.job_id,
                    "argv": s.argv,
                    "env": s.env,
                    "log": s.log_path,
                    "log_limit": self.log_limit_bytes,
                    "memory_mib": s.memory_mib,
                    "user": user,
                    "ran_as": self._ran_as(user),
                    **self._isolation(),
                    "after": s.after,
                }
            )
        for s in specs:
            link.active.setdefault(s.attempt_id, None)
            self.owner[s.attempt_id] = link
        link.send({"op": "launch", "items": items})
        await link.drain()

    def _user_of(self, attempt_id: int) -> dict[str, Any] | None:
        ident = self.identity
        if self.user is None or ident is None or not ident.isolate:
            return self.user
        uid = ident.uid_base + attempt_id % ident.uid_count
        return {
            "uid": uid,
            "gid": self.user["gid"],
            "name": f"batchyard-job-{uid}",
            "home": None,  # the attempt's working directory
            "groups": "clear",
            "gids": [],
        }

    def _ran_as(self, user: dict[str, Any] | None) -> dict[str, Any]:
        """Who an attempt of ``user`` (what :meth:`_user_of` gave) runs as, as recorded: the
        account itself, or a per-attempt uid in the account's group (such uids have no name)."""
        if user is None or user is self.user:
            return self.account
        return {"uid": user["uid"], "gid": user["gid"], "group": self.account["group"]}

    def _isolation(self) -> dict[str, Any]:
        ident = self.identity
        if ident is None:
            return {}
        out: dict[str, Any] = {"umask": ident.umask}
        if ident.work_root is not None:
            out["work_root"] = str(ident.work_root)
        return out

    async def terminate(self, attempt_ids: list[int], grace_seconds: float) -> None:
        by_link: dict[AgentLink, list[int]] = {}
        for a in attempt_ids:
            link = self.owner.get(a)
            if link is not None:
                by_link.setdefault(link, []).append(a)
        for link, ids in by_link.items():
            with contextlib.suppress(ConnectionError):
                link.send({"op": "kill", "items": [{"id": a, "grace": grace_seconds} for a in ids]})
                await link.drain()

    def acknowledge(self, attempt_ids: list[int]) -> None:
        by_link: dict[AgentLink, list[int]] = {}
        for a in attempt_ids:
            link = self.owner.pop(a, None) or self.links.get(str(self.socket))
            if link is not None:
                link.active.pop(a, None)
                by_link.setdefault(link, []).append(a)
        for link, ids in by_link.items():
            with contextlib.suppress(ConnectionError):
                link.send({"op": "ack", "ids": ids})
            if link.path != self.socket and not link.active:
                asyncio.get_running_loop().create_task(link.close())
                self.links.pop(str(link.path), None)

    async def reconcile(self, active: list[ActiveAttempt]) -> None:
        """Ask each agent the attempts name (ours, or one a previous leader used) what runs
        and what ended; report it. Attempts of an agent that is gone are lost."""
        assert self.events is not None
        by_agent: dict[str, list[ActiveAttempt]] = {}
        for a in active:
            agent = (a.ref or {}).get("agent") or str(self.socket)
            by_agent.setdefault(agent, []).append(a)
        by_agent.setdefault(str(self.socket), [])
        started: list[Started] = []
        ended: list[Exited] = []
        for agent, attempts in by_agent.items():
            link = await self._link_to(Path(agent))
            if link is None:
                ended += [
                    Exited(
                        a.attempt_id,
                        now_ms(),
                        None,
                        reason="the agent that ran the job "
                        f"({agent}) is gone; its exit status is unknown",
                    )
                    for a in attempts
                ]
                continue
            assert link.state is not None
            state = await asyncio.wait_for(link.state, 30)
            running = {r["id"]: r for r in state["running"]}
            finished = {e["id"]: e for e in state["exited"]}
            queued = {q["id"] for q in state.get("queued", ())}  # will start
            for r in running.values():
                link.active[r["id"]] = r["pid"]
            for a in attempts:
                self.owner[a.attempt_id] = link
                if a.attempt_id in finished or a.attempt_id in queued:
                    continue  # reported below, or later
                if a.attempt_id in running:
                    if a.status == "STARTING":
                        r = running[a.attempt_id]
                        started.append(Started(a.attempt_id, r["at"], link.started_ref(r)))
                    continue
                if a.status == "STARTING":
                    ended.append(Exited(a.attempt_id, now_ms(), None, never_started=True))
                else:
                    ended.append(
                        Exited(
                            a.attempt_id,
                            now_ms(),
                            None,
                            reason="the job's process is gone and its exit status was lost "
                            "(its agent was restarted or the host rebooted)",
                        )
                    )
            known = {a.attempt_id for a in attempts}
            stray = [i for i in running if i not in known]
            if stray and link.path == self.socket:
                # started for attempts the store no longer has active: stop them
                link.send({"op": "kill", "items": [{"id": i, "grace": 0} for i in stray]})
            for e in finished.values():
                self.owner[e["id"]] = link
            ended += [exited(e) for e in finished.values()]
            await link.drain()
        if started:
            self.events.started(started)
        if ended:
            self.events.exited(ended)

    async def _link_to(self, path: Path) -> AgentLink | None:
        if path == self.socket:
            return await self._own_link()
        link = self.links.get(str(path))
        if link is not None:
            return link
        assert self.events is not None
        link = AgentLink(path, self.events, self._link_closed)
        try:
            await link.connect()
        except OSError:
            return None
        self.links[str(path)] = link
        log.info("adopted the jobs of the agent at %s", path)
        return link

    async def close(self) -> None:
        self._closing = True
        for link in list(self.links.values()):
            await link.close()
        self.links.clear()


def startup_note(identity: JobIdentity, path: str) -> str | None:
    """The start-up line of a root server whose jobs do not run as root: who they run as
    and what that means for them (``path``: the PATH jobs inherit). None otherwise."""
    if os.geteuid() != 0 or identity.run_as is None:
        return None
    from batchyard.providers.local.agent import executable_for

    user = resolve_user(identity.run_as)
    group = group_name(user["gid"]) or str(user["gid"])
    if identity.isolate:
        who = f"unprivileged uids of their own ({identity.uid_base} + n, no home), in group {group}"
        job = {"uid": identity.uid_base, "gid": user["gid"], "gids": []}
    else:
        who = f"user {user['name']} (uid {user['uid']}), group {group}"
        job = {**user, "gids": os.getgrouplist(user["name"], user["gid"])}
    python = shutil.which("python3", path=path)
    found = executable_for("python3", path, job, who)
    if python is None or found == python:
        interpreter = ""
    elif os.path.isabs(found):
        interpreter = f"; `python3` is {found} for them, not {python}"
    else:
        interpreter = f"; `python3` ({python}) is not theirs to run"
    return (
        f"jobs run as {who}, not as root: they cannot read root's home (a virtualenv or pyenv "
        f"interpreter under it is not used{interpreter}) and write only where group {group} "
        f"may (chgrp {group} DIR && chmod g+rwX DIR); the run_as setting changes who they run "
        "as (docs/security.md, Jobs)"
    )
