"""Jobs after submission: describe, list, cancel, terminate, and the queue snapshot."""

from __future__ import annotations

import builtins  # builtins.list in annotations: a method below is named list
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from batchyard.domain.clock import now_ms
from batchyard.domain.jobs import NOT_STARTED, STARTED, TERMINAL, Job, JobStatus
from batchyard.domain.resources import JobQueue, Page
from batchyard.errors import InvalidRequest, NotFound
from batchyard.service.context import JOBS, Context
from batchyard.service.job_definitions import parse_ref
from batchyard.service.submit import Submission, Submitter
from batchyard.service.suggest import unknown
from batchyard.store import jobs as repo
from batchyard.store import resources as res
from batchyard.store.rows import from_row

S = JobStatus
MAX_DESCRIBE = 100
MAX_BULK = 50
MAX_REASON = 1024
STARTED_NAMES = [s.value for s in STARTED]
ACTIVE_NAMES = [s.value for s in S if s not in TERMINAL]


@dataclass(slots=True)
class Attempt:
    number: int
    compute_environment: str
    status: str
    started_at: int | None
    stopped_at: int | None
    exit_code: int | None
    reason: str | None
    status_reason: str | None
    log_stream: str


@dataclass(slots=True)
class JobView:
    """A job with what describing it needs: names instead of ids, attempts, its parent."""

    job: Job
    queue: str
    definition: str  # name:revision
    attempts: list[Attempt] = field(default_factory=list)
    parent: Job | None = None

    @property
    def spec(self) -> dict[str, Any]:
        """A child's settings are its parent's; a node's container is its own."""
        if self.parent is None:
            return self.job.spec
        if self.job.node_index is not None:
            return {**self.parent.spec, **self.job.spec}
        return self.parent.spec

    @property
    def tags(self) -> dict[str, str]:
        return self.parent.tags if self.parent is not None else self.job.tags


@dataclass(slots=True)
class BulkResult:
    successful: list[str]
    errors: list[tuple[str, str, str]]  # (job id, code, message)


def _to_attempt(row: Any) -> Attempt:
    return from_row(Attempt, row)


class Jobs:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._submitter = Submitter(ctx)
        self._queue_name: dict[int, str] = {}
        self._definition_ref: dict[int, str] = {}

    async def submit(self, submission: Submission) -> Job:
        return await self._submitter.submit(submission)

    # A queue's name and a job definition's name:revision never change, and ids are never
    # reused: every description of a job needs them, so they are read once.

    def _queue_names(self, conn: Connection, ids: set[int]) -> dict[int, str]:
        missing = ids - self._queue_name.keys()
        for qid in missing:
            queue = res.job_queue_by_id(conn, qid)
            if queue is not None:
                self._queue_name[qid] = queue.name
        return {i: self._queue_name[i] for i in ids if i in self._queue_name}

    def _definition_refs(self, conn: Connection, ids: set[int]) -> dict[int, str]:
        missing = ids - self._definition_ref.keys()
        if missing:
            for jd in res.job_definitions_by_id(conn, missing).values():
                self._definition_ref[jd.id] = jd.ref
        return {i: self._definition_ref[i] for i in ids if i in self._definition_ref}

    # ---- reading ------------------------------------------------------------------------

    def _views(
        self, conn: Connection, jobs: Sequence[Job], with_attempts: bool = True
    ) -> list[JobView]:
        parent_seqs = {j.parent_seq for j in jobs if j.parent_seq is not None}
        parents = repo.jobs_by_seqs(conn, parent_seqs) if parent_seqs else {}
        queues = self._queue_names(conn, {j.queue_id for j in jobs})
        defs = self._definition_refs(conn, {j.definition_id for j in jobs})
        # a multi-node job's attempts are its main node's (AWS's rule)
        attempts_of: dict[int, int] = {j.seq: j.seq for j in jobs}
        for j in jobs:
            if j.num_nodes is not None:
                main = (j.spec.get("node_properties") or {}).get("main_node", 0)
                for n in repo.nodes_of(conn, j.seq):
                    if n.node_index == main:
                        attempts_of[j.seq] = n.seq
        attempts = repo.attempts_of(conn, attempts_of.values()) if with_attempts else {}
        return [
            JobView(
                job=j,
                queue=queues.get(j.queue_id, "?"),
                definition=defs.get(j.definition_id, "?"),
                attempts=[_to_attempt(a) for a in attempts.get(attempts_of[j.seq], [])],
                parent=parents.get(j.parent_seq) if j.parent_seq is not None else None,
            )
            for j in jobs
        ]

    def describe(self, ids: list[str]) -> list[JobView]:
        if len(ids) > MAX_DESCRIBE:
            raise InvalidRequest(f"jobs lists {len(ids)} ids; at most {MAX_DESCRIBE} per request")
        with self.ctx.store.read() as conn:
            found = repo.jobs_by_ids(conn, ids)
            ordered = [found[i] for i in dict.fromkeys(ids) if i in found]
            return self._views(conn, ordered)

    def get(self, job_id: str) -> JobView:
        views = self.describe([job_id])
        if not views:
            raise NotFound(f"job {job_id} does not exist")
        return views[0]

    def history(self, job_id: str) -> list[Any]:
        with self.ctx.store.read() as conn:
            job = repo.job_by_id(conn, job_id)
            if job is None:
                raise NotFound(f"job {job_id} does not exist")
            return repo.transitions_of(conn, job.seq)

    def list(
        self,
        *,
        queue: str | None,
        array_job_id: str | None,
        multi_node_job_id: str | None,
        status: str | None,
        filters: list[dict[str, Any]] | None,
        max_results: int | None,
        next_token: str | None,
    ) -> Page:
        given = [x for x in (queue, array_job_id, multi_node_job_id) if x is not None]
        if len(given) != 1:
            raise InvalidRequest(
                "ListJobs needs exactly one of jobQueue, arrayJobId or multiNodeJobId"
            )
        if multi_node_job_id is not None:
            with self.ctx.store.read() as conn:
                parent = repo.job_by_id(conn, multi_node_job_id)
                if parent is None or parent.num_nodes is None:
                    raise NotFound(
                        f"multiNodeJobId: {multi_node_job_id} is not a multi-node parallel job"
                    )
                nodes = [
                    n
                    for n in repo.nodes_of(conn, parent.seq)
                    if status is None or n.status == status
                ]
                return Page(self._views(conn, nodes))
        if array_job_id is not None:
            return self._list_children(array_job_id, status, max_results, next_token)
        assert queue is not None
        return self._list_queue(queue, status, filters, max_results, next_token)

    def _list_children(
        self, parent_id: str, status: str | None, max_results: int | None, token: str | None
    ) -> Page:
        limit = _limit(max_results, 1000)
        status = status or S.RUNNING.value
        after = self.ctx.tokens.decode(token, "ListJobs", ["array", parent_id, status])
        with self.ctx.store.read() as conn:
            parent = repo.job_by_id(conn, parent_id)
            if parent is None or parent.array_size is None:
                raise NotFound(f"arrayJobId: {parent_id} is not an array job")
            kids = repo.children(
                conn,
                parent.seq,
                status=status,
                after_index=-1 if after is None else after,
                limit=limit + 1,
            )
            views = self._views(conn, kids[:limit], with_attempts=True)
        next_token = None
        if len(kids) > limit:
            next_token = self.ctx.tokens.encode(
                "ListJobs", ["array", parent_id, status], kids[limit - 1].array_index
            )
        return Page(views, next_token)

    def _list_queue(
        self,
        queue_ref: str,
        status: str | None,
        filters: builtins.list[dict[str, Any]] | None,
        max_results: int | None,
        token: str | None,
    ) -> Page:
        if filters and len(filters) > 1:
            raise InvalidRequest("ListJobs takes at most one filter at a time")
        with self.ctx.store.read() as conn:
            queue = res.job_queue(conn, queue_ref)
            if queue is None:
                raise unknown(conn, "job queue", queue_ref, "jobQueue")
            f, limit = self._filter(
                conn, queue, status, filters[0] if filters else None, max_results
            )
            key = ["queue", queue.id, status, filters]
            after = self.ctx.tokens.decode(token, "ListJobs", key)
            jobs = repo.list_jobs(conn, f, after, limit + 1)
            views = self._views(conn, jobs[:limit], with_attempts=True)
        next_token = None
        if len(jobs) > limit:
            next_token = self.ctx.tokens.encode("ListJobs", key, jobs[limit - 1].seq)
        return Page(views, next_token)

    def _filter(
        self,
        conn: Connection,
        queue: JobQueue,
        status: str | None,
        flt: dict[str, Any] | None,
        max_results: int | None,
    ) -> tuple[repo.JobFilter, int]:
        f = repo.JobFilter(queue_id=queue.id)
        if flt is None:
            f.statuses = [status or S.RUNNING.value]
            return f, _limit(max_results, 1000)
        name, values = flt.get("name"), flt.get("values") or []
        if len(values) != 1:
            raise InvalidRequest(f"filter {name}: give exactly one value")
        value = values[0]
        if name == "JOB_NAME":
            f.name = value
        elif name == "JOB_DEFINITION":
            f.definition_ids = self._definition_ids(conn, value)
        elif name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
            if not value.isdigit():
                raise InvalidRequest(
                    f"filter {name}: {value!r} is not a time; give milliseconds since the epoch"
                )
            if name == "BEFORE_CREATED_AT":
                f.before = int(value)
            else:
                f.after = int(value)
        elif name == "SHARE_IDENTIFIER":
            f.share_identifier = value
            if status:
                f.statuses = [status]
        else:
            raise InvalidRequest(
                f"filter name {name!r} is not valid; use JOB_NAME, JOB_DEFINITION, "
                "BEFORE_CREATED_AT, AFTER_CREATED_AT or SHARE_IDENTIFIER"
            )
        return f, _limit(max_results, 100)

    def _definition_ids(self, conn: Connection, value: str) -> builtins.list[int]:
        """A JOB_DEFINITION filter: ``name``, ``name:revision``, or a ``name*`` prefix (the
        edge has made ARNs names)."""
        if value.endswith("*"):
            prefix = value[:-1]
            return [jd.id for jd in res.job_definitions(conn) if jd.name.startswith(prefix)]
        name, revision = parse_ref(value, "filters.values")
        refs = [(name, revision)]
        return [jd.id for jd in res.job_definitions(conn, refs=refs)]

    # ---- stopping -----------------------------------------------------------------------

    # An unknown job id is not an error: AWS answers CancelJob and TerminateJob of one with
    # success ("the API operation still succeeds, even if no job is cancelled"), and counts it
    # as processed in the bulk forms. The CLI checks with DescribeJobs to say "no such job".

    def cancel(self, job_id: str, reason: str) -> None:
        self._stop_ids([job_id], reason, terminate=False)

    def terminate(self, job_id: str, reason: str) -> None:
        self._stop_ids([job_id], reason, terminate=True)

    def bulk(self, ids: builtins.list[str], reason: str, terminate: bool) -> BulkResult:
        if len(ids) > MAX_BULK:
            raise InvalidRequest(f"jobs lists {len(ids)} ids; at most {MAX_BULK} per request")
        self._stop_ids(ids, reason, terminate)
        return BulkResult(list(dict.fromkeys(ids)), [])

    def _stop_ids(self, ids: builtins.list[str], reason: str, terminate: bool) -> None:
        _reason(reason)
        with self.ctx.store.write() as conn:
            found = repo.jobs_by_ids(conn, ids)
            targets = [found[i] for i in dict.fromkeys(ids) if i in found]
            ended = self._stop(conn, targets, reason, terminate)
        if ended:
            self.ctx.finished(ended)
        self.ctx.wake(JOBS)

    def _stop(
        self, conn: Connection, jobs: builtins.list[Job], reason: str, terminate: bool
    ) -> builtins.list[int]:
        """Cancel what has not started; with ``terminate``, flag started work for the
        scheduler to kill. Array parents take their children with them. Returns the jobs
        that ended."""
        now = now_ms()
        flag = "is_terminated" if terminate else "is_cancelled"
        targets: list[Job] = []
        for job in sorted(jobs, key=lambda j: j.seq):  # rows locked in one order (deadlocks)
            if job.status in TERMINAL:
                continue
            if job.array_size is not None:
                repo.update_job(conn, job.seq, **{flag: True, "status_reason": reason})
                targets += [c for c in repo.children(conn, job.seq) if c.status not in TERMINAL]
            elif job.num_nodes is not None:
                # a multi-node job stops as a whole: its nodes with it
                targets.append(job)
                targets += [n for n in repo.nodes_of(conn, job.seq) if n.status not in TERMINAL]
            else:
                targets.append(job)
        changes = []
        started_mnp = {j.seq for j in targets if j.num_nodes is not None and j.status in STARTED}
        for job in targets:
            node = job.node_index is not None
            if node and job.parent_seq in started_mnp:
                # the job ends with its main node: the nodes are stopped, not cancelled
                if terminate:
                    repo.flag_terminated(conn, job.seq, reason, ACTIVE_NAMES)
                continue
            if job.status in NOT_STARTED:
                changes.append(repo.Change.fail(job, reason, **{flag: True}))
            elif (
                terminate
                and job.status in STARTED
                and not repo.flag_terminated(conn, job.seq, reason, STARTED_NAMES)
            ):
                # it moved on since we read it: ended (nothing to do) or back to RUNNABLE
                current = repo.job_by_id(conn, job.id)
                if current is not None and current.status in NOT_STARTED:
                    changes.append(repo.Change.fail(current, reason, **{flag: True}))
        applied = repo.apply_transitions(conn, changes, now)
        return [c.seq for c in applied if c.dst in TERMINAL]

    # ---- queue snapshot -----------------------------------------------------------------

    def snapshot(self, queue_ref: str) -> tuple[builtins.list[Job], int, float]:
        """The first RUNNABLE jobs in dispatch order, and the vCPUs the queue's jobs use."""
        with self.ctx.store.read() as conn:
            queue = res.job_queue(conn, queue_ref)
            if queue is None:
                raise unknown(conn, "job queue", queue_ref, "jobQueue")
            head = repo.runnable_head(conn, queue.id, 100)
            used = repo.vcpus_in_use(conn, queue.id)
        return head, now_ms(), used


def _limit(max_results: int | None, ceiling: int) -> int:
    if max_results is None:
        return ceiling
    if not 1 <= max_results <= ceiling:
        raise InvalidRequest(f"maxResults is {max_results}; it must be between 1 and {ceiling}")
    return max_results


def _reason(reason: str) -> None:
    if len(reason) > MAX_REASON:
        raise InvalidRequest(f"reason has {len(reason)} characters; at most {MAX_REASON}")
