"""A transition row -> the event AWS Batch sends to EventBridge for it.

    {"version": "0", "id": "<uuid>", "detail-type": "Batch Job State Change",
     "source": "aws.batch", "account": "<account>", "time": "2024-05-01T12:00:00Z",
     "region": "<region>", "resources": ["<job ARN>"], "detail": {<DescribeJobs job>}}

``detail`` is the job exactly as DescribeJobs renders it (camelCase, the model's JobDetail
shape), with ``status`` and ``statusReason`` as of the transition, and times and attempts
that had not happened yet at that moment left out; the rest (tags, parameters, the container)
does not change after submission. The event id is derived from the transition's row id and a
per-database secret, so a redelivered event carries the same id: consumers deduplicate on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from batchyard.api.arns import Arns
from batchyard.api.casing import to_wire
from batchyard.api.handlers.jobs import render_job
from batchyard.api.model import batch_model
from batchyard.api.operations import Env
from batchyard.events.outbox import Transition
from batchyard.service.jobs import JobView
from batchyard.service.services import Services
from batchyard.store.db import Store

DETAIL_TYPE = "Batch Job State Change"
SOURCE = "aws.batch"


@dataclass(slots=True)
class Event:
    cursor: int  # the transition's row id
    job_id: str
    queue: str
    status: str
    body: dict[str, Any]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventBuilder:
    def __init__(self, store: Store, services: Services, arns: Arns) -> None:
        self.store = store
        self.services = services
        self.env = Env(services=services, arns=arns)
        self.arns = arns
        self.namespace = uuid.UUID(bytes=store.secret("events_namespace")[:16])
        self._shape = batch_model().shape_for("JobDetail")

    def event_id(self, transition_id: int) -> str:
        return str(uuid.uuid5(self.namespace, str(transition_id)))

    def build(self, rows: list[Transition]) -> list[Event]:
        """Events for ``rows``, in their order; rows whose job is gone (retention) have none."""
        if not rows:
            return []
        ids = self._job_ids({r.job_seq for r in rows})
        views: dict[str, JobView] = {}
        wanted = list(dict.fromkeys(ids.values()))
        for i in range(0, len(wanted), 100):
            for v in self.services.jobs.describe(wanted[i : i + 100]):
                views[v.job.id] = v
        out = []
        for r in rows:
            job_id = ids.get(r.job_seq)
            view = views.get(job_id) if job_id is not None else None
            if view is None:
                continue
            out.append(Event(r.id, view.job.id, view.queue, r.to_status, self._event(r, view)))
        return out

    def jobs_of(self, rows: list[Transition]) -> dict[int, tuple[str, str]]:
        """For cheap filtering before events are built: job seq -> (job id, queue name)."""
        seqs = list({r.job_seq for r in rows})
        out: dict[int, tuple[str, str]] = {}
        with self.store.read() as conn:
            for i in range(0, len(seqs), 500):
                chunk = seqs[i : i + 500]
                params = {f"s{k}": s for k, s in enumerate(chunk)}
                marks = ", ".join(f":s{k}" for k in range(len(chunk)))
                for seq, job_id, queue in conn.execute(
                    text(
                        "SELECT j.seq, j.id, q.name FROM jobs j JOIN job_queues q "
                        f"ON q.id = j.queue_id WHERE j.seq IN ({marks})"
                    ),
                    params,
                ):
                    out[seq] = (job_id, queue)
        return out

    def _job_ids(self, seqs: Iterable[int]) -> dict[int, str]:
        seqs = list(seqs)
        out: dict[int, str] = {}
        with self.store.read() as conn:
            for i in range(0, len(seqs), 500):
                chunk = seqs[i : i + 500]
                params = {f"s{k}": s for k, s in enumerate(chunk)}
                marks = ", ".join(f":s{k}" for k in range(len(chunk)))
                for seq, job_id in conn.execute(
                    text(f"SELECT seq, id FROM jobs WHERE seq IN ({marks})"), params
                ):
                    out[seq] = job_id
        return out

    def _event(self, r: Transition, view: JobView) -> dict[str, Any]:
        detail = render_job(self.env, view)
        detail["status"] = r.to_status
        detail["status_reason"] = r.reason
        at = r.at
        for key in ("started_at", "stopped_at"):
            if detail.get(key) is not None and detail[key] > at:
                detail[key] = None
        attempts = []
        for a in detail.get("attempts") or []:
            if a.get("started_at") is None or a["started_at"] > at:
                continue
            if a.get("stopped_at") is not None and a["stopped_at"] > at:
                a = {**a, "stopped_at": None, "container": {**a["container"], "exit_code": None}}
            attempts.append(a)
        detail["attempts"] = attempts
        if detail.get("container"):
            # the container's exit code, reason and log stream are its latest attempt's as of
            # the transition (a job that had not started has none yet)
            container = {
                k: v
                for k, v in detail["container"].items()
                if k not in ("exit_code", "reason", "log_stream_name")
            }
            current = [a for a in view.attempts if a.started_at is not None and a.started_at <= at]
            if current:
                last = current[-1]
                container["log_stream_name"] = last.log_stream
                if last.stopped_at is not None and last.stopped_at <= at:
                    container["exit_code"] = last.exit_code
                    container["reason"] = last.reason
            detail["container"] = container
        return {
            "version": "0",
            "id": self.event_id(r.id),
            "detail-type": DETAIL_TYPE,
            "source": SOURCE,
            "account": self.arns.account_id,
            "time": iso(at),
            "region": self.arns.region,
            "resources": [detail["job_arn"]],
            "detail": to_wire(detail, self._shape),
        }
