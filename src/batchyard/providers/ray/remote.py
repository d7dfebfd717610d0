"""What runs on the Ray cluster: one supervisor actor per compute environment, one Ray task per
attempt, and the keeper process that owns each job's process tree on its node.

This module is shipped to the cluster *by value* (cloudpickle), so the cluster needs Ray and
the same Python, not batchyard: it imports nothing but the standard library, ``ray``, and
:mod:`batchyard.providers.logframe` (the output framing the local agent uses too, itself
standard library only and shipped by value with this module).

::

    bridge (batchyard's host)          head node                    any node
    ───────────────────────── ── poll ─▶ Supervisor (detached, ──▶ run_attempt (a Ray task:
      writes log records ◀── output ──   namespaced, async)        num_cpus/memory/num_gpus)
                                            ▲   begin/output/kill_wait    │ Popen
                                            └─────────────────────────────┤
                                                                          ▼
                                                      keeper (session leader, subreaper,
                                                      dies with the task's worker) ─▶ job

- The **supervisor** owns the tasks (so they outlive the batchyard server and its Ray
  driver), keeps each attempt's state, its exit record until the server acknowledges it, and
  the output not yet written; ``poll`` is a long poll that returns as soon as there is news.
- The **task** asks the supervisor whether to begin (a terminated attempt never starts),
  starts the keeper, streams the job's output back in batches (``<epoch-ms> <line>`` records
  with byte offsets, so a repeated delivery rewrites the same bytes), waits for a kill order
  with a long poll, and returns the exit status and usage.
- The **keeper** (``python -I -S``, a few milliseconds) is the only part that must survive
  surprises: it starts the job in its own process group, is a child subreaper so nothing
  the job leaves behind escapes, kills the group and every leftover when the job's main
  process exits, and does the same if the Ray worker above it dies (``PR_SET_PDEATHSIG``):
  no orphan survives a cancelled task or a lost worker.
- A **multi-node job** (a *gang*) gets a placement group when its main node is launched: one
  bundle per node (its CPUs, memory, GPUs), STRICT_SPREAD when the cluster has distinct nodes
  for all of them, else SPREAD. Each node's task runs in its own bundle; the group is removed
  when the last node of the gang ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from ray.util.placement_group import (
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

import ray
from batchyard.providers.logframe import NO_LIMIT, LogFrame

PROTOCOL = 1
ACTOR_PREFIX = "batchyard-ce-"
READ_CHUNK = 1 << 16
FLUSH_SECONDS = 0.05  # output is gathered this long into one message to the supervisor
FLUSH_BYTES = 256 * 1024
BUFFER_LIMIT = 64 << 20  # output a supervisor holds for the server before jobs must wait
POLL_BYTES = 8 << 20  # output returned by one poll
PLACE_CHECK_SECONDS = 2.0  # while a gang's placement group waits: can it still be placed?
PG_PREFIX = "batchyard:"  # placement groups: batchyard:<namespace>:<ce>:<job>#<attempt>:<id>
MAIN_ADDRESS = "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


KEEPER = r"""
import ctypes, json, os, resource, select, signal, sys
worker, status_fd, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
# Watch the Ray worker that started us: when it dies (cancelled, crashed, node lost), the job
# dies too. Ray kills a dead worker's direct children, so we do not stay one: fork, and let
# the grandchild (no longer the worker's child) be the keeper.
watch = os.pidfd_open(worker)
if os.getppid() != worker:
    os._exit(1)
if os.fork() > 0:
    os._exit(0)
os.setsid()
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: the job's orphans come to us
os.set_inheritable(status_fd, False)
status = os.fdopen(status_fd, "w", buffering=1)
job = 0
me = str(os.getpid())

def children():
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == me:
                        found.append(int(d))
            except (OSError, IndexError):
                pass
    return found

def sweep():
    if job:
        try:
            os.killpg(job, signal.SIGKILL)
        except OSError:
            pass
    while True:
        kids = children()
        if not kids:
            return
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
                os.waitpid(k, 0)
            except OSError:
                pass

try:
    job = os.posix_spawnp(
        argv[0], argv, os.environ, setpgroup=0, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ)
    )
except OSError as e:
    # the same reasons as the local agent gives (providers/local/agent.py, executable_for)
    name, path = argv[0], os.environ.get("PATH", "")
    dirs = path.split(os.pathsep)
    if len(path) > 120 and len(dirs) > 5:  # the first two and last three directories
        path = os.pathsep.join(dirs[:2] + ["\u2026%d more\u2026" % (len(dirs) - 5)] + dirs[-3:])
    if "/" in name and os.path.isdir(name):
        why = "%r is a directory, not a command" % name
    elif "/" in name and isinstance(e, FileNotFoundError):
        why = "%r does not exist" % name
    elif isinstance(e, FileNotFoundError):
        where = "PATH (%s)" % path if path else "PATH, which is empty"
        why = "command %r was not found on %s" % (name, where)
    elif "/" in name and os.path.isfile(name) and not os.stat(name).st_mode & 0o111:
        why = "%r is not executable (chmod +x %s)" % (name, name)
    else:
        why = "command %r cannot be started: %s" % (name, e.strerror)
    status.write(json.dumps({"error": "CannotStartContainerError: " + why}) + "\n")
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 1)
os.dup2(null, 2)
status.write(json.dumps({"pid": job}) + "\n")
done = os.pidfd_open(job)
while True:
    ready = select.select([done, watch], [], [])[0]
    if watch in ready:  # the worker is gone: so is the job, and everything it started
        sweep()
        os._exit(1)
    if done in ready:
        break
code = os.waitstatus_to_exitcode(os.waitpid(job, 0)[1])
sweep()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
last = {"exit": code, "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss}
status.write(json.dumps(last) + "\n")
"""


# ---- the task ------------------------------------------------------------------------------


def run_attempt(supervisor: Any, item: dict[str, Any]) -> dict[str, Any]:
    """A Ray task: run one attempt's command on this node and return how it ended."""
    return asyncio.run(_Attempt(supervisor, item).run())


class _Attempt:
    def __init__(self, supervisor: Any, item: dict[str, Any]) -> None:
        self.sup = supervisor
        self.id: int = item["id"]
        self.item = item
        # output not yet framed, and the bytes of records produced (the log file's size when
        # all are written)
        self.frame = LogFrame(item.get("log_limit") or NO_LIMIT)
        self.pending = bytearray()  # records not yet sent
        self.sent = 0
        self.eof = False
        self.job_pid = 0
        self.finished = False  # the keeper reported the end

    async def run(self) -> dict[str, Any]:
        node = ray.get_runtime_context().get_node_id()
        started = now_ms()
        ip = ray.util.get_node_ip_address()  # a multi-node job's nodes find its main node by it
        go = await self.sup.begin.remote(self.id, {"node": node, "ip": ip, "at": started})
        if not go.get("go"):
            return {"cancelled": True, "at": now_ms()}
        self.wake = asyncio.Event()
        self.drained = asyncio.Event()
        workdir = tempfile.mkdtemp(prefix=f"batchyard-{self.id}-")
        env = {**self.item["env"], "BATCHYARD_RAY_NODE_ID": node}
        out_r, out_w = os.pipe()
        st_r, st_w = os.pipe()
        keeper = None
        try:
            keeper = subprocess.Popen(
                [
                    sys.executable,
                    *("-I", "-S", "-c", KEEPER),
                    str(os.getpid()),
                    str(st_w),
                    *self.item["argv"],
                ],
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                pass_fds=(st_w,),
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
        except OSError as e:
            os.close(out_r)
            os.close(st_r)
            return self._result(None, f"CannotStartContainerError: {e}", started)
        finally:
            os.close(out_w)
            os.close(st_w)
        try:
            return await self._supervise(keeper, out_r, st_r, started)
        finally:
            if self.job_pid and not self.finished:  # something failed here: leave nothing
                _killpg(self.job_pid, signal.SIGKILL)
            shutil.rmtree(workdir, ignore_errors=True)

    async def _supervise(
        self, keeper: subprocess.Popen[bytes], out_r: int, st_r: int, started: int
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        output = await _stream(loop, out_r)
        status = await _stream(loop, st_r)
        await loop.run_in_executor(None, keeper.wait)  # it forks the keeper and exits
        reading = asyncio.ensure_future(self._read(output))
        sending = asyncio.ensure_future(self._send_all(reading))
        first = await _json_line(status)
        if first is None or "error" in first:
            await sending
            reason = (first or {}).get("error") or "the job's keeper process failed to start"
            return self._result(None, reason, started)
        self.job_pid = first["pid"]
        killer = asyncio.ensure_future(self._kill_on_request())
        try:
            last = await _json_line(status)  # the keeper's last words
            self.finished = last is not None
            await sending
        finally:
            killer.cancel()
        if last is None or last.get("exit") is None:
            return self._result(
                None, "the job's keeper process died; its exit status is unknown", started
            )
        code = int(last["exit"])
        reason = None
        if code < 0:
            reason = f"the process was killed by {signal.Signals(-code).name}"
            code = 128 - code
        return self._result(code, reason, started, last)

    def _result(
        self,
        code: int | None,
        reason: str | None,
        started: int,
        last: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "wall_seconds": round((now_ms() - started) / 1000, 3),
            "log_bytes": self.frame.logged,
            "node": ray.get_runtime_context().get_node_id(),
        }
        if last is not None:
            usage["cpu_seconds"] = round(last["cpu"], 6)
            usage["max_rss_mib"] = round(last["rss"] / 1024, 3)
        return {"exit_code": code, "reason": reason, "usage": usage, "at": now_ms()}

    async def _kill_on_request(self) -> None:
        """A long poll on the supervisor: TerminateJob (or a timeout) arrives here."""
        grace = await self.sup.kill_wait.remote(self.id)
        if grace is None:
            return
        _killpg(self.job_pid, signal.SIGTERM)
        await asyncio.sleep(float(grace))
        _killpg(self.job_pid, signal.SIGKILL)

    # ---- output --------------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                break
            self.pending += self.frame.feed(data)
            self.wake.set()
            while len(self.pending) > 4 * FLUSH_BYTES:  # the supervisor is behind: hold the job
                self.drained.clear()
                await self.drained.wait()
        self.pending += self.frame.feed(b"", final=True)
        self.eof = True
        self.wake.set()

    async def _send_all(self, reading: asyncio.Future[None]) -> None:
        """Send the records in batches; returns once everything read has been delivered."""
        while True:
            if not self.pending:
                if self.eof:
                    break
                self.wake.clear()
                await self.wake.wait()
                continue
            if len(self.pending) < FLUSH_BYTES and not self.eof:
                await asyncio.sleep(FLUSH_SECONDS)  # gather a few more lines per message
            data = bytes(self.pending)
            self.pending.clear()
            self.drained.set()
            await self.sup.output.remote(self.id, self.sent, data)
            self.sent += len(data)
        await reading


async def _stream(loop: asyncio.AbstractEventLoop, fd: int) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=1 << 20, loop=loop)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0)
    )
    return reader


async def _json_line(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    import json

    line = await reader.readline()
    if not line:
        return None
    try:
        return json.loads(line)
    except ValueError:
        return None


def _killpg(pgid: int, sig: int) -> None:
    if pgid > 0:
        with contextlib.suppress(OSError):
            os.killpg(pgid, sig)


# ---- the supervisor --------------------------------------------------------------------------


class Supervisor:
    """One per compute environment: a detached, namespaced async actor on the head node."""

    def __init__(self, ce: str) -> None:
        self.ce = ce
        self.incarnation = uuid.uuid4().hex
        self.attempts: dict[int, dict[str, Any]] = {}  # launched, not ended
        self.exits: dict[int, dict[str, Any]] = {}  # ended, not acknowledged by the server
        self.events: list[tuple[int, str, dict[str, Any]]] = []  # (seq, kind, payload)
        self.seq = 0
        self.buffered = 0
        self._changed: asyncio.Event | None = None
        self._room: asyncio.Event | None = None
        self._task = ray.remote(max_retries=0, retry_exceptions=False)(run_attempt)
        self._me: Any = None
        self._watches: set[asyncio.Future[None]] = set()
        self.gangs: dict[str, _Gang] = {}  # "<job>#<attempt>" -> its placement group
        self._pg_prefix = f"{PG_PREFIX}{ray.get_runtime_context().namespace}:{ce}:"
        # A new incarnation knows no gang: placement groups an earlier one left are stale.
        with contextlib.suppress(Exception):
            for info in placement_group_table().values():
                name = info.get("name") or ""
                if name.startswith(self._pg_prefix) and info.get("state") != "REMOVED":
                    with contextlib.suppress(Exception):
                        remove_placement_group(ray.util.get_placement_group(name))

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        if self._changed is None or self._room is None:
            self._changed, self._room = asyncio.Event(), asyncio.Event()
            self._room.set()
        return self._changed, self._room

    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        self.seq += 1
        self.events.append((self.seq, kind, payload))
        self._events()[0].set()

    async def hello(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL, "incarnation": self.incarnation}

    # -- called by the server (through its bridge) --

    async def launch(self, items: list[dict[str, Any]]) -> list[int]:
        if self._me is None:
            self._me = ray.get_runtime_context().current_actor
        launched = []
        for item in items:
            aid = item["id"]
            if aid in self.attempts or aid in self.exits:
                continue  # a repeated launch: the first one stands
            options: dict[str, Any] = {
                "num_cpus": float(item.get("vcpus") or 0),
                "num_gpus": float(item.get("gpus") or 0),
                "name": f"batchyard:{item['job']}#{item['attempt']}",
            }
            if item.get("memory_mib"):
                options["memory"] = int(item["memory_mib"]) * 2**20
            self.attempts[aid] = {
                "id": aid,
                "job": item["job"],
                "log": item["log"],
                "ref": None,  # a gang's node has none until its placement group is ready
                "begun": None,
                "grace": None,
                "kill": asyncio.Event(),
                "gang": None,
                "main": bool(item.get("main")),
            }
            if item.get("gang"):
                watch = asyncio.ensure_future(self._gang_node(aid, item, options))
            else:
                ref = self._task.options(**options).remote(self._me, item)
                self.attempts[aid]["ref"] = ref
                watch = asyncio.ensure_future(self._watch(aid, ref))
            self._watches.add(watch)
            watch.add_done_callback(self._watches.discard)
            launched.append(aid)
        return launched

    async def terminate(self, ids: list[int], grace: float) -> None:
        for aid in ids:
            a = self.attempts.get(aid)
            if a is None or a["grace"] is not None:
                continue
            a["grace"] = float(grace)
            if a["begun"] is None and a["ref"] is not None:
                # not running yet (waiting for resources, or about to begin): it never will
                ray.cancel(a["ref"], force=False)
            a["kill"].set()  # (a gang's node waiting for its placement group gives up)

    async def ack(self, ids: list[int]) -> None:
        for aid in ids:
            self.exits.pop(aid, None)

    async def state(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL,
            "incarnation": self.incarnation,
            "running": [
                {
                    "id": a["id"],
                    "job": a["job"],
                    "begun": a["begun"] is not None,
                    "at": (a["begun"] or {}).get("at"),
                    "node": (a["begun"] or {}).get("node"),
                    "ip": (a["begun"] or {}).get("ip"),
                    **self._placement(a),
                }
                for a in self.attempts.values()
            ],
            "exits": list(self.exits.values()),
        }

    async def poll(self, cursor: int, wait: float) -> dict[str, Any]:
        """Everything after ``cursor``; waits up to ``wait`` seconds for news. Passing a
        cursor confirms that everything up to it was received (output written)."""
        changed, room = self._events()
        if cursor > self.seq:  # a cursor from before this supervisor restarted
            cursor = 0
        if cursor:
            keep = 0
            for seq, kind, payload in self.events:
                if seq > cursor:
                    break
                keep += 1
                if kind == "output":
                    self.buffered -= len(payload["data"])
            del self.events[:keep]
            if self.buffered <= BUFFER_LIMIT:
                room.set()
        if not any(seq > cursor for seq, _, _ in self.events[-1:]):
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)
        out, size, last = [], 0, cursor
        for seq, kind, payload in self.events:
            if seq <= cursor:
                continue
            out.append((kind, payload))
            last = seq
            if kind == "output":
                size += len(payload["data"])
                if size >= POLL_BYTES:
                    break
        return {"incarnation": self.incarnation, "cursor": last, "events": out}

    # -- called by the attempts' tasks --

    async def begin(self, aid: int, info: dict[str, Any]) -> dict[str, Any]:
        a = self.attempts.get(aid)
        if a is None or a["grace"] is not None:
            return {"go": False}
        a["begun"] = info
        if a["gang"] is not None and a["main"]:
            a["gang"].ip = info.get("ip")  # where the other nodes find the main node
        started = {"id": aid, "at": info["at"], "node": info["node"], "ip": info.get("ip")}
        self._emit("started", {**started, **self._placement(a)})
        return {"go": True}

    @staticmethod
    def _placement(a: dict[str, Any]) -> dict[str, Any]:
        g = a.get("gang")
        return {} if g is None else {"placement_group": g.name, "strategy": g.strategy}

    async def output(self, aid: int, offset: int, data: bytes) -> None:
        a = self.attempts.get(aid)
        if a is None:
            return
        _, room = self._events()
        self._emit("output", {"id": aid, "log": a["log"], "offset": offset, "data": data})
        self.buffered += len(data)
        if self.buffered > BUFFER_LIMIT:  # the server is away or slow: the job waits
            room.clear()
            await room.wait()

    async def kill_wait(self, aid: int) -> float | None:
        a = self.attempts.get(aid)
        if a is None:
            return None
        await a["kill"].wait()
        return a["grace"]

    # -- endings --

    async def _watch(self, aid: int, ref: Any) -> None:
        try:
            result = await ref
        except ray.exceptions.TaskCancelledError:
            result = {"cancelled": True}
        except Exception as e:
            result = await self._failure(aid, e)
        self._ended(aid, result)

    def _ended(self, aid: int, result: dict[str, Any]) -> None:
        if aid not in self.attempts:
            return
        a = self.attempts.pop(aid)
        record: dict[str, Any] = {
            "id": aid,
            "at": result.get("at") or now_ms(),
            "exit_code": result.get("exit_code"),
            "reason": result.get("reason"),
            "usage": result.get("usage"),
        }
        if result.get("cancelled"):
            record["reason"] = "Terminated before the job started on the Ray cluster"
        if a.get("begun") is None:
            record["never_began"] = True
        a["kill"].set()
        self.exits[aid] = record
        self._emit("exited", record)
        if a["gang"] is not None:
            self._leave(a["gang"], aid)

    # -- multi-node jobs --

    async def _gang_node(self, aid: int, item: dict[str, Any], options: dict[str, Any]) -> None:
        """A node of a multi-node job: the main node reserves the whole gang's placement group
        and waits until Ray has placed it; every node runs in its own bundle."""
        a = self.attempts[aid]
        key = f"{item['gang']}#{item['attempt']}"
        try:
            if a["main"]:
                gang = await self._reserve(aid, key, item)
                if gang is None:
                    return  # ended: not placeable, or terminated while waiting
            else:
                gang = self.gangs.get(key)
                if gang is None or gang.closing or not gang.placed:
                    self._ended(aid, {"exit_code": None, "reason": GANG_GONE, "at": now_ms()})
                    return
                gang.members.add(aid)
                a["gang"] = gang
                if gang.ip:  # the address the main node started with, also after a restart
                    item = {**item, "env": {**item["env"], MAIN_ADDRESS: gang.ip}}
            if a["grace"] is not None:  # terminated meanwhile
                self._ended(aid, {"cancelled": True, "at": now_ms()})
                return
            strategy = PlacementGroupSchedulingStrategy(
                placement_group=gang.pg,
                placement_group_bundle_index=int(item["node_index"]),
                placement_group_capture_child_tasks=False,
            )
            ref = self._task.options(**options, scheduling_strategy=strategy).remote(self._me, item)
            a["ref"] = ref
        except Exception as e:
            reason = f"placing the multi-node job on the Ray cluster failed: {type(e).__name__}"
            reason += f": {e}"
            self._ended(aid, {"exit_code": None, "reason": reason, "at": now_ms()})
            return
        await self._watch(aid, ref)

    async def _reserve(self, aid: int, key: str, item: dict[str, Any]) -> _Gang | None:
        a = self.attempts[aid]
        needs = [tuple(n) for n in item.get("gang_needs") or []]
        bundles = [bundle(*n) for n in needs]
        if not 0 <= int(item["node_index"]) < len(bundles):
            raise ValueError(f"node {item['node_index']} of a gang of {len(bundles)}")
        nodes = await asyncio.to_thread(alive_nodes)
        strategy = choose_strategy(bundles, nodes)
        if strategy is None:
            reason = cannot_place(needs, nodes)
            self._ended(aid, {"exit_code": None, "reason": reason, "at": now_ms()})
            return None
        name = f"{self._pg_prefix}{key}:{aid}"
        pg = placement_group(bundles, strategy=strategy, name=name)
        gang = _Gang(key, name, pg, strategy, aid)
        self.gangs[key] = gang  # (an older gang of the same key keeps its own members)
        gang.members.add(aid)
        a["gang"] = gang
        ready = asyncio.wrap_future(pg.ready().future())
        killed = asyncio.ensure_future(a["kill"].wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {ready, killed},
                    timeout=PLACE_CHECK_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if ready in done:
                    ready.result()
                    gang.placed = True
                    return gang
                if killed in done or a["grace"] is not None:
                    self._ended(aid, {"cancelled": True, "at": now_ms()})
                    return None
                # Ray keeps a placement group it cannot place waiting; so would the job,
                # forever, once the nodes it needs have left: give up then
                try:
                    why = await asyncio.to_thread(_placement_problem, pg, bundles, strategy, needs)
                except Exception:  # the GCS did not answer this time: look again later
                    why = ""
                if why:
                    self._ended(aid, {"exit_code": None, "reason": why, "at": now_ms()})
                    return None
        finally:
            killed.cancel()
            ready.cancel()

    def _leave(self, gang: _Gang, aid: int) -> None:
        """A node of the gang ended; the last one out removes the placement group."""
        gang.members.discard(aid)
        if aid == gang.main:
            gang.closing = True  # no node starts after the main node ended
        if gang.members:
            return
        gang.closing = True
        if self.gangs.get(gang.key) is gang:
            del self.gangs[gang.key]
        asyncio.get_running_loop().run_in_executor(None, _remove, gang.pg)

    async def _failure(self, aid: int, e: BaseException) -> dict[str, Any]:
        a = self.attempts.get(aid) or {}
        node = (a.get("begun") or {}).get("node")
        kind = type(e).__name__
        if isinstance(e, ray.exceptions.OutOfMemoryError):
            reason = (
                "OutOfMemoryError: Container killed due to memory usage (Ray's memory monitor "
                "killed the job's worker: its node ran out of memory)"
            )
        elif isinstance(
            e,
            (
                ray.exceptions.NodeDiedError,
                ray.exceptions.WorkerCrashedError,
                ray.exceptions.LocalRayletDiedError,
                ray.exceptions.ObjectLostError,
            ),
        ):
            alive = await asyncio.to_thread(_node_alive, node) if node else True
            if isinstance(e, ray.exceptions.NodeDiedError) or not alive:
                reason = (
                    f"Host EC2 (instance ray-node-{(node or 'unknown')[:12]}) terminated: the "
                    f"Ray node running the job was lost ({kind})"
                )
            else:
                reason = (
                    f"the Ray worker process running the job died unexpectedly ({kind}); "
                    "the job's process tree was killed with it"
                )
        elif isinstance(e, ray.exceptions.RayTaskError):
            cause = str(e).strip().splitlines()
            reason = f"batchyard's Ray task failed: {cause[-1] if cause else kind}"
        else:
            reason = f"the Ray task running the job failed: {kind}: {e}"
        return {"exit_code": None, "reason": reason, "at": now_ms(), "usage": {"node": node}}


GANG_GONE = (
    "the multi-node job's main node has ended: its placement group on the Ray cluster is gone"
)


class _Gang:
    """A multi-node job's attempt on the cluster: its placement group and running nodes."""

    def __init__(self, key: str, name: str, pg: Any, strategy: str, main: int) -> None:
        self.key = key
        self.name = name
        self.pg = pg
        self.strategy = strategy
        self.main = main  # the main node's attempt
        self.members: set[int] = set()  # its nodes' attempts that have not ended
        self.placed = False
        self.closing = False
        self.ip: str | None = None


def _remove(pg: Any) -> None:
    with contextlib.suppress(Exception):
        remove_placement_group(pg)


# ---- placement: pure functions over the nodes' total resources ---------------------------------

KINDS = ("CPU", "memory", "GPU")
EPSILON = 1e-6
SEARCH_STEPS = 20_000  # beyond this, packing is left to Ray


def bundle(vcpus: float, memory_mib: int, gpus: int) -> dict[str, float]:
    """A node's placement group bundle: exactly what its task will ask for."""
    found = {"CPU": float(vcpus), "memory": float(int(memory_mib) * 2**20), "GPU": float(gpus)}
    b = {k: v for k, v in found.items() if v > 0}
    return b or {"CPU": 0.0001}  # Ray refuses an empty bundle


def alive_nodes() -> list[dict[str, float]]:
    return [
        {k: float(v) for k, v in (n.get("Resources") or {}).items() if k in KINDS}
        for n in ray.nodes()
        if n.get("Alive")
    ]


def _fits(need: dict[str, float], have: dict[str, float]) -> bool:
    return all(have.get(k, 0.0) + EPSILON >= v for k, v in need.items())


def spread_fits(bundles: list[dict[str, float]], nodes: list[dict[str, float]]) -> bool:
    """Can every bundle have a node of its own (STRICT_SPREAD)? A bipartite matching."""
    if len(bundles) > len(nodes):
        return False
    fit = [[n for n, have in enumerate(nodes) if _fits(b, have)] for b in bundles]
    if len({tuple(sorted(b.items())) for b in bundles}) == 1:
        return len(fit[0]) >= len(bundles)
    node_of: dict[int, int] = {}  # bundle -> node
    bundle_on: dict[int, int] = {}  # node -> bundle
    for first in sorted(range(len(bundles)), key=lambda b: len(fit[b])):
        came: dict[int, int] = {}  # node -> the bundle that reached it
        frontier, free = [first], None
        while frontier and free is None:
            nxt = []
            for b in frontier:
                for n in fit[b]:
                    if n in came:
                        continue
                    came[n] = b
                    if n not in bundle_on:
                        free = n
                        break
                    nxt.append(bundle_on[n])
                if free is not None:
                    break
            frontier = nxt
        if free is None:
            return False
        n = free
        while True:  # augment along the path
            b = came[n]
            previous = node_of.get(b)
            node_of[b], bundle_on[n] = n, b
            if b == first:
                break
            assert previous is not None
            n = previous
    return True


def pack_fits(bundles: list[dict[str, float]], nodes: list[dict[str, float]]) -> bool | None:
    """Can the bundles be packed onto the nodes at all (SPREAD)? None: not sure (a search
    too large; Ray will tell)."""
    if not all(any(_fits(b, n) for n in nodes) for b in bundles):
        return False
    for k in KINDS:
        if sum(b.get(k, 0.0) for b in bundles) > sum(n.get(k, 0.0) for n in nodes) + EPSILON:
            return False
    order = sorted(bundles, key=lambda b: tuple(-b.get(k, 0.0) for k in ("GPU", "CPU", "memory")))
    free = [dict(n) for n in nodes]
    steps = 0

    def place(i: int) -> bool | None:
        nonlocal steps
        if i == len(order):
            return True
        tried = set()
        for room in free:
            shape = tuple(round(room.get(k, 0.0), 6) for k in KINDS)
            if shape in tried or not _fits(order[i], room):
                continue
            tried.add(shape)
            steps += 1
            if steps > SEARCH_STEPS:
                return None
            for k, v in order[i].items():
                room[k] = room.get(k, 0.0) - v
            found = place(i + 1)
            for k, v in order[i].items():
                room[k] += v
            if found is not False:
                return found
        return False

    if len(order) > 200:  # deep: first fit decreasing only
        for b in order:
            room = next((r for r in free if _fits(b, r)), None)
            if room is None:
                return None
            for k, v in b.items():
                room[k] = room.get(k, 0.0) - v
        return True
    return place(0)


def choose_strategy(bundles: list[dict[str, float]], nodes: list[dict[str, float]]) -> str | None:
    """STRICT_SPREAD when distinct nodes can hold all bundles, else SPREAD when they fit at
    all (or may: left to Ray), else None."""
    if spread_fits(bundles, nodes):
        return "STRICT_SPREAD"
    return None if pack_fits(bundles, nodes) is False else "SPREAD"


def _describe_needs(needs: list[tuple[float, int, int]]) -> str:
    counts: dict[tuple[float, int, int], int] = {}
    for n in needs:
        counts[n] = counts.get(n, 0) + 1
    parts = []
    for (vcpus, mem, gpus), count in counts.items():
        gpu = f", {gpus:g} GPUs" if gpus else ""
        parts.append(f"{count} × {vcpus:g} vCPUs, {mem} MiB{gpu}")
    return "; ".join(parts)


def cannot_place(
    needs: list[tuple[float, int, int]], nodes: list[dict[str, float]], tail: str = ""
) -> str:
    cpus = ", ".join(f"{n.get('CPU', 0.0):g}" for n in nodes) or "none"
    return (
        f"CannotStartContainerError: the Ray cluster cannot place all {len(needs)} nodes of "
        f"the multi-node job ({_describe_needs(needs)}) on its {len(nodes)} alive nodes "
        f"(CPUs per node: {cpus}), neither each on a node of its own (STRICT_SPREAD) nor "
        f"sharing nodes (SPREAD){tail}"
    )


def _placement_problem(
    pg: Any, bundles: list[dict[str, float]], strategy: str, needs: list[tuple[float, int, int]]
) -> str:
    """Why a placement group Ray is still placing never will be, or ""."""
    nodes = alive_nodes()
    if strategy == "STRICT_SPREAD":
        lost = not spread_fits(bundles, nodes)
    else:
        lost = pack_fits(bundles, nodes) is False
    state = ((placement_group_table(pg) or {}).get("stats") or {}).get("scheduling_state")
    if lost or state == "INFEASIBLE":
        return cannot_place(
            needs, nodes, f"; its placement group ({strategy}) waited for nodes that are gone"
        )
    return ""


def _node_alive(node_id: str) -> bool:
    for n in ray.nodes():
        if n.get("NodeID") == node_id:
            return bool(n.get("Alive"))
    return False
