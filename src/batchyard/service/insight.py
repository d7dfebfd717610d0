"""Why a job is where it is, and what the service is doing: ``explain``, ``status`` and a
job's history. Everything is read from the store (plus the providers' capacity), so any
server sharing the database answers the same.

``explain`` answers in sentences a person can act on, and with the same facts as data:
the dependency a job waits for, the capacity it needs against what each compute environment
of its queue can ever give and gives now, a disabled queue or environment, its place in the
queue and what is ahead, the retry rule that fired, the reason it failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection

from batchyard import __version__
from batchyard.domain.jobs import Job, JobStatus
from batchyard.domain.resources import DISABLED, ENABLED, VALID, ComputeEnvironment, JobQueue
from batchyard.errors import NotFound
from batchyard.logs.store import LogStore
from batchyard.providers.base import Capacity, ran_as_text
from batchyard.service import permissions
from batchyard.service.context import Context
from batchyard.store import jobs as repo
from batchyard.store import resources as res

S = JobStatus


@dataclass(slots=True)
class EnvironmentFit:
    name: str
    state: str
    status: str
    max_vcpus: int | None
    capacity: dict[str, float] | None  # what it can ever run at once
    in_use: dict[str, float]
    can_ever_fit: bool
    fits_now: bool
    note: str


@dataclass(slots=True)
class Explanation:
    job_id: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)
    status_reason: str | None = None
    request: dict[str, float] | None = None
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    queue: dict[str, Any] | None = None
    compute_environments: list[EnvironmentFit] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    # who the attempts ran as (the uid and group a root server gave each), for a person
    ran_as: str | None = None
    # a failed attempt refused a permission: who it ran as and how to grant access
    permission: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _amount(vcpus: float, memory: int, gpus: int) -> dict[str, float]:
    return {"vcpus": vcpus, "memory_mib": memory, "gpus": gpus}


def attempt_why(status_reason: str | None, reason: str | None) -> str:
    """An attempt's reasons as one text, each said once (a failed start's reason is both its
    statusReason and its container's reason)."""
    if not reason or (status_reason and reason in status_reason):
        return status_reason or ""
    if not status_reason or status_reason in reason:
        return reason
    return f"{status_reason}; {reason}"


def _ran_as(attempts: list[dict[str, Any]], last: int = 3) -> str | None:
    """Who the attempts ran as: one identity, or the last few attempts' own."""
    known = [a for a in attempts if a["ran_as_text"]][-last:]
    if not known:
        return None
    if len({a["ran_as_text"] for a in known}) == 1 and len(known) == len(attempts):
        return known[0]["ran_as_text"]
    return "; ".join(f"attempt {a['number']}: {a['ran_as_text']}" for a in known)


def _exit(a: dict[str, Any]) -> str:
    """How an attempt ended, for a sentence ("exited with code 3"; never a None)."""
    if a["exit_code"] is not None:
        return f"exited with code {a['exit_code']}"
    return "never started" if a["started_at"] is None else "ended, its exit code unknown"


def _ms(a: int | None, b: int | None) -> str:
    if a is None or b is None:
        return "?"
    seconds = (b - a) / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class Insight:
    def __init__(
        self,
        ctx: Context,
        capacity: Callable[[str], Capacity | None],
        logs: LogStore | None = None,
    ) -> None:
        self.ctx = ctx
        self.capacity = capacity
        self.logs = logs  # a failed attempt's log end, for a permission error

    # ---- explain ------------------------------------------------------------------------

    def explain(self, job_id: str) -> Explanation:
        with self.ctx.store.read() as conn:
            job = repo.job_by_id(conn, job_id)
            if job is None:
                raise NotFound(f"job {job_id} does not exist")
            queue = res.job_queue_by_id(conn, job.queue_id)
            ex = Explanation(job.id, job.status.value, "", status_reason=job.status_reason)
            ex.request = _amount(job.vcpus, job.memory_mib, job.gpus)
            ex.attempts = self._attempts(conn, job)
            ex.ran_as = _ran_as(ex.attempts)
            if job.array_size is not None:
                self._array(conn, job, ex)
            elif job.status in (S.SUBMITTED, S.PENDING):
                self._pending(conn, job, ex)
            elif job.status == S.RUNNABLE:
                self._runnable(conn, job, queue, ex)
            elif job.status in (S.STARTING, S.RUNNING):
                self._running(job, ex)
            elif job.status == S.SUCCEEDED:
                ex.summary = (
                    f"SUCCEEDED after {_ms(job.started_at, job.stopped_at)} of running"
                    f" (attempt {job.attempt_count})."
                )
                # the retries that got it there, with the rule that fired (for the CLI)
                ex.details += [
                    h.reason
                    for h in repo.transitions_of(conn, job.seq)
                    if h.reason and "retrying" in h.reason
                ]
            else:
                self._failed(conn, job, ex)
            if queue is not None and ex.queue is None:
                ex.queue = {
                    "name": queue.name,
                    "state": queue.state,
                    "status": queue.status,
                    "priority": queue.priority,
                }
        return ex

    def _attempts(self, conn: Connection, job: Job) -> list[dict[str, Any]]:
        rows = repo.attempts_of(conn, [job.seq])[job.seq]
        return [
            {
                "number": a.number,
                "compute_environment": a.compute_environment,
                "status": a.status,
                "exit_code": a.exit_code,
                "reason": a.reason,
                "status_reason": a.status_reason,
                "why": attempt_why(a.status_reason, a.reason),
                "log_stream": a.log_stream,
                "started_at": a.started_at,
                "stopped_at": a.stopped_at,
                "ran_as": (ran_as := (a.provider_ref or {}).get("ran_as")),
                "ran_as_text": ran_as_text(ran_as) if ran_as else None,
            }
            for a in rows
        ]

    def _dependencies(self, conn: Connection, job: Job) -> list[dict[str, Any]]:
        seqs = [job.seq] + ([job.parent_seq] if job.parent_seq is not None else [])
        edges = repo.dependencies_of(conn, seqs)
        targets = {d: kind for es in edges.values() for d, kind in es}
        found = repo.jobs_by_seqs(conn, targets)
        return [
            {
                "job_id": d.id,
                "name": d.name,
                "status": d.status.value,
                "type": targets[d.seq],
                "status_reason": d.status_reason,
            }
            for d in sorted(found.values(), key=lambda d: d.seq)
        ]

    def _pending(self, conn: Connection, job: Job, ex: Explanation) -> None:
        deps = self._dependencies(conn, job)
        ex.dependencies = deps
        waiting = [d for d in deps if d["status"] not in ("SUCCEEDED", "FAILED")]
        if not deps:
            ex.summary = f"{job.status.value}: about to be evaluated by the scheduler."
            return
        names = ", ".join(f"{d['job_id']} ({d['name']}, {d['status']})" for d in waiting[:3])
        more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
        ex.summary = (
            f"PENDING: waiting for {len(waiting)} of {len(deps)} dependencies: {names}{more}."
        )
        for d in deps:
            ex.details.append(f"depends on {d['job_id']} ({d['name']}): {d['status']}")

    def _array(self, conn: Connection, job: Job, ex: Explanation) -> None:
        counts = {k: v for k, v in (job.array_counts or {}).items() if v}
        shown = ", ".join(f"{v} {k}" for k, v in counts.items())
        size = job.array_size or 0
        done = counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0)
        if job.status in (S.SUCCEEDED, S.FAILED):
            ex.summary = f"{job.status.value}: array of {size} finished ({shown})."
            if job.status == S.FAILED:
                failed = repo.children(conn, job.seq, status="FAILED", limit=3)
                for c in failed:
                    ex.details.append(f"child {c.id} failed: {c.status_reason}")
        else:
            ex.summary = f"{job.status.value}: array of {size}, {done} finished ({shown})."
            deps = self._dependencies(conn, job)
            ex.dependencies = deps
            for d in deps:
                ex.details.append(
                    f"the array depends on {d['job_id']} ({d['name']}): {d['status']}"
                )
        if job.is_cancelled or job.is_terminated:
            ex.details.append(f"stopped on request: {job.status_reason}")

    def _runnable(
        self, conn: Connection, job: Job, queue: JobQueue | None, ex: Explanation
    ) -> None:
        assert queue is not None
        usage = repo.usage_by_environment(conn)
        ahead, first = repo.ahead_in_queue(conn, job)
        ex.queue = {
            "name": queue.name,
            "state": queue.state,
            "status": queue.status,
            "priority": queue.priority,
            "position": ahead + 1,
            "ahead": first,
            "ahead_count": ahead,
        }
        fits = []
        for entry in sorted(queue.compute_environment_order, key=lambda e: e.order):
            ce = res.compute_environment(conn, entry.compute_environment)
            if ce is not None:
                fits.append(self._fit(job, ce, usage))
        ex.compute_environments = fits
        need = f"{job.vcpus:g} vCPU, {job.memory_mib} MiB" + (
            f", {job.gpus} GPU" if job.gpus else ""
        )
        usable = [f for f in fits if f.state == ENABLED and f.status == VALID]
        if not usable:
            why = "; ".join(f"{f.name} is {f.note}" for f in fits) or "the queue has none"
            ex.summary = (
                f"RUNNABLE but nothing can run it: no compute environment of queue {queue.name} "
                f"is ENABLED and VALID ({why})."
            )
        elif not any(f.can_ever_fit for f in usable):
            ex.summary = (
                f"RUNNABLE and stuck: it requests {need}, more than any compute environment of "
                f"queue {queue.name} can ever give. Lower the request or raise maxvCpus."
            )
        elif any(f.fits_now for f in usable):
            ex.summary = (
                f"RUNNABLE with room for it ({need}); it starts on the scheduler's next pass"
                + (f" after the {ahead} job(s) ahead of it." if ahead else ".")
            )
        else:
            ex.summary = (
                f"RUNNABLE, waiting for capacity: it requests {need} and the compute "
                f"environments that could run it are busy; position {ahead + 1} in queue "
                f"{queue.name}."
            )
        for f in fits:
            ex.details.append(f"{f.name}: {f.note}")
        if ahead:
            ex.details.append(f"{ahead} job(s) are ahead of it in {queue.name}: {', '.join(first)}")
        if queue.state == DISABLED:
            ex.details.append(
                f"queue {queue.name} is DISABLED: it accepts no new jobs but still runs these"
            )
        self._retry_note(job, ex)

    def _fit(self, job: Job, ce: ComputeEnvironment, usage: dict[str, Any]) -> EnvironmentFit:
        cap = self.capacity(ce.name)
        used_v, used_m, used_g, count = usage.get(ce.name, (0.0, 0, 0, 0))
        in_use = {"vcpus": used_v, "memory_mib": used_m, "gpus": used_g, "attempts": count}
        if ce.state != ENABLED or ce.status != VALID:
            note = ce.state if ce.state != ENABLED else f"{ce.status} ({ce.status_reason})"
            return EnvironmentFit(
                ce.name, ce.state, ce.status, ce.max_vcpus, None, in_use, False, False, note
            )
        if cap is None:
            return EnvironmentFit(
                ce.name,
                ce.state,
                ce.status,
                ce.max_vcpus,
                None,
                in_use,
                False,
                False,
                "its capacity is not known yet",
            )
        ever = job.vcpus <= cap.vcpus and job.memory_mib <= cap.memory_mib and job.gpus <= cap.gpus
        now = ever and (
            job.vcpus <= cap.vcpus - used_v + 1e-9
            and job.memory_mib <= cap.memory_mib - used_m
            and job.gpus <= cap.gpus - used_g
        )
        if not ever:
            limits = []
            if job.vcpus > cap.vcpus:
                limits.append(f"{cap.vcpus:g} vCPUs at most (requested {job.vcpus:g})")
            if job.memory_mib > cap.memory_mib:
                limits.append(f"{cap.memory_mib} MiB at most (requested {job.memory_mib})")
            if job.gpus > cap.gpus:
                limits.append(f"{cap.gpus} GPUs at most (requested {job.gpus})")
            note = "can never run it: " + ", ".join(limits)
        else:
            free = cap.vcpus - used_v
            note = (
                f"{'has room now' if now else 'busy'}: {free:g} of {cap.vcpus:g} vCPUs free, "
                f"{count} attempt(s) running"
            )
        return EnvironmentFit(
            ce.name,
            ce.state,
            ce.status,
            ce.max_vcpus,
            _amount(cap.vcpus, cap.memory_mib, cap.gpus),
            in_use,
            ever,
            now,
            note,
        )

    def _retry_note(self, job: Job, ex: Explanation) -> None:
        if job.attempt_count and ex.attempts:
            last = ex.attempts[-1]
            ex.details.append(
                f"attempt {last['number']} {_exit(last)} "
                f"({last['status_reason']}); {job.status_reason or ''}".rstrip("; ")
            )
            self._permission(ex, last)

    def _permission(self, ex: Explanation, attempt: dict[str, Any]) -> None:
        """A failed attempt whose output ends with a permission error: say who it ran as
        and how to grant access (a bounded read of its log's end)."""
        hint = permissions.for_attempt(self.logs, attempt)
        if hint is not None:
            ex.permission = hint
            ex.details.append(hint["fix"])

    def _running(self, job: Job, ex: Explanation) -> None:
        last = ex.attempts[-1] if ex.attempts else None
        where = f" on {last['compute_environment']}" if last else ""
        since = f" for {_ms(job.started_at, _now())}" if job.started_at else ""
        ex.summary = f"{job.status.value}{where}{since} (attempt {job.attempt_count})."
        if last:
            ex.details.append(f"output: log stream {last['log_stream']}")
        if job.is_terminated:
            ex.details.append(f"termination requested: {job.status_reason}")
        timeout = (job.spec.get("timeout") or {}).get("attempt_duration_seconds")
        if timeout and job.started_at:
            left = (job.started_at + timeout * 1000 - _now()) / 1000
            ex.details.append(f"the attempt times out in {max(0.0, left):.0f} s")

    def _failed(self, conn: Connection, job: Job, ex: Explanation) -> None:
        reason = job.status_reason or "no reason recorded"
        if job.is_cancelled:
            ex.summary = f"FAILED: cancelled ({reason})."
        elif job.is_terminated:
            ex.summary = f"FAILED: terminated ({reason})."
        elif not ex.attempts:
            ex.summary = f"FAILED without running: {reason}."
            ex.dependencies = self._dependencies(conn, job)
        else:
            last = ex.attempts[-1]
            told = f"FAILED after {len(ex.attempts)} attempt(s): {reason}"
            extra = last["reason"] if last["reason"] and last["reason"] not in told else None
            if last["exit_code"] is not None or extra:  # else the reason said it all
                told += f"; the last {_exit(last)}" + (f" ({extra})" if extra else "")
            ex.summary = told + "."
            self._permission(ex, last)
        retry = (job.spec.get("retry_strategy") or {}) if job.parent_seq is None else {}
        if ex.attempts:
            allowed = retry.get("attempts") or 1
            ex.details.append(f"the retry strategy allows {allowed} attempt(s)")
        for h in repo.transitions_of(conn, job.seq):
            if h.reason and "retrying" in h.reason:
                ex.details.append(h.reason)

    # ---- history and status -------------------------------------------------------------

    def history(self, job_id: str) -> list[dict[str, Any]]:
        with self.ctx.store.read() as conn:
            job = repo.job_by_id(conn, job_id)
            if job is None:
                raise NotFound(f"job {job_id} does not exist")
            return [
                {"at": h.at, "from": h.from_status, "to": h.to_status, "reason": h.reason}
                for h in repo.transitions_of(conn, job.seq)
            ]

    def status(self) -> dict[str, Any]:
        with self.ctx.store.read() as conn:
            queues = res.job_queues(conn)
            ces = res.compute_environments(conn)
            counts = repo.count_by_status(conn)
            usage = repo.usage_by_environment(conn)
        out_queues = []
        for q in queues:
            per = {s.value: counts.get((q.id, s.value), 0) for s in JobStatus}
            out_queues.append(
                {
                    "name": q.name,
                    "state": q.state,
                    "status": q.status,
                    "priority": q.priority,
                    "compute_environments": [
                        e.compute_environment for e in q.compute_environment_order
                    ],
                    "jobs": per,
                }
            )
        out_ces = []
        for ce in ces:
            cap = self.capacity(ce.name)
            used = usage.get(ce.name, (0.0, 0, 0, 0))
            out_ces.append(
                {
                    "name": ce.name,
                    "state": ce.state,
                    "status": ce.status,
                    "provider": ce.provider,
                    "max_vcpus": ce.max_vcpus,
                    "capacity_vcpus": cap.vcpus if cap else None,
                    "capacity_memory_mib": cap.memory_mib if cap else None,
                    "vcpus_in_use": used[0],
                    "memory_mib_in_use": used[1],
                    "running": used[3],
                    "status_reason": ce.status_reason,
                }
            )
        return {
            "version": __version__,
            "store": self.ctx.store.dialect,
            "queues": out_queues,
            "compute_environments": out_ces,
        }


def _now() -> int:
    from batchyard.domain.clock import now_ms

    return now_ms()
