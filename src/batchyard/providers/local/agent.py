"""The local agent: the parent of every job on this host, and the keeper of their exit codes.

Why a separate process: a job must outlive a crash of the server, and its exit status must
still be known afterwards. Only a process's parent can read that status, so the parent must
not be the server. One agent per data dir, started by the server when none answers, runs
every job as its child (``posix_spawn`` in its own session and working directory; no
interpreter start-up per job), streams each job's output into the attempt's log with a
timestamp per line, and keeps each exit record until the server acknowledges that it is
stored. A restarted server reconnects and is told what ran and what ended meanwhile.

The agent is single-threaded (a selector loop), which is also what lets it ``chdir`` into a
job's directory and move itself into a job's cgroup around the spawn without races.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import functools
import heapq
import itertools
import logging
import os
import queue
import selectors
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchyard.providers.base import ran_as_text
from batchyard.providers.local import wire
from batchyard.providers.local.access import usable_by
from batchyard.providers.local.cgroups import Cgroups, JobCgroup, detect
from batchyard.providers.logframe import NO_LIMIT, LogFrame

log = logging.getLogger("batchyard.agent")


class AlreadyServed(Exception):
    """Another agent holds this data dir's lock: it serves the jobs, this one is not needed."""


READ_CHUNK = 1 << 16
EXIT_GRACE = 2.0  # after the job's main process exits, wait this long for its output's end
SAMPLE_SECONDS = 1.0  # process-tree memory sampling of jobs without a cgroup
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class Job:
    id: int
    job_id: str
    pid: int
    pipe: int
    log_path: str  # created on the first output: most short jobs print nothing
    workdir: str
    started_at: int
    frame: LogFrame  # the output not yet logged, and how much was
    cgroup: Any = None
    log_error: str | None = None
    status: int | None = None
    rusage: Any = None
    eof: bool = False
    killed_by_request: bool = False
    log_fd: int = -1
    tree_peak_mib: float = 0.0  # sampled when the job has no cgroup to say it
    ran_as: dict[str, Any] | None = None  # the identity it runs as, as the server named it


@dataclass(slots=True)
class Prepared:
    exe: str
    argv: list[str]
    env: dict[str, str]
    workdir: str
    cgroup: JobCgroup | None = None
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Prepared:
        return cls("", [], {}, "", error=error)


class Agent:
    def __init__(self, home: Path, idle_seconds: float, enforce_limits: bool) -> None:
        self.home = home
        self.idle_seconds = idle_seconds
        # One agent per data dir, for its whole life: a second one would take over the socket
        # and leave the first, with the exit records only it knows, unreachable.
        self.lock_fd = os.open(home / wire.LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.lock_fd)
            raise AlreadyServed(str(home)) from None
        self.sel = selectors.DefaultSelector()
        self.running: dict[int, Job] = {}
        self.by_pid: dict[int, Job] = {}
        self.exited: dict[int, dict[str, Any]] = {}
        # launches that wait for an attempt (a sibling's, on the same reservation) to end:
        # the attempt waited for -> the launch, and the reverse
        self.waiting: dict[int, dict[str, Any]] = {}
        self.queued: dict[int, int] = {}
        self.timers: list[tuple[float, int, str]] = []
        self.client: socket.socket | None = None
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.stopping = False
        self.idle_since = time.monotonic()
        self.next_sample = 0.0
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.cgroups: Cgroups | None = detect() if enforce_limits else None
        (home / "work").mkdir(parents=True, exist_ok=True)
        self.dirs = WorkDirs()
        # Making and removing a job's directories (working dir, cgroups) costs file-system
        # journal work: a worker thread does it off the path from one job to the next (it
        # prepares launches that wait for a sibling, and cleans up after finished jobs).
        self.work: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self.worker = threading.Thread(target=self._work, name="agent-worker", daemon=True)
        self.worker.start()
        self.resolved: dict[tuple[str, str, Any], tuple[Any, float]] = {}
        self.listener: socket.socket | None = None
        self.socket_inode = 0
        self.next_check = 0.0
        self.home_gone = False
        self._listen()

        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup_r = r
        signal.set_wakeup_fd(w)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)
        self.sel.register(r, selectors.EVENT_READ, ("signal", None))

    def _listen(self) -> None:
        """(Re)create the socket the server connects to."""
        if self.listener is not None:
            self.sel.unregister(self.listener)
            self.listener.close()
        sock_path = self.home / wire.SOCKET
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(sock_path))
        os.chmod(sock_path, 0o600)
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, ("listener", None))
        self.socket_inode = sock_path.stat().st_ino

    def _check_socket(self) -> None:
        """Once a second: if someone removed our socket, make it again (we hold the lock, so
        it is ours to make); if the data dir itself is gone, say so (we exit once idle)."""
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + 1.0
        self.home_gone = not self.home.is_dir()
        if self.home_gone:
            return
        try:
            inode = (self.home / wire.SOCKET).stat().st_ino
        except OSError:
            inode = 0
        if inode != self.socket_inode:
            log.warning("agent %d: its socket was removed; listening again", os.getpid())
            self._listen()

    # ---- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        (self.home / wire.PID_FILE).write_text(f"{os.getpid()}\n")
        log.info("agent %d serving %s (limits: %s)", os.getpid(), self.home, self.cgroups)
        try:
            while True:
                timeout = 1.0
                if self.timers:
                    timeout = max(0.0, min(timeout, self.timers[0][0] - time.monotonic()))
                for key, _ in self.sel.select(timeout):
                    kind, job = key.data
                    if kind == "listener":
                        self._accept()
                    elif kind == "client":
                        self._read_client()
                    elif kind == "signal":
                        self._signals()
                    elif kind == "pipe":
                        self._read_output(job)
                self._fire_timers()
                self._sample_trees()
                self._flush()
                self._check_socket()
                if self._should_exit():
                    break
        finally:
            with contextlib.suppress(FileNotFoundError):
                (self.home / wire.SOCKET).unlink()
            with contextlib.suppress(FileNotFoundError):
                (self.home / wire.PID_FILE).unlink()
            self.work.put(None)
            self.worker.join(10)
            self.dirs.close()
            if self.cgroups is not None:
                self.cgroups.close()
            log.info("agent %d exits", os.getpid())

    def _should_exit(self) -> bool:
        if self.stopping:
            return not self.running
        if self.home_gone and not self.running:
            return True  # the data dir was deleted: nobody can ask for the exit records
        if self.client is not None or self.running or self.exited:
            self.idle_since = time.monotonic()
            return False
        return time.monotonic() - self.idle_since > self.idle_seconds

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, attempt_id, action = heapq.heappop(self.timers)
            job = self.running.get(attempt_id)
            if job is None:
                continue
            if action == "kill" and job.status is None:
                self._signal_group(job, signal.SIGKILL)
            elif action == "finish":
                self._finish(job)

    # ---- the server connection ------------------------------------------------------------

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.setblocking(False)
        if self.client is not None:  # a newer server replaces an older connection
            self._drop_client()
        self.client = conn
        self.inbuf.clear()
        self.outbuf.clear()
        self.sel.register(conn, selectors.EVENT_READ, ("client", None))

    def _drop_client(self) -> None:
        if self.client is not None:
            self.sel.unregister(self.client)
            self.client.close()
            self.client = None
            self.outbuf.clear()

    def _read_client(self) -> None:
        assert self.client is not None
        try:
            data = self.client.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop_client()
            return
        self.inbuf += data
        while True:
            nl = self.inbuf.find(b"\n")
            if nl < 0:
                break
            line = bytes(self.inbuf[:nl])
            del self.inbuf[: nl + 1]
            try:
                self._handle(wire.decode(line))
            except Exception:  # a bad message must not take the jobs down with the agent
                # only its head: a launch message carries the job's environment (secrets)
                log.exception("agent: cannot handle message %.40r (%d bytes)", line, len(line))

    def _send(self, message: dict[str, Any]) -> None:
        if self.client is not None:
            self.outbuf += wire.encode(message)

    def _flush(self) -> None:
        while self.client is not None and self.outbuf:
            try:
                sent = self.client.send(self.outbuf)
            except (BlockingIOError, InterruptedError):
                # the server is slow to read: wait for the socket to drain
                self.sel.modify(
                    self.client, selectors.EVENT_READ | selectors.EVENT_WRITE, ("client", None)
                )
                return
            except OSError:
                self._drop_client()
                return
            del self.outbuf[:sent]
        if self.client is not None:
            self.sel.modify(self.client, selectors.EVENT_READ, ("client", None))

    def _handle(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "hello":
            self._send(
                {
                    "op": "state",
                    "version": wire.VERSION,
                    "pid": os.getpid(),
                    "running": [
                        {"id": j.id, "pid": j.pid, "at": j.started_at, "ran_as": j.ran_as}
                        for j in self.running.values()
                        if j.status is None
                    ],
                    "exited": list(self.exited.values()),
                    "queued": [{"id": i, "after": a} for i, a in self.queued.items()],
                }
            )
        elif op == "launch":
            for item in msg["items"]:
                if item["id"] in self.queued:
                    continue  # a repeated launch (server retried): the first one stands
                after = item.get("after")
                if after is not None and (after in self.running or after in self.queued):
                    self.waiting[after] = item
                    self.queued[item["id"]] = after
                    self.work.put(functools.partial(self._prepared, item))
                else:
                    self._start(item)
        elif op == "kill":
            for item in msg["items"]:
                if item["id"] in self.queued:
                    self._unqueue(item["id"], "the job was stopped before it started")
                    continue
                job = self.running.get(item["id"])
                if job is None or job.status is not None:
                    continue
                job.killed_by_request = True
                self._signal_group(job, signal.SIGTERM)
                grace = float(item.get("grace", 10))
                heapq.heappush(self.timers, (time.monotonic() + grace, job.id, "kill"))
        elif op == "ack":
            for attempt_id in msg["ids"]:
                self.exited.pop(attempt_id, None)
        elif op == "stop":
            self._stop_all()

    # ---- jobs ---------------------------------------------------------------------------

    def _start(self, item: dict[str, Any]) -> None:
        job = self._launch(item)
        if job is not None:
            started = {"id": job.id, "pid": job.pid, "at": job.started_at, "ran_as": job.ran_as}
            self._send({"op": "started", "items": [started]})

    def _release(self, attempt_id: int) -> None:
        """An attempt ended: start the launch that waited for it."""
        item = self.waiting.pop(attempt_id, None)
        if item is not None:
            del self.queued[item["id"]]
            self._start(item)

    def _unqueue(self, attempt_id: int, reason: str, never_started: bool = False) -> None:
        """Drop a waiting launch (its follower waits for its predecessor instead)."""
        after = self.queued.pop(attempt_id)
        self.work.put(functools.partial(self._discard, self.waiting.pop(after)))
        follower = self.waiting.pop(attempt_id, None)
        if follower is not None:
            self.waiting[after] = follower
            self.queued[follower["id"]] = after
        record: dict[str, Any] = {"id": attempt_id, "exit_code": None, "reason": reason}
        record.update(at=now_ms(), never_started=never_started)
        self.exited[attempt_id] = record
        self._send({"op": "exited", "items": [record]})

    def _prepare(self, item: dict[str, Any]) -> Prepared:
        """Everything a launch needs before the spawn: the executable, the working directory,
        the cgroup. Absolute paths only and no change of directory, so that the worker
        thread can do it ahead of time for a launch that waits for its sibling."""
        attempt_id = item["id"]
        argv: list[str] = item["argv"]
        env: dict[str, str] = item["env"]
        user = item.get("user")
        exe = self._resolve(argv[0], env.get("PATH", ""), user, item.get("ran_as"))
        if isinstance(exe, Problem):
            return Prepared.failed(f"CannotStartContainerError: {exe}")
        work_root = str(item.get("work_root") or self.home / "work")
        try:
            workdir = self.dirs.take(work_root, user)
        except OSError as e:
            return Prepared.failed(
                f"CannotStartContainerError: cannot make the working directory of attempt "
                f"{attempt_id} in {work_root}: {e.strerror}"
            )
        if user is not None and (user["uid"], user["gid"]) != (os.geteuid(), os.getegid()):
            # setpriv (util-linux) switches to the user and execs the job: no Python in
            # between (and no second exec at all for the agent's own user)
            groups = "--clear-groups" if user.get("groups") == "clear" else "--init-groups"
            argv = [
                SETPRIV,
                f"--reuid={user['uid']}",
                f"--regid={user['gid']}",
                groups,
                "--",
                exe,
                *argv[1:],
            ]
            exe = SETPRIV
        if user is not None:
            home = user.get("home") or workdir
            env = {**env, "USER": user["name"], "LOGNAME": user["name"], "HOME": home}
        prep = Prepared(exe, argv, env, workdir)
        try:
            if self.cgroups is not None and item.get("memory_mib"):
                prep.cgroup = self.cgroups.take(int(item["memory_mib"]))
        except OSError as e:
            self._dispose(prep.cgroup, prep.workdir)
            return Prepared.failed(
                f"CannotStartContainerError: cannot start {item['argv'][0]!r}: {e.strerror}"
            )
        return prep

    def _prepared(self, item: dict[str, Any]) -> Prepared:
        """The item's preparation: done by the worker already, or now."""
        with item.setdefault("_lock", threading.Lock()):
            prep = item.get("_prep")
            if prep is None:
                prep = item["_prep"] = self._prepare(item)
            return prep

    def _resolve(
        self,
        name: str,
        path: str,
        user: dict[str, Any] | None,
        ran_as: dict[str, Any] | None,
    ) -> str | Problem:
        """``name`` on ``path`` (for ``user``, else the agent's own), remembered for a second:
        an array's children all ask for the same command."""
        key = (name, path, user["uid"] if user is not None else None)
        hit = self.resolved.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        if user is None:
            user = {"uid": os.geteuid(), "gid": os.getegid(), "gids": os.getgroups()}
        who = ran_as_text(ran_as) if ran_as else f"uid {user['uid']}"
        exe = executable_for(name, path, user, who)
        if len(self.resolved) > 1000:
            self.resolved.clear()
        self.resolved[key] = (exe, now + 1.0)
        return exe

    def _launch(self, item: dict[str, Any]) -> Job | None:
        attempt_id = item["id"]
        if attempt_id in self.running or attempt_id in self.exited:
            return None  # a repeated launch (server retried): the first one stands
        prep = self._prepared(item)
        if prep.error is not None:
            self._fail(attempt_id, prep.error)
            return None
        r = w = -1
        cgroup = prep.cgroup
        try:
            r, w = os.pipe2(os.O_CLOEXEC)
            os.chdir(prep.workdir)
            if cgroup is not None:
                cgroup.enter()
            umask = os.umask(item["umask"]) if item.get("umask") is not None else None
            try:
                pid = os.posix_spawn(
                    prep.exe,
                    prep.argv,
                    prep.env,
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, self.devnull, 0),
                        (os.POSIX_SPAWN_DUP2, w, 1),
                        (os.POSIX_SPAWN_DUP2, w, 2),
                    ],
                    setsid=True,
                )
            finally:
                if umask is not None:
                    os.umask(umask)
                if cgroup is not None:
                    cgroup.leave()
                os.chdir(self.home)
        except OSError as e:
            for fd in (r, w):
                if fd >= 0:
                    os.close(fd)
            self.work.put(functools.partial(self._dispose, prep.cgroup, prep.workdir))
            self._fail(
                attempt_id,
                f"CannotStartContainerError: cannot start {item['argv'][0]!r}: {e.strerror}",
            )
            return None
        os.close(w)
        os.set_blocking(r, False)
        job = Job(
            id=attempt_id,
            job_id=item["job"],
            pid=pid,
            pipe=r,
            log_path=item["log"],
            workdir=prep.workdir,
            started_at=now_ms(),
            frame=LogFrame(int(item.get("log_limit", NO_LIMIT))),
            cgroup=cgroup,
            ran_as=item.get("ran_as"),
        )
        self.running[attempt_id] = job
        self.by_pid[pid] = job
        self.sel.register(r, selectors.EVENT_READ, ("pipe", job))
        return job

    def _sample_trees(self) -> None:
        """Without a cgroup, the peak memory of a job's whole process tree is sampled (at
        most once a second, one pass over the process table for all such jobs)."""
        jobs = {j.pid: j for j in self.running.values() if j.cgroup is None and j.status is None}
        now = time.monotonic()
        if not jobs or now < self.next_sample:
            return
        self.next_sample = now + SAMPLE_SECONDS
        import psutil

        children: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        for p in psutil.process_iter(["ppid", "memory_info"]):
            info = p.info
            if info.get("memory_info") is None:
                continue
            rss[p.pid] = info["memory_info"].rss
            children.setdefault(info["ppid"], []).append(p.pid)
        for pid, job in jobs.items():
            total, todo = 0, [pid]
            while todo:
                p = todo.pop()
                total += rss.get(p, 0)
                todo += children.get(p, [])
            job.tree_peak_mib = max(job.tree_peak_mib, total / 2**20)

    def _fail(self, attempt_id: int, reason: str) -> None:
        record = {"id": attempt_id, "exit_code": None, "reason": reason, "at": now_ms()}
        self.exited[attempt_id] = record
        self._send({"op": "exited", "items": [record]})
        self._release(attempt_id)

    def _signal_group(self, job: Job, sig: int) -> None:
        if job.cgroup is not None and sig == signal.SIGKILL:
            job.cgroup.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, sig)

    def _signals(self) -> None:
        try:
            data = os.read(self.wakeup_r, 4096)
        except BlockingIOError:
            return
        if signal.SIGTERM in data or signal.SIGINT in data:
            self._stop_all()
        self._reap()

    def _stop_all(self) -> None:
        """Stop every job (SIGTERM, SIGKILL 5 s later) and exit once they are gone."""
        self.stopping = True
        for attempt_id in list(self.queued):
            self._unqueue(attempt_id, "the agent stopped first", never_started=True)
        for job in self.running.values():
            if job.status is None:
                self._signal_group(job, signal.SIGTERM)
                heapq.heappush(self.timers, (time.monotonic() + 5, job.id, "kill"))

    def _reap(self) -> None:
        while True:
            try:
                pid, status, rusage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job = self.by_pid.pop(pid, None)
            if job is None:
                continue
            job.status, job.rusage = status, rusage
            # the container's main process is gone: so is everything it left behind
            self._signal_group(job, signal.SIGKILL)
            if job.eof:
                self._finish(job)
            else:
                heapq.heappush(self.timers, (time.monotonic() + EXIT_GRACE, job.id, "finish"))

    def _read_output(self, job: Job) -> None:
        try:
            data = os.read(job.pipe, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            job.eof = True
            self._log(job, job.frame.feed(b"", final=True))
            self.sel.unregister(job.pipe)
            os.close(job.pipe)
            job.pipe = -1
            if job.status is not None:
                self._finish(job)
            return
        self._log(job, job.frame.feed(data))

    def _log(self, job: Job, records: bytes) -> None:
        """Append framed records (see :mod:`batchyard.providers.logframe`) to the job's log."""
        if not records:
            return
        if job.log_error is None:
            try:
                if job.log_fd < 0:
                    job.log_fd = os.open(
                        job.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640
                    )
                view = memoryview(records)
                while view:  # a short write (a full disk) must not drop the rest silently
                    view = view[os.write(job.log_fd, view) :]
                return
            except OSError as e:
                job.log_error = os.strerror(e.errno or errno.EIO)
        job.frame.logged -= len(records)  # not in the log: log_bytes counts what it holds

    def _finish(self, job: Job) -> None:
        """Both the process and its output have ended (or the grace ran out): record it."""
        if job.id not in self.running or job.status is None:
            return
        if job.pipe >= 0:
            self._log(job, job.frame.feed(b"", final=True))
            self.sel.unregister(job.pipe)
            os.close(job.pipe)
            job.pipe = -1
        del self.running[job.id]
        if job.log_fd >= 0:
            os.close(job.log_fd)
        code = os.waitstatus_to_exitcode(job.status)
        reason = None
        oom = job.cgroup is not None and job.cgroup.oom_killed()
        if code < 0:
            name = signal.Signals(-code).name
            code = 128 - code
            reason = f"the process was killed by {name}"
        if oom:
            reason = "OutOfMemoryError: Container killed due to memory usage"
        if job.log_error:
            reason = (reason + "; " if reason else "") + f"log writes failed: {job.log_error}"
        ru = job.rusage
        record = {
            "id": job.id,
            "exit_code": code,
            "reason": reason,
            "at": now_ms(),
            "usage": {
                "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 6),
                "max_rss_mib": round(ru.ru_maxrss / 1024, 3),
                "wall_seconds": round((now_ms() - job.started_at) / 1000, 3),
                "log_bytes": job.frame.logged,
            },
        }
        if job.cgroup is not None:
            record["usage"].update(job.cgroup.usage())
        elif job.tree_peak_mib:
            record["usage"]["tree_peak_memory_mib"] = round(job.tree_peak_mib, 3)
        self.work.put(functools.partial(self._dispose, job.cgroup, job.workdir))
        self.exited[job.id] = record
        self._send({"op": "exited", "items": [record]})
        self._release(job.id)

    def _dispose(self, cgroup: JobCgroup | None, workdir: str) -> None:
        """Give back a job's cgroup and working directory, for reuse or removal (worker
        thread)."""
        if cgroup is not None:
            cgroup.release()
        if workdir:
            self.dirs.give_back(workdir)

    def _discard(self, item: dict[str, Any]) -> None:
        """A launch that will never start: undo its preparation, if any (worker thread)."""
        with item.setdefault("_lock", threading.Lock()):
            prep = item.pop("_prep", None)
        if prep is not None:
            self._dispose(prep.cgroup, prep.workdir)

    def _work(self) -> None:
        while (task := self.work.get()) is not None:
            try:
                task()
            except Exception:  # the jobs go on: a leftover directory is only litter
                log.exception("agent: a preparation or clean-up failed")


class WorkDirs:
    """Jobs' working directories: an attempt's own while it runs, and empty when it starts.

    One its attempt left empty waits for the next attempt instead of being removed: making
    and removing a directory costs a few hundred microseconds of file-system journal work,
    seeing that it is empty about ten. A directory is handed on only between attempts of the
    same kind (run as another user than the agent's, or not): one that runs as another user
    gets the directory chowned to that user, mode 0700. Thread-safe."""

    MAX_SPARE = 64  # per work root

    def __init__(self) -> None:
        self.spare: dict[tuple[str, bool], list[str]] = {}
        self.lock = threading.Lock()
        self.names = itertools.count()

    def take(self, root: str, user: dict[str, Any] | None) -> str:
        foreign = user is not None and user["uid"] != os.geteuid()
        with self.lock:
            spare = self.spare.get((root, foreign))
            path = spare.pop() if spare else None
        if path is None:
            path = os.path.join(root, f"{os.getpid()}-{next(self.names)}")
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
        if user is not None and foreign:
            try:
                os.chown(path, user["uid"], user["gid"])
                os.chmod(path, 0o700)  # the attempt's alone
            except OSError:
                _remove_dir(path)
                raise
        return path

    def give_back(self, path: str) -> None:
        """The attempt is over: keep its directory if it is empty, else remove it."""
        try:
            with os.scandir(path) as entries:
                empty = next(entries, None) is None
            st = os.stat(path)
        except OSError:
            return
        key = (os.path.dirname(path), st.st_uid != os.geteuid())
        if empty:
            with self.lock:
                spare = self.spare.setdefault(key, [])
                if len(spare) < self.MAX_SPARE:
                    spare.append(path)
                    return
        _remove_dir(path)

    def close(self) -> None:
        """Remove the spare directories (the agent exits)."""
        with self.lock:
            spare, self.spare = self.spare, {}
        for paths in spare.values():
            for path in paths:
                _remove_dir(path)


def _remove_dir(path: str) -> None:
    """Remove a job's working directory; most are empty, and rmdir is cheap where rmtree is
    not."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


class Problem(str):
    """Why a command cannot start (what follows ``CannotStartContainerError: ``)."""


def short_path(path: str, limit: int = 120) -> str:
    """PATH for a message: whole when short, else its first two and last three directories
    (a virtualenv's or pyenv's come first, the system's last)."""
    if len(path) <= limit:
        return path
    dirs = path.split(os.pathsep)
    if len(dirs) <= 5:
        return path[: limit - 1] + "…"
    return os.pathsep.join([*dirs[:2], f"…{len(dirs) - 5} more…", *dirs[-3:]])


def _not_executable(path: str) -> bool:
    try:
        return not os.stat(path).st_mode & 0o111
    except OSError:
        return False


def executable_for(name: str, path: str, user: dict[str, Any], who: str) -> str | Problem:
    """``name`` resolved as ``user`` (``who``, for messages) would find it: a path as it is,
    a bare name on ``path``; the first candidate that user may execute (a root-only
    interpreter earlier on PATH is skipped). Else a :class:`Problem` saying what is wrong:
    nothing by that name, not executable at all, or not by that user."""
    uid = int(user["uid"])
    gids = {int(user["gid"]), *[int(g) for g in user.get("gids") or []]}
    if "/" in name:
        if not name.startswith("/"):
            return Problem(
                f"{name!r} does not exist: a relative path is looked up in the job's working "
                "directory, which starts empty; give an absolute path"
            )
        if os.path.isdir(name):
            return Problem(f"{name!r} is a directory, not a command")
        if not os.path.exists(name):
            return Problem(f"{name!r} does not exist")
        candidates = [name]
    else:
        candidates = [
            os.path.join(d or ".", name)
            for d in path.split(os.pathsep)
            if os.path.isfile(os.path.join(d or ".", name))
        ]
        if not candidates:
            where = f"PATH ({short_path(path)})" if path else "PATH, which is empty"
            return Problem(f"command {name!r} was not found on {where}")
    for c in candidates:
        if usable_by(c, uid, gids):
            return c
    if all(_not_executable(c) for c in candidates):
        return Problem(f"{candidates[0]!r} is not executable (chmod +x {candidates[0]})")
    return Problem(
        f"{candidates[0]} cannot be executed by the job's user ({who}): it or a directory "
        "on its way is not readable/executable by that user; jobs do not run as the "
        "server's user (see docs/security.md), so use a command installed for everyone "
        "(e.g. /usr/bin/python3)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="batchyard's local agent (started by the server)")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--no-limits", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    home = args.dir.resolve()  # the worker thread uses absolute paths only
    os.chdir(home)
    try:
        agent = Agent(home, args.idle_seconds, enforce_limits=not args.no_limits)
    except AlreadyServed:
        log.info("another agent serves %s; this one exits", args.dir)
        return
    agent.run()


if __name__ == "__main__":
    main()
