"""Prometheus metrics: ``GET /metrics`` in the text exposition format (prometheus-client).

Three kinds of series, each measured where it costs least:

- **read from the store at scrape time**: jobs per queue and status, compute environments'
  vCPUs and memory in use against their maximum and capacity, webhook backlogs. These are
  the same on every server sharing a database (aggregate them with ``max``, not ``sum``).
- **followed from the transitions table** (the events' outbox), also at scrape time: job
  submissions, transitions, and the time jobs spent waiting in their queue (RUNNABLE →
  STARTING), being dispatched (STARTING → RUNNING) and running (RUNNING → the end). Nothing
  is added to the hot path that changes job statuses; counters start when the server starts.
- **observed in process**: API requests by operation, HTTP status and AWS error code, with
  latency; scheduler passes; store transactions and statements; webhook deliveries.

Every metric is listed, with its labels, in docs/observability.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event, text
from starlette.requests import Request
from starlette.responses import Response

from batchyard import __version__
from batchyard.domain.jobs import JobStatus
from batchyard.events.outbox import Outbox, Position, Transition
from batchyard.store import resources as res
from batchyard.store.db import Store

NS = "batchyard"
FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14400, 43200, 86400)
DISPATCH = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
RUN = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
CATCH_UP_ROWS = 200_000  # per scrape; the rest on the next one


class Metrics:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        status: Callable[[], dict[str, Any]],
        leading: Callable[[], bool],
        webhooks: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        disable_created_metrics()  # the *_created series only add noise to every scrape
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.api_requests = Counter(
            f"{NS}_api_requests_total",
            "API requests by operation, HTTP status and AWS error code ('' on success).",
            ["operation", "status", "error"],
            registry=r,
        )
        self.api_latency = Histogram(
            f"{NS}_api_request_duration_seconds",
            "Time to answer an API request, by operation.",
            ["operation"],
            buckets=FAST,
            registry=r,
        )
        self.scheduler_pass = Histogram(
            f"{NS}_scheduler_pass_duration_seconds",
            "Duration of each scheduler pass (resources: compute environment checks; jobs: "
            "the job pass).",
            ["pass"],
            buckets=FAST,
            registry=r,
        )
        self.store_tx = Histogram(
            f"{NS}_store_transaction_duration_seconds",
            "Store transactions from BEGIN to COMMIT/ROLLBACK, by kind (read or write).",
            ["kind"],
            buckets=FAST,
            registry=r,
        )
        self.store_stmt = Histogram(
            f"{NS}_store_statement_duration_seconds",
            "SQL statements issued through SQLAlchemy (the scheduler's hot-path driver SQL is "
            "covered by the transaction histogram).",
            ["kind"],
            buckets=FAST,
            registry=r,
        )
        self.submissions = Counter(
            f"{NS}_job_submissions_total",
            "Jobs submitted (one per SubmitJob; an array counts once), by queue.",
            ["queue"],
            registry=r,
        )
        self.transitions = Counter(
            f"{NS}_job_transitions_total",
            "Job status changes, by queue, from and to status (from is '' for a new job).",
            ["queue", "from_status", "to_status"],
            registry=r,
        )
        self.queue_wait = Histogram(
            f"{NS}_job_queue_wait_seconds",
            "Time a job waited in RUNNABLE before the scheduler dispatched it (to STARTING).",
            ["queue"],
            buckets=WAIT,
            registry=r,
        )
        self.dispatch = Histogram(
            f"{NS}_job_dispatch_latency_seconds",
            "Time from dispatch (STARTING) to the job's process running (RUNNING).",
            ["queue"],
            buckets=DISPATCH,
            registry=r,
        )
        self.run_time = Histogram(
            f"{NS}_job_run_seconds",
            "Time from RUNNING to the attempt's end, by queue and outcome.",
            ["queue", "to_status"],
            buckets=RUN,
            registry=r,
        )
        self.deliveries = Counter(
            f"{NS}_webhook_deliveries_total",
            "Webhook POSTs by outcome: delivered (2xx), failed (retried later), dead_letter.",
            ["webhook", "outcome"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            f"{NS}_webhook_delivery_duration_seconds",
            "Time a webhook took to answer a POST.",
            ["webhook"],
            buckets=FAST,
            registry=r,
        )
        ProcessCollector(namespace=NS, registry=r)
        r.register(_StoreCollector(store, status, leading, webhooks))
        self._lock = threading.Lock()
        self._pos: Position | None = None
        self._queues: dict[int, str] = {}
        self._instrument_store()

    # ---- in-process observations ---------------------------------------------------------

    def _instrument_store(self) -> None:
        engine = self.store.engine

        def kind(conn: Any) -> str:
            return "write" if conn.get_execution_options().get("batchyard_write") else "read"

        def begin(conn: Any) -> None:
            conn.info["batchyard_t0"] = time.perf_counter()

        def end(conn: Any) -> None:
            t0 = conn.info.pop("batchyard_t0", None)
            if t0 is not None:
                self.store_tx.labels(kind(conn)).observe(time.perf_counter() - t0)

        def before(conn: Any, *_args: Any) -> None:
            conn.info["batchyard_s0"] = time.perf_counter()

        def after(conn: Any, *_args: Any) -> None:
            t0 = conn.info.pop("batchyard_s0", None)
            if t0 is not None:
                self.store_stmt.labels(kind(conn)).observe(time.perf_counter() - t0)

        event.listen(engine, "begin", begin)
        event.listen(engine, "commit", end)
        event.listen(engine, "rollback", end)
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)

    def timed_pass(
        self, name: str, run_pass: Callable[[set[str]], Awaitable[bool]]
    ) -> Callable[[set[str]], Awaitable[bool]]:
        histogram = self.scheduler_pass.labels(name)

        async def timed(topics: set[str]) -> bool:
            t0 = time.perf_counter()
            try:
                return await run_pass(topics)
            finally:
                histogram.observe(time.perf_counter() - t0)

        return timed

    def endpoint(
        self, handle: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap the AWS API endpoint: the operation name is what it left in the scope."""

        async def timed(request: Request) -> Response:
            t0 = time.perf_counter()
            response = await handle(request)
            op = request.scope.get("batchyard.operation") or "unrouted"
            self.api_latency.labels(op).observe(time.perf_counter() - t0)
            error = response.headers.get("x-amzn-errortype", "")
            self.api_requests.labels(op, str(response.status_code), error).inc()
            return response

        return timed

    # webhook observer (events.webhooks.Observer)
    def delivered(self, webhook: str, seconds: float) -> None:
        self.deliveries.labels(webhook, "delivered").inc()
        self.delivery_latency.labels(webhook).observe(seconds)

    def failed(self, webhook: str, seconds: float) -> None:
        self.deliveries.labels(webhook, "failed").inc()
        self.delivery_latency.labels(webhook).observe(seconds)

    def dead_lettered(self, webhook: str) -> None:
        self.deliveries.labels(webhook, "dead_letter").inc()

    # ---- following the transitions -------------------------------------------------------

    def start(self) -> None:
        """Count from now on (called once the store is ready)."""
        with self._lock:
            self._pos = Position(self.outbox.latest())

    def catch_up(self) -> None:
        with self._lock:
            if self._pos is None:
                self._pos = Position(self.outbox.latest())
                return
            seen = 0
            while seen < CATCH_UP_ROWS:
                rows = self.outbox.read(self._pos, 5000)
                if not rows:
                    break
                seen += len(rows)
                self._count(rows)

    def _count(self, rows: list[Transition]) -> None:
        seqs = list({r.job_seq for r in rows})
        jobs: dict[int, tuple[int, int | None]] = {}
        history: dict[int, list[tuple[int, int, str]]] = {}
        timed = {r.job_seq for r in rows if r.to_status in ("STARTING", "RUNNING", *_ENDS)}
        with self.store.read() as conn:
            for chunk in _chunks(seqs, 500):
                marks, params = _in(chunk)
                for seq, queue_id, parent in conn.execute(
                    text(f"SELECT seq, queue_id, parent_seq FROM jobs WHERE seq IN ({marks})"),
                    params,
                ):
                    jobs[seq] = (queue_id, parent)
            for chunk in _chunks(list(timed), 500):
                marks, params = _in(chunk)
                params["top"] = rows[-1].id
                for seq, tid, at, to in conn.execute(
                    text(
                        "SELECT job_seq, id, at, to_status FROM job_transitions "
                        f"WHERE job_seq IN ({marks}) AND id <= :top ORDER BY job_seq, id"
                    ),
                    params,
                ):
                    history.setdefault(seq, []).append((tid, at, to))
            if any(q not in self._queues for q, _ in jobs.values()):
                self._queues = {q.id: q.name for q in res.job_queues(conn)}
        for r in rows:
            job = jobs.get(r.job_seq)
            if job is None:
                continue  # deleted since (retention)
            queue = self._queues.get(job[0], "?")
            self.transitions.labels(queue, r.from_status or "", r.to_status).inc()
            if r.from_status is None and job[1] is None:
                self.submissions.labels(queue).inc()
            before = {
                "STARTING": ("RUNNABLE", self.queue_wait),
                "RUNNING": ("STARTING", self.dispatch),
            }.get(r.to_status)
            if r.to_status in _ENDS and r.from_status == "RUNNING":
                start = _previous(history.get(r.job_seq, []), r.id, "RUNNING")
                if start is not None:
                    self.run_time.labels(queue, r.to_status).observe(max(0, r.at - start) / 1000)
            elif before is not None:
                start = _previous(history.get(r.job_seq, []), r.id, before[0])
                if start is not None:
                    before[1].labels(queue).observe(max(0, r.at - start) / 1000)

    # ---- the endpoint ----------------------------------------------------------------------

    def render(self) -> bytes:
        self.catch_up()
        return generate_latest(self.registry)

    async def handle(self, _request: Request) -> Response:
        import anyio.to_thread

        body = await anyio.to_thread.run_sync(self.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


_ENDS = ("SUCCEEDED", "FAILED", "RUNNABLE")


def _previous(history: list[tuple[int, int, str]], before_id: int, status: str) -> int | None:
    """When the job last entered ``status`` before transition ``before_id``."""
    found = None
    for tid, at, to in history:
        if tid >= before_id:
            break
        if to == status:
            found = at
    return found


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _in(values: list[Any]) -> tuple[str, dict[str, Any]]:
    params = {f"p{i}": v for i, v in enumerate(values)}
    return ", ".join(f":p{i}" for i in range(len(values))), params


class _StoreCollector(Collector):
    """Gauges read from the store (and the providers' capacity) at each scrape."""

    def __init__(
        self,
        store: Store,
        status: Callable[[], dict[str, Any]],
        leading: Callable[[], bool],
        webhooks: Callable[[], list[dict[str, Any]]] | None,
    ) -> None:
        self.store = store
        self.status = status
        self.leading = leading
        self.webhooks = webhooks

    def describe(self) -> list[Any]:
        return []  # computed at collection; nothing to check at registration

    def collect(self) -> Iterable[Any]:
        info = GaugeMetricFamily(f"{NS}_build_info", "batchyard's version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        leader = GaugeMetricFamily(
            f"{NS}_scheduler_leader", "1 if this server leads scheduling for its database."
        )
        leader.add_metric([], 1 if self.leading() else 0)
        yield leader
        status = self.status()
        jobs = GaugeMetricFamily(
            f"{NS}_jobs",
            "Jobs by queue and status (array children counted, not their parents).",
            labels=["queue", "status"],
        )
        queue_up = GaugeMetricFamily(
            f"{NS}_job_queue_info",
            "1 per job queue, with its state and status.",
            labels=["queue", "state", "status"],
        )
        for q in status["queues"]:
            queue_up.add_metric([q["name"], q["state"], q["status"]], 1)
            for s in JobStatus:
                jobs.add_metric([q["name"], s.value], q["jobs"].get(s.value, 0))
        yield jobs
        yield queue_up
        names = {
            "vcpus_in_use": ("vCPUs reserved by running attempts.", "vcpus_in_use"),
            "vcpus_max": ("The compute environment's maxvCpus.", "max_vcpus"),
            "vcpus_capacity": ("vCPUs the provider can give at once.", "capacity_vcpus"),
            "memory_bytes_in_use": ("Memory reserved by running attempts.", "memory_mib_in_use"),
            "memory_bytes_capacity": (
                "Memory the provider can give at once.",
                "capacity_memory_mib",
            ),
            "running_attempts": ("Attempts running.", "running"),
        }
        families = {
            key: GaugeMetricFamily(
                f"{NS}_compute_environment_{key}", doc, labels=["compute_environment"]
            )
            for key, (doc, _) in names.items()
        }
        ce_info = GaugeMetricFamily(
            f"{NS}_compute_environment_info",
            "1 per compute environment, with its state, status and provider.",
            labels=["compute_environment", "state", "status", "provider"],
        )
        for ce in status["compute_environments"]:
            ce_info.add_metric([ce["name"], ce["state"], ce["status"], ce["provider"]], 1)
            for key, (_, field) in names.items():
                value = ce.get(field)
                if value is None:
                    continue
                if key.startswith("memory"):
                    value = value * 2**20
                families[key].add_metric([ce["name"]], float(value))
        yield ce_info
        yield from families.values()
        if self.webhooks is not None:
            backlog = GaugeMetricFamily(
                f"{NS}_webhook_backlog_events",
                "Transitions not yet dealt with by the webhook (delivered, skipped or "
                "dead-lettered).",
                labels=["webhook"],
            )
            failing = GaugeMetricFamily(
                f"{NS}_webhook_consecutive_failures",
                "Failed attempts at the event at the head of the webhook's queue.",
                labels=["webhook"],
            )
            dead = GaugeMetricFamily(
                f"{NS}_webhook_dead_letters",
                "Events kept as dead letters for the webhook.",
                labels=["webhook"],
            )
            for w in self.webhooks():
                backlog.add_metric([w["name"]], w["backlog"] or 0)
                failing.add_metric([w["name"]], w["failures"])
                dead.add_metric([w["name"]], w["dead_letters"])
            yield backlog
            yield failing
            yield dead
