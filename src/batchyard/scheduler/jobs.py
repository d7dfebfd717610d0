"""The job pass: everything that moves jobs, in one store transaction per pass.

Each pass (1) records attempts that started, (2) settles attempts that ended — success,
retry per the retry strategy, or failure —, (3) resolves the jobs that depended on finished
ones, (4) applies queues' time-limit actions, (5) places RUNNABLE jobs (the pure
:func:`batchyard.scheduler.plan.plan`) and claims them as STARTING with a new attempt. After
the commit it hands the claims to the providers, asks them to stop what must stop, and
acknowledges the exits it stored. Providers report back through :class:`Events` callbacks,
which only queue the news and wake the loop.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from batchyard.config import Settings
from batchyard.domain import retry
from batchyard.domain.batch_env import batch_environment
from batchyard.domain.clock import now_ms
from batchyard.domain.dependencies import readiness
from batchyard.domain.jobs import NOT_STARTED, TERMINAL, Job, JobStatus
from batchyard.domain.resources import DELETING, ENABLED, VALID
from batchyard.logs.store import LogStore
from batchyard.providers.base import (
    ActiveAttempt,
    Capacity,
    Exited,
    LaunchSpec,
    Provider,
    Started,
)
from batchyard.scheduler import plan as planner
from batchyard.scheduler.multinode import Held, MultiNode
from batchyard.scheduler.resources import ResourceReconciler
from batchyard.service.context import JOBS, RESOURCES
from batchyard.service.secrets import Secrets, SecretUnavailable
from batchyard.service.secrets import refs as secret_refs
from batchyard.store import jobs as repo
from batchyard.store import resources as res
from batchyard.store.db import Store

log = logging.getLogger(__name__)
S = JobStatus
EXITED_REASON = "Essential container in task exited"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
SWEEP_SECONDS = 60.0
SCALE_SECONDS = 5.0  # how often managed compute environments' desiredvCpus follow demand
SWEEP = "sweep"  # a topic: look for PENDING jobs whose dependencies ended (sent by followers)
MAX_CANDIDATES = 256
HEAD_WAITS = 3  # waiting jobs per queue whose statusReason each pass keeps current
# Array children that run this briefly queue behind their running siblings, on the same
# reservation, up to this many milliseconds of work (and followers) per reservation: the
# line hides the round trip to the scheduler between two short jobs, and is short enough
# that a job arriving with a higher priority hardly notices it.
FOLLOW_HORIZON_MS = 50.0
MAX_FOLLOWERS = 32
QUEUED_BEHIND = "Queued on the host behind a running sibling"


@dataclass(slots=True)
class Running:
    """An attempt handed to a provider and not yet settled."""

    attempt_id: int
    job_seq: int
    job_id: str
    parent_seq: int | None
    number: int
    environment: str
    provider: str
    pool: str
    need: planner.Amount
    started_at: int | None = None
    deadline: int | None = None  # epoch ms when the attempt times out
    timed_out: bool = False
    kill_sent: bool = False
    mnp: int | None = None  # the multi-node job this node attempt belongs to
    main: bool = False  # the main node of that job
    after: int | None = None  # queued behind this attempt, on its reservation
    followed: bool = False  # it was queued so (its statusReason says so until it starts)


@dataclass(slots=True)
class _Topology:
    queues: list[Any]
    environments: dict[str, Any]  # name -> ComputeEnvironment
    queue_names: dict[int, str]


class JobScheduler(MultiNode):
    def __init__(
        self,
        store: Store,
        settings: Settings,
        providers: Mapping[str, Provider],
        resources: ResourceReconciler,
        logs: LogStore,
        wake: Callable[[str], None],
        wake_later: Callable[[float], None],
        secrets: Secrets | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.providers = providers
        self.resources = resources
        self.logs = logs
        self.wake = wake
        self.wake_later = wake_later
        self.secrets = secrets  # the job definitions' secrets, into the launch's environment
        self.running: dict[int, Running] = {}
        self._started: list[Started] = []
        self._exited: list[Exited] = []
        self._finished: deque[int] = deque()  # jobs ended outside a pass (API cancels)
        self._recheck: deque[int] = deque()  # PENDING jobs just submitted (see recheck)
        self._topology: _Topology | None = None
        self._specs: dict[int, dict[str, Any]] = {}  # job seq -> spec (immutable after submit)
        self._definitions: dict[int, str] = {}  # definition id -> name
        self._blocked_since: dict[int, tuple[str, int]] = {}  # job seq -> (wait code, since)
        self._next_action_at: int | None = None
        self._array_sizes: dict[int, int] = {}
        self._next_sweep = 0.0
        self._next_retention = 0.0
        self._next_scale = 0.0
        self._base_env = self._inherited_environment()
        self._writer = store.writer()
        self.held: dict[int, Held] = {}
        self.main_ended: dict[int, tuple[Exited, Running]] = {}
        self._launch_children: list[int] = []
        self._follower: dict[int, int] = {}  # attempt -> the attempt queued behind it
        self._runtime: dict[int, tuple[float, int]] = {}  # array -> (avg child ms, count)

    # ---- provider events (called on the scheduler's loop) ------------------------------

    def started(self, items: list[Started]) -> None:
        self._started += items
        self.wake("provider")

    def exited(self, items: list[Exited]) -> None:
        self._exited += items
        self.wake("provider")

    def finished(self, seqs: list[int]) -> None:
        """Thread-safe: jobs ended by the service layer (cancel); their dependents need a
        look."""
        self._finished.extend(seqs)
        self.wake("jobs")

    def recheck(self, seqs: list[int]) -> None:
        """Thread-safe: jobs SubmitJob stored PENDING on dependencies. One of those may have
        finished in a pass that ran while the submission was being committed, before its
        dependents could see the new job: the next pass reads these jobs again."""
        self._recheck.extend(seqs)
        self.wake("jobs")

    # ---- start-up -----------------------------------------------------------------------

    async def start(self) -> None:
        """Take over (at start-up, or when this server becomes the leader): rebuild the
        attempts in flight from the store and reconcile them with the providers."""
        self.running.clear()
        self._started.clear()
        self._exited.clear()
        self.held.clear()
        self.main_ended.clear()
        self._follower.clear()
        self._topology = None
        self._next_sweep = 0.0
        for provider in self.providers.values():
            await provider.start(self)
        with self.store.read() as conn:
            rows = repo.active_attempts(conn)
            jobs = repo.jobs_by_seqs(conn, [r.job_seq for r in rows])
            self._launch_children = self._rebuild_multinode(conn)
            parents = repo.jobs_by_seqs(
                conn,
                {
                    j.parent_seq
                    for j in jobs.values()
                    if j.node_index is not None and j.parent_seq is not None
                },
            )
        by_provider: dict[str, list[ActiveAttempt]] = {}
        for r in rows:
            job = jobs.get(r.job_seq)
            if job is None:
                continue
            mnp = (
                parents.get(job.parent_seq)
                if job.node_index is not None and job.parent_seq is not None
                else None
            )
            main = mnp is not None and job.node_index == (
                (mnp.spec.get("node_properties") or {}).get("main_node", 0)
            )
            spec = mnp.spec if mnp is not None else self._spec_of(job)
            timeout = (spec.get("timeout") or {}).get("attempt_duration_seconds")
            if mnp is not None and not main:
                timeout = None  # a multi-node job's timeout is its main node's
            self.running[r.id] = Running(
                attempt_id=r.id,
                job_seq=job.seq,
                job_id=job.id,
                parent_seq=job.parent_seq,
                number=r.number,
                environment=r.compute_environment,
                provider=r.provider,
                pool=(r.provider_ref or {}).get("pool", r.provider),
                need=planner.Amount(job.vcpus, job.memory_mib, job.gpus),
                started_at=r.started_at,
                deadline=r.started_at + timeout * 1000 if timeout and r.started_at else None,
                mnp=mnp.seq if mnp is not None else None,
                main=main,
            )
            by_provider.setdefault(r.provider, []).append(
                ActiveAttempt(r.id, job.id, r.status, r.provider_ref, r.compute_environment)
            )
        for name, provider in self.providers.items():
            await provider.reconcile(by_provider.get(name, []))
        log.info("scheduler started with %d active attempts", len(self.running))

    async def stop(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        self._writer.close()

    # ---- the pass -----------------------------------------------------------------------

    async def run_once(self, topics: set[str]) -> bool:
        if self._topology is None or RESOURCES in topics:
            self._load_topology()
        started, self._started = self._started, []
        exited, self._exited = self._exited, []
        finished: set[int] = set()
        while self._finished:
            finished.add(self._finished.popleft())
        recheck: set[int] = set()
        while self._recheck:
            recheck.add(self._recheck.popleft())
        claims: list[tuple[Running, LaunchSpec]] = []
        kills: list[Running] = []
        acks: list[int] = []
        sweep = time.monotonic() >= self._next_sweep or SWEEP in topics
        with self._writer.transaction() as conn:
            now = now_ms()
            # an attempt that started and ended since the last pass (a short job) has its
            # start written with its end: one write of its job's row and of its attempt's
            ended = {e.attempt_id for e in exited if e.exit_code is not None}
            starts: dict[int, dict[str, Any]] = {}
            claims = self._record_started(conn, started, now, ended, starts)
            finished |= self._settle(conn, exited, now, acks, kills, starts)
            if sweep:
                finished |= set(repo.pending_with_finished_dependency(conn, 10_000))
                self._next_sweep = time.monotonic() + SWEEP_SECONDS
            self._resolve_dependents(conn, finished, sweep, now)
            if recheck:
                self._resolve_dependents(conn, recheck, True, now)
            if RESOURCES in topics:
                self._drain_deleted_queues(conn, now)
            if JOBS in topics or RESOURCES in topics:
                kills += self._terminations(conn)
            kills += self._timeouts(now)
            claims += self._place(conn, now)
            scaling = self._demand(conn)
            expired = self._expire(conn, now)
        for stream in expired:
            path = self.logs.path(stream)
            if path is not None:
                path.unlink(missing_ok=True)
        for ce, vcpus in scaling:
            try:
                await self.providers[ce.provider].scale(ce, vcpus)
            except Exception:
                log.exception("provider %s failed to scale %s", ce.provider, ce.name)
        for provider_name, provider in self.providers.items():
            mine = [a for a in acks if a >= 0]
            if mine:
                provider.acknowledge(mine)
            specs = [spec for r, spec in claims if r.provider == provider_name]
            unlaunchable = [s for s in specs if s.error]
            if unlaunchable:  # e.g. a secret that is gone: the attempt fails, with the reason
                self.exited([Exited(s.attempt_id, now_ms(), None, s.error) for s in unlaunchable])
                specs = [s for s in specs if not s.error]
            if specs:
                await provider.launch(specs)
            stop = [r.attempt_id for r in kills if r.provider == provider_name]
            if stop:
                await provider.terminate(stop, self.settings.terminate_grace_seconds)
        self._schedule_timers()
        return False

    def _schedule_timers(self) -> None:
        deadlines = [r.deadline for r in self.running.values() if r.deadline and not r.timed_out]
        if self._next_action_at is not None:
            deadlines.append(self._next_action_at)
        if deadlines:
            self.wake_later(max(0.0, (min(deadlines) - now_ms()) / 1000))
        scaled_up = any(
            (cr := ce.compute_resources) is not None
            and (cr.get("desired_vcpus") or 0) > (cr.get("min_vcpus") or 0)
            for ce in (self._topology.environments.values() if self._topology else [])
        )
        if scaled_up:  # let desiredvCpus come back down when the work is done
            self.wake_later(SCALE_SECONDS)
        # housekeeping (retention, the dependency sweep) also runs on an idle server
        self.wake_later(max(0.0, min(self._next_retention, self._next_sweep) - time.monotonic()))

    # ---- (1) started -------------------------------------------------------------------

    def _record_started(
        self,
        conn: Connection,
        started: list[Started],
        now: int,
        ended: set[int],
        starts: dict[int, dict[str, Any]],
    ) -> list[tuple[Running, LaunchSpec]]:
        """Attempts that started are RUNNING; a multi-node job's main node starting launches
        the job's other nodes, returned as new claims. The start of an attempt in ``ended``
        is left to :meth:`_settle`, with its attempt's columns in ``starts``."""
        changes = []
        attempts: list[tuple[int, dict[str, Any]]] = []
        mains = []
        queued = []
        for s in started:
            r = self.running.get(s.attempt_id)
            if r is None or r.started_at is not None:
                continue
            r.started_at = s.at
            if r.mnp is None and r.attempt_id in ended:
                starts[r.attempt_id] = {
                    "started_at": s.at,
                    "provider_ref": {**s.ref, "pool": r.pool},
                }
                continue
            if r.followed:
                queued.append(r.job_seq)
            if r.mnp is not None:  # a node: the job's timeout is on its main node
                spec = self._spec_for(conn, r.mnp, None) if r.main else {}
                if r.main:
                    mains.append((r, s))
            else:
                spec = self._spec_for(conn, r.job_seq, r.parent_seq)
            timeout = (spec.get("timeout") or {}).get("attempt_duration_seconds")
            if timeout:
                r.deadline = s.at + timeout * 1000
            attempts.append(
                (
                    r.attempt_id,
                    {
                        "status": "RUNNING",
                        "started_at": s.at,
                        "provider_ref": {**s.ref, "pool": r.pool},
                    },
                )
            )
            changes.append(
                repo.Change(
                    r.job_seq,
                    r.job_id,
                    S.STARTING,
                    S.RUNNING,
                    None,
                    {"started_at": s.at},
                    parent_seq=r.parent_seq,
                    node=r.mnp is not None,
                    at=s.at,
                )
            )
        repo.update_attempts(conn, attempts)
        repo.apply_transitions(conn, changes, now)
        # a follow-on's statusReason said why it waited (unless TerminateJob has said more)
        repo.clear_status_reason(conn, queued, QUEUED_BEHIND)
        claims = []
        for r, s in mains:
            claims += self._start_children(conn, r, s, now)
        for parent_seq in self._launch_children:  # after a restart
            main = next((r for r in self.running.values() if r.mnp == parent_seq and r.main), None)
            if main is not None and main.started_at is not None:
                # the main node's address as its provider reported it when it started
                rows = repo.attempts_of(conn, [main.job_seq])[main.job_seq]
                ref = dict(rows[-1].provider_ref or {}) if rows else {}
                claims += self._start_children(
                    conn, main, Started(main.attempt_id, main.started_at, ref), now
                )
        self._launch_children = []
        return claims

    # ---- (2) ended ---------------------------------------------------------------------

    def _settle(
        self,
        conn: Connection,
        exited: list[Exited],
        now: int,
        acks: list[int],
        kills: list[Running],
        starts: dict[int, dict[str, Any]],
    ) -> set[int]:
        """Store each ended attempt and decide its job's fate; returns jobs that finished.
        ``starts``: the attempt columns of starts not written yet (see _record_started)."""
        finished: set[int] = set()
        todo = []
        for e in exited:
            acks.append(e.attempt_id)
            r = self.running.pop(e.attempt_id, None)
            if r is not None:
                self._unlink(r)
                self._observe(r, e)
                todo.append((e, r))
        if not todo:
            return finished
        jobs = repo.jobs_by_seqs(conn, [r.job_seq for _, r in todo])
        changes: list[repo.Change] = []
        attempts: list[tuple[int, dict[str, Any]]] = []
        for e, r in todo:
            self._blocked_since.pop(r.job_seq, None)
            job = jobs.get(r.job_seq)
            if job is None:
                continue
            if e.never_started:
                repo.delete_attempt(conn, r.attempt_id)
                if r.mnp is not None:
                    changes += self._node_never_started(conn, job, r)
                    continue
                changes.append(
                    repo.Change(
                        job.seq,
                        job.id,
                        S.STARTING,
                        S.RUNNABLE,
                        e.reason
                        or "Returned to the queue: claimed but never started (the server or "
                        "its provider restarted first)",
                        {"attempt_count": max(0, job.attempt_count - 1)},
                        parent_seq=job.parent_seq,
                    )
                )
                continue
            if r.mnp is not None:
                change, attempt_status, attempt_reason, stop = self._settle_node(
                    job, r, e, job.status
                )
                kills += stop
            else:
                change, attempt_status, attempt_reason = self._outcome(job, r, e, job.status)
            if job.status == S.STARTING and e.exit_code is not None:
                # it ran, even if we never heard it start (or heard it in this pass): its
                # history says RUNNING before it ended, in the same write
                start = r.started_at or e.at
                change.via = (S.RUNNING, start)
                change.values["started_at"] = start
            attempts.append(
                (
                    r.attempt_id,
                    {
                        **starts.get(r.attempt_id, {}),
                        "status": attempt_status,
                        "stopped_at": e.at,
                        "exit_code": e.exit_code,
                        "reason": e.reason,
                        "status_reason": attempt_reason,
                        "usage": e.usage,
                    },
                )
            )
            change.at = e.at
            changes.append(change)
        repo.update_attempts(conn, attempts)
        applied = repo.apply_transitions(conn, changes, now)
        # A success that lost its race against TerminateJob (committed after we read the
        # job) ends as the termination asked: FAILED with its reason.
        done = {c.seq for c in applied}
        lost = [c for c in changes if c.unless_terminated and c.seq not in done]
        if lost:
            current = repo.jobs_by_seqs(conn, [c.seq for c in lost])
            applied += repo.apply_transitions(
                conn,
                [
                    repo.Change(
                        c.seq,
                        c.job_id,
                        c.src,
                        S.FAILED,
                        current[c.seq].status_reason or "Terminated by TerminateJob",
                        c.values,
                        parent_seq=c.parent_seq,
                        via=c.via,
                    )
                    for c in lost
                    if c.seq in current and current[c.seq].is_terminated
                ],
                now,
            )
        for c in applied:
            if c.dst in TERMINAL and not c.node:
                finished.add(c.seq)
        return finished | self._decide_multinode(conn, now)

    def _unlink(self, r: Running) -> None:
        """An attempt ended: the one queued behind it takes its place in the line (and its
        reservation, if it held it)."""
        follower = self._follower.pop(r.attempt_id, None)
        if r.after is not None and self._follower.get(r.after) == r.attempt_id:
            del self._follower[r.after]
        if follower is None:
            return
        f = self.running.get(follower)
        if f is not None:
            f.after = r.after
            if r.after is not None:
                self._follower[r.after] = follower

    def _observe(self, r: Running, e: Exited) -> None:
        """Keep the running average of how long an array's children take."""
        if r.parent_seq is None or r.started_at is None or e.exit_code is None:
            return
        avg, n = self._runtime.get(r.parent_seq, (0.0, 0))
        ms = max(0.0, float(e.at - r.started_at))
        if len(self._runtime) > 10_000:
            self._runtime.clear()
        self._runtime[r.parent_seq] = (ms if n == 0 else 0.8 * avg + 0.2 * ms, n + 1)

    def _depth(self, group: int) -> int:
        """How many of an array's children may queue behind a running sibling."""
        avg, n = self._runtime.get(group, (0.0, 0))
        if n < 2:
            return 0
        return min(MAX_FOLLOWERS, int(FOLLOW_HORIZON_MS / max(1.0, avg)))

    def _slots(self) -> tuple[list[planner.Slot], dict[int, int]]:
        """Reservations of running array children that siblings may follow, and how deep."""
        depth: dict[int, int] = {}
        slots = []
        for r in self.running.values():
            if r.after is not None or r.parent_seq is None or r.kill_sent or r.mnp is not None:
                continue
            if not self.providers[r.provider].follows:
                continue
            if r.parent_seq not in depth:
                depth[r.parent_seq] = self._depth(r.parent_seq)
            if depth[r.parent_seq] < 1:
                continue
            length, at = 0, r.attempt_id
            while at in self._follower:
                at = self._follower[at]
                length += 1
            slots.append(planner.Slot(r.attempt_id, r.parent_seq, r.environment, length))
        return slots, depth

    def _outcome(self, job: Job, r: Running, e: Exited, src: S) -> tuple[repo.Change, str, str]:
        """The job's next status after an attempt ended, and the attempt's own status."""
        values: dict[str, Any] = {"stopped_at": e.at}
        if e.exit_code == 0 and not job.is_terminated and not r.timed_out:
            return (
                repo.Change(
                    job.seq,
                    job.id,
                    src,
                    S.SUCCEEDED,
                    EXITED_REASON,
                    values,
                    parent_seq=job.parent_seq,
                    unless_terminated=True,
                ),
                "SUCCEEDED",
                EXITED_REASON,
            )
        if r.timed_out:
            why = TIMEOUT_REASON
        elif job.is_terminated:
            why = job.status_reason or "Terminated by TerminateJob"
        elif e.exit_code is None:
            why = e.reason or "the job could not be run"
        else:
            why = EXITED_REASON
        spec = self._spec_of(job)
        decision = retry.decide(
            spec.get("retry_strategy"),
            retry.AttemptOutcome(
                exit_code=e.exit_code,
                reason=e.reason,
                status_reason=why,
                attempt=r.number,
                retryable=not (job.is_terminated or r.timed_out),
            ),
        )
        if decision.retry:
            return (
                repo.Change(
                    job.seq,
                    job.id,
                    src,
                    S.RUNNABLE,
                    f"Attempt {r.number} failed ({why}); retrying: {decision.why}",
                    parent_seq=job.parent_seq,
                    unless_terminated=True,
                ),
                "FAILED",
                why,
            )
        return (
            repo.Change(job.seq, job.id, src, S.FAILED, why, values, parent_seq=job.parent_seq),
            "FAILED",
            why,
        )

    # ---- (3) dependents -------------------------------------------------------------------

    def _resolve_dependents(
        self, conn: Connection, finished: set[int], themselves: bool, now: int
    ) -> None:
        """Move PENDING jobs whose dependencies finished to RUNNABLE or FAILED, following the
        failures down the chain. ``themselves``: ``finished`` also holds PENDING jobs to look
        at directly (the sweep's, and submissions to read again)."""
        frontier = set(finished)
        seen_pending: set[int] = set()
        while frontier:
            dependents = repo.dependents_of(conn, frontier)
            targets = {d for ds in dependents.values() for d in ds}
            if themselves:
                targets |= frontier
                themselves = False
            jobs = repo.jobs_by_seqs(conn, targets - seen_pending)
            pending: list[Job] = []
            for job in jobs.values():
                if job.status != S.PENDING:
                    continue
                if job.array_size is not None:
                    pending += repo.children(conn, job.seq, status=S.PENDING.value)
                else:
                    pending.append(job)
            seen_pending |= {j.seq for j in pending}
            changes = self._readiness_changes(conn, pending)
            applied = repo.apply_transitions(conn, changes, now)
            frontier = {c.seq for c in applied if c.dst in TERMINAL}

    def _readiness_changes(self, conn: Connection, pending: list[Job]) -> list[repo.Change]:
        if not pending:
            return []
        edges = repo.dependencies_of(conn, [j.seq for j in pending])
        parents = {j.parent_seq for j in pending if j.parent_seq is not None}
        parent_edges = repo.dependencies_of(conn, parents) if parents else {}
        all_deps = {d for es in (*edges.values(), *parent_edges.values()) for d, _ in es}
        status = {j.seq: (j.id, j.status) for j in repo.jobs_by_seqs(conn, all_deps).values()}
        changes = []
        for job in pending:
            waits = edges.get(job.seq, []) + (
                parent_edges.get(job.parent_seq, []) if job.parent_seq else []
            )
            ready = readiness(status[d] for d, _ in waits if d in status)
            if ready.status != S.PENDING:
                changes.append(
                    repo.Change(
                        job.seq,
                        job.id,
                        S.PENDING,
                        ready.status,
                        ready.reason,
                        parent_seq=job.parent_seq,
                    )
                )
        return changes

    # ---- (4) stopping -------------------------------------------------------------------

    def _terminations(self, conn: Connection) -> list[Running]:
        if not self.running:
            return []
        by_job = {r.job_seq: r for r in self.running.values() if not r.kill_sent}
        if not by_job:
            return []
        jobs = repo.jobs_by_seqs(conn, by_job)
        kills = []
        for seq, r in by_job.items():
            job = jobs.get(seq)
            if job is not None and job.is_terminated:
                r.kill_sent = True
                kills.append(r)
        return kills

    def _drain_deleted_queues(self, conn: Connection, now: int) -> None:
        """AWS: "all jobs in the queue are eventually terminated when you delete a job
        queue". Not-started jobs fail at once; running ones are flagged for termination."""
        assert self._topology is not None
        reason = "Terminated: the job queue was deleted"
        changes = []
        for q in self._topology.queues:
            if q.status != DELETING:
                continue
            for job in repo.unfinished_in_queue(conn, q.id):
                if job.status in NOT_STARTED:
                    changes.append(repo.Change.fail(job, reason, is_terminated=True))
                elif not job.is_terminated:
                    repo.flag_terminated(conn, job.seq, reason, ["STARTING", "RUNNING"])
        applied = repo.apply_transitions(conn, changes, now)
        if applied:
            self.finished([c.seq for c in applied if c.dst in TERMINAL])

    def _demand(self, conn: Connection) -> list[tuple[Any, int]]:
        """Managed compute environments follow their queues' demand (at most every few
        seconds): desiredvCpus = the vCPUs in use plus those RUNNABLE jobs ask for, between
        minvCpus and maxvCpus. Returns the changes, for the providers to pass on."""
        if time.monotonic() < self._next_scale or self._topology is None:
            return []
        self._next_scale = time.monotonic() + SCALE_SECONDS
        wanted = repo.runnable_vcpus_by_queue(conn)
        demand: dict[str, float] = {}
        for r in self._holding():
            demand[r.environment] = demand.get(r.environment, 0.0) + r.need.vcpus
        envs = self._topology.environments
        for q in self._topology.queues:
            order = sorted(q.compute_environment_order, key=lambda e: e.order)
            usable = [
                e.compute_environment
                for e in order
                if (ce := envs.get(e.compute_environment)) is not None
                and ce.state == ENABLED
                and ce.status == VALID
            ]
            if usable and wanted.get(q.id):
                demand[usable[0]] = demand.get(usable[0], 0.0) + wanted[q.id]
        changes = []
        for ce in envs.values():
            cr = ce.compute_resources
            if cr is None or ce.status != VALID:
                continue
            low, high = cr.get("min_vcpus") or 0, cr.get("max_vcpus") or 0
            desired = int(min(high, max(low, math.ceil(demand.get(ce.name, 0.0)))))
            if desired != cr.get("desired_vcpus", low):  # unset means the minimum
                res.update_compute_environment(
                    conn,
                    ce.id,
                    spec={**ce.spec, "compute_resources": {**cr, "desired_vcpus": desired}},
                )
                cr["desired_vcpus"] = desired
                changes.append((ce, desired))
        return changes

    def _expire(self, conn: Connection, now: int) -> list[str]:
        """Delete jobs that finished longer ago than the retention (a bounded batch each
        time, at most once a minute): unlike AWS's 24 hours, history stays until then."""
        if time.monotonic() < self._next_retention:
            return []
        keep_ms = int(self.settings.job_retention_days * 86_400_000)
        self._next_retention = time.monotonic() + min(60.0, keep_ms / 2000)
        cutoff = now - keep_ms
        old = repo.finished_before(conn, cutoff, 1000)
        if len(old) == 1000:
            self._next_retention = 0.0  # more to do: next pass
        return repo.delete_jobs(conn, old)

    def _timeouts(self, now: int) -> list[Running]:
        kills = []
        for r in self.running.values():
            if r.deadline is not None and not r.timed_out and now >= r.deadline:
                r.timed_out = True
                r.kill_sent = True
                kills.append(r)
        return kills

    # ---- (5) placement ---------------------------------------------------------------------

    def _load_topology(self) -> None:
        with self.store.read() as conn:
            queues = res.job_queues(conn)
            ces = {ce.name: ce for ce in res.compute_environments(conn)}
        self._topology = _Topology(queues, ces, {q.id: q.name for q in queues})

    def _holding(self) -> list[Running | Held]:
        """Everything that holds capacity: running attempts and nodes held for a gang."""
        return [*self.running.values(), *self.held.values()]

    def _environments(self) -> tuple[dict[str, planner.Environment], dict[str, planner.Amount]]:
        assert self._topology is not None
        used: dict[str, planner.Amount] = {}
        pool_used: dict[str, planner.Amount] = {}
        zero = planner.Amount(0.0, 0, 0)
        for r in self._holding():
            if isinstance(r, Running) and r.after is not None:
                continue  # it will use the reservation of the attempt it follows
            used[r.environment] = _plus(used.get(r.environment, zero), r.need)
            pool_used[r.pool] = _plus(pool_used.get(r.pool, zero), r.need)
        envs: dict[str, planner.Environment] = {}
        pools: dict[str, planner.Amount] = {}
        for name, ce in self._topology.environments.items():
            check = self.resources.checks.get(name)
            if check is None:
                continue
            cap = _amount(check.capacity)
            pool = check.pool or name
            pools[pool] = _amount(check.pool_capacity) if check.pool_capacity else cap
            usable = ce.state == ENABLED and ce.status == VALID
            why = (
                ""
                if usable
                else (ce.state if ce.state != ENABLED else f"{ce.status}: {ce.status_reason}")
            )
            envs[name] = planner.Environment(
                name=name,
                pool=pool,
                capacity=cap,
                free=cap.minus(used.get(name, zero)),
                usable=usable,
                why_unusable=why,
                max_vcpus=ce.max_vcpus,
            )
        return envs, {p: cap.minus(pool_used.get(p, zero)) for p, cap in pools.items()}

    def _place(self, conn: Connection, now: int) -> list[tuple[Running, LaunchSpec]]:
        assert self._topology is not None
        envs, pools = self._environments()
        slots, depth = self._slots()
        line_room = sum(max(0, depth[s.group] - s.length) for s in slots)
        queues, candidates, rows = [], {}, {}
        for q in self._topology.queues:
            order = tuple(
                e.compute_environment
                for e in sorted(q.compute_environment_order, key=lambda e: e.order)
            )
            # Look at as many jobs as could start (counting a vCPU each; fractional requests
            # get a second look next pass), plus a few to say why the head waits.
            room = sum(
                max(0.0, min(envs[n].free.vcpus, pools[envs[n].pool].vcpus))
                for n in order
                if n in envs and envs[n].usable
            )
            limit = min(MAX_CANDIDATES, 2 * math.ceil(room) + HEAD_WAITS + line_room)
            found = repo.runnable_candidates(conn, q.id, limit)
            if not found:
                continue
            queues.append(planner.Queue(q.id, q.name, q.priority, order))
            candidates[q.id] = [
                planner.Candidate(
                    r.seq,
                    r.id,
                    self._gang_need(conn, r.seq)
                    if r.num_nodes
                    else planner.Amount(r.vcpus, r.memory_mib, r.gpus),
                    r.parent_seq,
                )
                for r in found
            ]
            rows.update({r.seq: r for r in found})
        if not queues:
            return []
        result = planner.plan(queues, envs, pools, candidates)
        slots += self._fresh_slots(result.placements, depth)
        follow = planner.follow_ons(result.waits, slots, depth) if slots else []
        if follow:
            chained = {f.candidate.seq for f in follow}
            result.waits = [w for w in result.waits if w.candidate.seq not in chained]
        # children whose siblings' lines move are not stuck: no statusReason write for them
        lined = {s.group for s in slots}
        quiet = {
            w.candidate.seq
            for w in result.waits
            if w.code == planner.INSUFFICIENT_CAPACITY and w.candidate.group in lined
        }
        self._record_waits(conn, result.waits, rows, now, quiet)
        if not result.placements and not follow:
            return []
        todo: list[tuple[planner.Candidate, str, planner.Slot | None]] = [
            (p.candidate, p.environment, None) for p in result.placements
        ]
        todo += [(f.candidate, f.slot.environment, f.slot) for f in follow]
        jobs = repo.jobs_by_seqs(conn, [c.seq for c, _, _ in todo])
        changes, attempts, claims = [], [], []
        for c, env_name, slot in todo:
            job = jobs[c.seq]
            ce = self._topology.environments[env_name]
            number = job.attempt_count + 1
            stream = self.logs.new_stream(self._definition_name(conn, job.definition_id))
            holder = self._holder_id(slot, jobs) if slot is not None else None
            changes.append(
                repo.Change(
                    job.seq,
                    job.id,
                    S.RUNNABLE,
                    S.STARTING,
                    f"{QUEUED_BEHIND} ({holder}): it starts as soon as that reservation is free"
                    if holder is not None
                    else None,
                    {"attempt_count": number, "status_reason": None},
                    parent_seq=job.parent_seq,
                )
            )
            attempts.append((job, ce, number, stream, envs[env_name].pool, slot))
        applied = {c.seq for c in repo.apply_transitions(conn, changes, now)}
        claimed = []
        for job, ce, number, stream, pool, slot in attempts:
            if job.seq not in applied:  # cancelled meanwhile
                continue
            self._blocked_since.pop(job.seq, None)
            if job.num_nodes:
                claims += self._claim_multinode(conn, job, ce, pool, number, now)
                continue
            claimed.append((job, ce, number, stream, pool, slot))
        ids = repo.insert_attempts(
            conn,
            [
                repo.NewAttempt(
                    job.seq,
                    number,
                    ce.name,
                    ce.provider,
                    stream,
                    {"pool": pool, **self.providers[ce.provider].claim_ref(ce.name)},
                )
                for job, ce, number, stream, pool, _ in claimed
            ],
        )
        tails: dict[int, int] = {}  # slot -> the last attempt in its line
        placed: dict[int, int] = {}  # a fresh slot -> the attempt placed on it in this pass
        for (job, ce, number, stream, pool, slot), attempt_id in zip(claimed, ids, strict=True):
            r = Running(
                attempt_id=attempt_id,
                job_seq=job.seq,
                job_id=job.id,
                parent_seq=job.parent_seq,
                number=number,
                environment=ce.name,
                provider=ce.provider,
                pool=pool,
                need=planner.Amount(job.vcpus, job.memory_mib, job.gpus),
            )
            if slot is None:
                placed[-job.seq] = attempt_id
            elif slot.key < 0 and slot.key not in placed:
                # its would-be holder was cancelled meanwhile: this one takes the reservation
                placed[slot.key] = attempt_id
                r.followed = True
            else:
                tail = tails.get(slot.key, placed.get(slot.key, slot.key))
                while tail in self._follower:
                    tail = self._follower[tail]
                r.after = tail
                r.followed = True
                self._follower[tail] = attempt_id
                tails[slot.key] = attempt_id
            self.running[attempt_id] = r
            claims.append((r, self._launch_spec(conn, job, r, stream)))
        return claims

    def _fresh_slots(
        self, placements: list[planner.Placement], depth: dict[int, int]
    ) -> list[planner.Slot]:
        """The reservations this pass gives array children, which their siblings may follow
        at once. Waiting for a later pass to find them running is not enough: a child that
        runs for a millisecond has ended before the next pass begins, so the line would never
        form. Keyed by the negated job seq until the attempt exists."""
        assert self._topology is not None
        out = []
        for p in placements:
            group = p.candidate.group
            ce = self._topology.environments[p.environment]
            if group is None or not self.providers[ce.provider].follows:
                continue
            if group not in depth:
                depth[group] = self._depth(group)
            if depth[group] >= 1:
                out.append(planner.Slot(-p.candidate.seq, group, p.environment, 0))
        return out

    def _holder_id(self, slot: planner.Slot, jobs: dict[int, Job]) -> str | None:
        """The job whose reservation a follower queues on."""
        if slot.key < 0:
            return jobs[-slot.key].id
        holder = self.running.get(slot.key)
        return holder.job_id if holder is not None else None

    def _record_waits(
        self,
        conn: Connection,
        waits: list[planner.Wait],
        rows: dict[int, Any],
        now: int,
        quiet: set[int] | frozenset[int] = frozenset(),
    ) -> None:
        """Say why head jobs wait (in their statusReason), and apply the queues'
        jobStateTimeLimitActions to jobs blocked for longer than the action allows."""
        assert self._topology is not None
        blocked: dict[int, tuple[str, int]] = {}
        for w in waits:
            row = rows[w.candidate.seq]
            code, since = self._blocked_since.get(row.seq, (w.code, now))
            blocked[row.seq] = (w.code, since if code == w.code else now)
            current = row.status_reason or ""
            if row.seq in quiet:
                continue
            if not current.startswith(w.code) or (
                w.code in planner.STUCK_CODES and current != w.reason
            ):
                repo.set_wait_reason(conn, row.seq, w.reason)
        self._blocked_since = blocked
        self._next_action_at = None
        actions = {q.id: (q, q.job_state_time_limit_actions) for q in self._topology.queues}
        cancel = []
        queued = {w.candidate.seq: w for w in waits}
        if not any(acts for _, acts in actions.values()):
            return
        jobs = repo.jobs_by_seqs(conn, queued)
        for seq, (code, since) in blocked.items():
            job = jobs.get(seq)
            if job is None:
                continue
            queue, acts = actions.get(job.queue_id, (None, []))
            for a in acts:
                if code != a["reason"]:
                    continue
                due = since + a["max_time_seconds"] * 1000
                if now < due:
                    self._next_action_at = min(self._next_action_at or due, due)
                    continue
                reason = (
                    f"{a['reason']}: cancelled by job queue {queue.name}'s "
                    f"jobStateTimeLimitActions after {a['max_time_seconds']} s in RUNNABLE"
                )
                cancel.append(repo.Change.fail(job, reason, is_cancelled=True))
                break
        applied = repo.apply_transitions(conn, cancel, now)
        if applied:
            self.finished([c.seq for c in applied])

    # ---- launching ------------------------------------------------------------------------

    def _spec_of(self, job: Job) -> dict[str, Any]:
        if job.parent_seq is None:
            return job.spec
        spec = self._specs.get(job.parent_seq)
        if spec is None:
            with self.store.read() as conn:
                return self._spec_for(conn, job.seq, job.parent_seq)
        return spec

    def _spec_for(self, conn: Connection, seq: int, parent_seq: int | None) -> dict[str, Any]:
        key = parent_seq if parent_seq is not None else seq
        spec = self._specs.get(key)
        if spec is None:
            owner = repo.jobs_by_seqs(conn, [key]).get(key)
            spec = owner.spec if owner else {}
            if len(self._specs) > 10_000:
                self._specs.clear()
            self._specs[key] = spec
        return spec

    def _definition_name(self, conn: Connection, definition_id: int) -> str:
        name = self._definitions.get(definition_id)
        if name is None:
            jd = res.job_definition_by_id(conn, definition_id)
            name = jd.name if jd else "unknown"
            self._definitions[definition_id] = name
        return name

    def _inherited_environment(self) -> dict[str, str]:
        import os

        return {k: os.environ[k] for k in self.settings.job_inherit_environment if k in os.environ}

    def _launch_spec(self, conn: Connection, job: Job, r: Running, stream: str) -> LaunchSpec:
        assert self._topology is not None
        if job.node_index is not None:  # a node runs its own container (its spec has it)
            spec = job.spec
        else:
            spec = self._spec_for(conn, job.seq, job.parent_seq)
        container = spec.get("container") or {}
        env = dict(self._base_env)
        for var in container.get("environment") or []:
            env[var["name"]] = var.get("value", "")
        error = None
        if container.get("secrets") and self.secrets is not None:
            try:  # decrypted for this launch only: never stored, logged or described
                env.update(self.secrets.resolve(secret_refs(container)))
            except SecretUnavailable as e:
                error = str(e)
            except Exception as e:
                error = f"ResourceInitializationError: unable to pull secrets: {e}"
        index = size = None
        if job.array_index is not None and job.parent_seq is not None:
            index = job.array_index
            size = self._array_sizes.get(job.parent_seq)
            if size is None:
                parent = repo.jobs_by_seqs(conn, [job.parent_seq]).get(job.parent_seq)
                size = (parent.array_size if parent else None) or 0
                self._array_sizes[job.parent_seq] = size
        env.update(
            batch_environment(
                job.id,
                self._topology.queue_names.get(job.queue_id, ""),
                r.environment,
                r.number,
                index,
                size,
            )
        )
        argv = list(container.get("command") or [])
        return LaunchSpec(
            attempt_id=r.attempt_id,
            job_id=job.id,
            attempt=r.number,
            compute_environment=r.environment,
            argv=argv,
            env=env,
            log_path=self.logs.prepare(stream),
            vcpus=job.vcpus,
            memory_mib=job.memory_mib,
            gpus=job.gpus,
            error=error,
            after=r.after,
        )


def _plus(a: planner.Amount, b: planner.Amount) -> planner.Amount:
    return planner.Amount(a.vcpus + b.vcpus, a.memory_mib + b.memory_mib, a.gpus + b.gpus)


def _amount(c: Capacity) -> planner.Amount:
    return planner.Amount(c.vcpus, c.memory_mib, c.gpus)
