"""The dashboard's handlers: pages, the fragments that live updates re-render, the streams
and the actions. Each receives the request and calls the service layer in a worker thread."""

from __future__ import annotations

import math
import shlex
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

import anyio.to_thread
import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from batchyard import __version__
from batchyard.api.handlers.jobs import render_job
from batchyard.api.operations import Env
from batchyard.domain.batch_env import batch_environment
from batchyard.domain.clock import now_ms
from batchyard.domain.jobs import TERMINAL, JobStatus, split_child_id
from batchyard.errors import BatchyardError, InvalidRequest, NotFound
from batchyard.events.outbox import Position
from batchyard.events.stream import last_event_id, sse
from batchyard.service.dashboard import Dashboard, Search
from batchyard.service.jobs import JobView
from batchyard.service.usage import parse_since, small_amount
from batchyard.ui import charts

if TYPE_CHECKING:
    from batchyard.server import Runtime

STATUSES = [s.value for s in JobStatus]
PERIODS = {"1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000}
Handler = Callable[[Request], Awaitable[Response]]


def _ts(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _span(a: int | None, b: int | None) -> str:
    if a is None:
        return "—"
    return charts.duration(((b if b is not None else now_ms()) - a) / 1000)


def _symbol(currency: str) -> str:
    return "$" if currency == "USD" else f"{currency} "


def _money(v: float | None, currency: str = "USD") -> str:
    if v is None:
        return "—"
    sym = _symbol(currency)
    if v == 0:
        return f"{sym}0"
    return f"{sym}{v:,.2f}" if abs(v) >= 0.01 else f"{sym}{small_amount(v)}"


def _price(v: float, currency: str = "USD") -> str:
    return f"{_symbol(currency)}{v:.4g}"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.0f}%"


def _url(path: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


def _job_url(job_id: str) -> str:
    return "/ui/jobs/" + quote(job_id, safe=":")


def _time_param(value: str | None, name: str) -> int | None:
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name}: {value!r} is not a date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


class Pages:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.services = runtime.services
        self.env = Env(services=runtime.services, arns=runtime.arns)
        self.dash = Dashboard(runtime.services.ctx, runtime.services, runtime.outbox)
        self.jinja = jinja2.Environment(
            loader=jinja2.PackageLoader("batchyard.ui", "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        currency = runtime.settings.currency
        self.jinja.filters.update(
            ts=_ts,
            money=lambda v: _money(v, currency),
            price=lambda v: _price(v, currency),
            pct=_pct,
            dur=charts.duration,
            job_url=_job_url,
            q=lambda v: quote(str(v), safe=""),
            shell=lambda argv: shlex.join(str(a) for a in argv),
        )
        self.jinja.globals.update(
            span=_span, url=_url, version=__version__, statuses=STATUSES, now=now_ms
        )

    # ---- plumbing ---------------------------------------------------------------------------

    def render(self, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
        html = self.jinja.get_template(template).render(**context)
        return HTMLResponse(html, status_code=http_status)

    def page(self, fn: Callable[[Request], tuple[str, dict[str, Any]]]) -> Handler:
        """A GET handler: ``fn`` (in a worker thread) returns the template and its context."""

        def run(request: Request) -> tuple[str, dict[str, Any]]:
            # the page's live stream starts where the data it shows was read: no change in
            # between is missed
            cursor = self.rt.outbox.latest()
            name, context = fn(request)
            context.setdefault("cursor", cursor)
            return name, context

        async def handle(request: Request) -> Response:
            try:
                name, context = await anyio.to_thread.run_sync(run, request)
            except NotFound as e:
                return self.render("error.html", 404, title="Not found", message=e.message)
            except BatchyardError as e:
                return self.render("error.html", e.status, title="Error", message=e.message)
            if name.startswith("redirect:"):
                return RedirectResponse(name[9:], status_code=303)
            context.setdefault("request", request)
            return self.render(name, **context)

        return handle

    def action(
        self,
        fn: Callable[[Request, dict[str, str]], str],
        confirm: Callable[[Request, dict[str, str]], str],
    ) -> Handler:
        """A POST handler (an HTML form): runs ``fn`` with the form, then redirects to the
        page it returns (POST/redirect/GET). A form without ``confirm=yes`` (the dashboard's
        script adds it once the person confirmed in a dialog) gets a confirmation page
        first, so nothing is changed by one stray click, with or without JavaScript.
        Cross-site posts are refused."""

        async def handle(request: Request) -> Response:
            origin = request.headers.get("origin")
            host = request.headers.get("host", "")
            if origin not in (None, "null") and origin.split("://", 1)[-1] != host:
                return self.render(
                    "error.html",
                    403,
                    title="Refused",
                    message="this action was sent from another site; open the dashboard and "
                    "use its buttons",
                )
            body = await request.body()
            if len(body) > 65536:
                return self.render("error.html", 413, title="Refused", message="form too large")
            # HTML forms post application/x-www-form-urlencoded: parsed here, so the dashboard
            # needs no multipart library
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            try:
                if form.get("confirm") != "yes":
                    message = await anyio.to_thread.run_sync(confirm, request, form)
                    fields = {k: v for k, v in form.items() if k != "confirm"}
                    return self.render(
                        "confirm.html",
                        title="Confirm",
                        message=message,
                        action=request.url.path,
                        fields=fields,
                        back=request.headers.get("referer") or "/ui",
                    )
                target = await anyio.to_thread.run_sync(fn, request, form)
            except BatchyardError as e:
                return self.render(
                    "error.html", e.status, title="The action failed", message=e.message
                )
            return RedirectResponse(target, status_code=303)

        return handle

    # ---- overview ---------------------------------------------------------------------------

    def _overview(self) -> dict[str, Any]:
        status = self.rt.insight.status()
        series = self.dash.series(PERIODS["1h"], 30)
        labels = [
            datetime.fromtimestamp((series.since + (i + 1) * series.width_ms) / 1000, UTC).strftime(
                "%H:%M"
            )
            for i in range(series.buckets)
        ]
        wait_labels, wait_counts = charts.wait_histogram(series.waits)
        waits = sorted(series.waits)
        return {
            "status": status,
            "failures": [self._row(v) for v in self.dash.recent_failures(8)],
            "throughput": charts.bars(
                labels,
                [
                    ("succeeded", "ok", series.succeeded),
                    ("failed", "bad", series.failed),
                ],
                "Jobs finished per 2 minutes, last hour",
            ),
            "depth": charts.area(labels, series.depth, "RUNNABLE jobs, last hour"),
            "waits": charts.bars(
                wait_labels,
                [("jobs", "wait", wait_counts)],
                "Time in RUNNABLE before dispatch, last hour",
                every=1,
            ),
            "wait_stats": {
                "n": len(waits),
                "p50": waits[len(waits) // 2] if waits else None,
                "p95": waits[max(0, math.ceil(0.95 * len(waits)) - 1)] if waits else None,
            },
        }

    def overview(self, _request: Request) -> tuple[str, dict[str, Any]]:
        return "overview.html", {"title": "Overview", **self._overview()}

    def overview_fragment(self, _request: Request) -> tuple[str, dict[str, Any]]:
        return "_overview.html", self._overview()

    # ---- jobs -------------------------------------------------------------------------------

    def _row(self, view: JobView) -> dict[str, Any]:
        j = view.job
        last = view.attempts[-1] if view.attempts else None
        counts = j.array_counts or {}
        return {
            "id": j.id,
            "name": j.name,
            "queue": view.queue,
            "definition": view.definition,
            "status": j.status.value,
            "reason": j.status_reason,
            "created_at": j.created_at,
            "started_at": j.started_at,
            "stopped_at": j.stopped_at,
            "attempts": j.attempt_count,
            "exit_code": last.exit_code if last else None,
            "array_size": j.array_size,
            "array_done": counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0),
            "array_counts": {k: v for k, v in counts.items() if v},
            "num_nodes": j.num_nodes,
            "vcpus": j.vcpus,
            "memory_mib": j.memory_mib,
            "share_identifier": j.share_identifier,
        }

    def _search(self, request: Request) -> tuple[Search, dict[str, str]]:
        q = request.query_params
        form = {
            k: q.get(k, "")
            for k in (
                "queue",
                "status",
                "name",
                "definition",
                "after",
                "before",
                "share",
                "q",
                "size",
            )
        }
        status = form["status"].upper()
        if status and status not in STATUSES:
            raise InvalidRequest(f"status {status!r} is not one of {', '.join(STATUSES)}")
        size = int(form["size"]) if form["size"].isdigit() else 50
        s = Search(
            queue=form["queue"] or None,
            status=status or None,
            name=form["name"] or None,
            definition=form["definition"] or None,
            created_after=_time_param(form["after"], "created after"),
            created_before=_time_param(form["before"], "created before"),
            share_identifier=form["share"] or None,
            text=form["q"] or None,
            older_than=int(q["older"]) if q.get("older", "").isdigit() else None,
            newer_than=int(q["newer"]) if q.get("newer", "").isdigit() else None,
            limit=max(1, min(200, size)),
        )
        return s, form

    def jobs(self, request: Request) -> tuple[str, dict[str, Any]]:
        s, form = self._search(request)
        result = self.dash.search(s)
        if result.exact and not result.views and s.older_than is None:
            return f"redirect:{_job_url(result.exact)}", {}
        queues = [q.name for q in self.services.job_queues.describe(None, 100, None).items]
        return "jobs.html", {
            "title": "Jobs",
            "rows": [self._row(v) for v in result.views],
            "total": result.total,
            "older": _url("/ui/jobs", **form, older=result.older) if result.older else None,
            "newer": _url("/ui/jobs", **form, newer=result.newer) if result.newer else None,
            "form": form,
            "queues": queues,
            "exact": result.exact,
            "filtered": any(v for k, v in form.items() if k != "size"),
        }

    def jobs_fragment(self, request: Request) -> tuple[str, dict[str, Any]]:
        name, context = self.jobs(request)
        if name.startswith("redirect:"):
            name, context = self.jobs_fragment_empty()
        return "_jobs_table.html", context

    def jobs_fragment_empty(self) -> tuple[str, dict[str, Any]]:
        return "_jobs_table.html", {"rows": [], "total": 0}

    def _job(self, job_id: str) -> dict[str, Any]:
        view = self.services.jobs.get(job_id)
        j = view.job
        detail = render_job(self.env, view)
        explain = self.rt.insight.explain(job_id).as_dict()
        # each attempt's reasons said once, and who it ran as
        explained = {
            a["number"]: {"why": a["why"], "ran_as": a["ran_as_text"]} for a in explain["attempts"]
        }
        up, down = self.dash.dependencies(view)
        usage = self._attempt_usage(view)
        container = detail.get("container") or {}
        env = list(container.get("environment") or [])
        env_names = {e.get("name") for e in env}
        env += [
            {"name": k, "value": v, "batchyard": True}
            for k, v in self._batch_env(view).items()
            if k not in env_names
        ]
        children = None
        if j.array_size is not None:
            statuses = self.dash.children(j, 10_000)
            children = {"statuses": statuses, "counts": j.array_counts or {}}
        parent = None
        if j.parent_seq is not None and view.parent is not None:
            parent = {"id": view.parent.id, "name": view.parent.name}
        nodes = None
        if j.num_nodes is not None:
            nodes = [
                self._row(v)
                for v in self.services.jobs.list(
                    queue=None,
                    array_job_id=None,
                    multi_node_job_id=j.id,
                    status=None,
                    filters=None,
                    max_results=None,
                    next_token=None,
                ).items
            ]
        return {
            "job": self._row(view),
            "detail": detail,
            "view": view,
            "timeline": self.dash.timeline(job_id),
            "attempts": [
                {**_attempt_dict(a), **explained.get(a.number, {}), "usage": usage.get(a.number)}
                for a in view.attempts
            ],
            "explain": explain,
            "up": up,
            "down": down,
            "environment": env,
            "command": container.get("command") or [],
            "parameters": detail.get("parameters") or {},
            "children": children,
            "parent": parent,
            "nodes": nodes,
            "terminal": j.status in TERMINAL,
            "can_cancel": j.status.value in ("SUBMITTED", "PENDING", "RUNNABLE"),
        }

    def _batch_env(self, view: JobView) -> dict[str, str]:
        last = view.attempts[-1] if view.attempts else None
        return batch_environment(
            view.job.id,
            view.queue,
            last.compute_environment if last else None,
            last.number if last else None,
            view.job.array_index,
            view.parent.array_size if view.parent is not None else None,
        )

    def _attempt_usage(self, view: JobView) -> dict[int, dict[str, Any]]:
        from batchyard.store import jobs as repo

        with self.rt.store.read() as conn:
            rows = repo.attempts_of(conn, [view.job.seq])[view.job.seq]
        out = {}
        for r in rows:
            u = r.usage or {}
            if u:
                out[r.number] = {
                    "cpu_seconds": u.get("cgroup_cpu_seconds", u.get("cpu_seconds")),
                    "peak_mib": u.get(
                        "cgroup_peak_memory_mib",
                        u.get("tree_peak_memory_mib", u.get("max_rss_mib")),
                    ),
                    "wall_seconds": u.get("wall_seconds"),
                }
        return out

    def job(self, request: Request) -> tuple[str, dict[str, Any]]:
        job_id = request.path_params["job_id"]
        context = self._job(job_id)
        return "job.html", {
            "title": f"Job {context['job']['name']}",
            "done": request.query_params.get("done"),
            **context,
        }

    def job_fragment(self, request: Request) -> tuple[str, dict[str, Any]]:
        return "_job.html", self._job(request.path_params["job_id"])

    def stop_message(self, request: Request, form: dict[str, str]) -> str:
        job_id, what = request.path_params["job_id"], request.path_params["what"]
        view = self.services.jobs.get(job_id)
        if what == "cancel":
            return (
                f"Cancel job {view.job.name} ({job_id})? If it has not started it fails "
                "at once; a job that already started is not affected (use Terminate)."
            )
        return (
            f"Terminate job {view.job.name} ({job_id})? Its processes get SIGTERM, then "
            "SIGKILL after the grace period, and it ends FAILED without a retry."
        )

    def stop_job(self, request: Request, form: dict[str, str]) -> str:
        job_id, what = request.path_params["job_id"], request.path_params["what"]
        reason = (form.get("reason") or "").strip() or f"{what.title()}ed from the dashboard"
        self.services.jobs.get(job_id)  # unlike the API (AWS's rule), the page says "not found"
        if what == "cancel":
            self.services.jobs.cancel(job_id, reason)
        elif what == "terminate":
            self.services.jobs.terminate(job_id, reason)
        else:
            raise NotFound(f"no action {what!r}")
        return _job_url(job_id) + f"?done={what}"

    # ---- queues and compute environments ---------------------------------------------------

    def _queue(self, name: str) -> dict[str, Any]:
        queue = self.services.job_queues.get(name)
        status = self.rt.insight.status()
        info = next((q for q in status["queues"] if q["name"] == queue.name), None)
        ces = {c["name"]: c for c in status["compute_environments"]}
        head, _, used = self.services.jobs.snapshot(name)
        series = self.dash.series(PERIODS["24h"], 24, queue_id=queue.id)
        labels = [
            datetime.fromtimestamp((series.since + (i + 1) * series.width_ms) / 1000, UTC).strftime(
                "%H:%M"
            )
            for i in range(series.buckets)
        ]
        return {
            "queue": queue,
            "info": info,
            "environments": [
                ces.get(e.compute_environment, {"name": e.compute_environment})
                for e in sorted(queue.compute_environment_order, key=lambda e: e.order)
            ],
            "head": [
                {"id": j.id, "name": j.name, "reason": j.status_reason, "vcpus": j.vcpus}
                for j in head[:20]
            ],
            "vcpus_used": used,
            "running": [
                self._row(v) for v in self.dash.queue_jobs(queue.id, ["STARTING", "RUNNING"], 50)
            ],
            "recent": [
                self._row(v) for v in self.dash.queue_jobs(queue.id, ["SUCCEEDED", "FAILED"], 20)
            ],
            "throughput": charts.bars(
                labels,
                [("succeeded", "ok", series.succeeded), ("failed", "bad", series.failed)],
                f"Jobs of {queue.name} finished per hour, last 24 hours",
            ),
            "depth": charts.area(labels, series.depth, f"RUNNABLE jobs in {queue.name}"),
        }

    def queue(self, request: Request) -> tuple[str, dict[str, Any]]:
        context = self._queue(request.path_params["name"])
        return "queue.html", {"title": f"Queue {context['queue'].name}", **context}

    def queue_fragment(self, request: Request) -> tuple[str, dict[str, Any]]:
        return "_queue.html", self._queue(request.path_params["name"])

    def state_message(self, request: Request, form: dict[str, str]) -> str:
        kind = "job queue" if "/queues/" in request.url.path else "compute environment"
        name, state = request.path_params["name"], form.get("state", "")
        if state == "DISABLED":
            effect = (
                "It accepts no new jobs; jobs already in it still run."
                if kind == "job queue"
                else "It starts no new jobs; running jobs finish."
            )
            return f"Disable {kind} {name}? {effect}"
        return f"Enable {kind} {name}?"

    def queue_state(self, request: Request, form: dict[str, str]) -> str:
        name = request.path_params["name"]
        state = form.get("state", "")
        if state not in ("ENABLED", "DISABLED"):
            raise InvalidRequest("state must be ENABLED or DISABLED")
        self.services.job_queues.update(name, state=state)
        return "/ui/queues/" + quote(name, safe="")

    def _ce(self, name: str) -> dict[str, Any]:
        ce = self.services.compute_environments.get(name)
        status = self.rt.insight.status()
        info = next((c for c in status["compute_environments"] if c["name"] == ce.name), None)
        queues = [q for q in status["queues"] if ce.name in (q.get("compute_environments") or [])]
        cr = ce.compute_resources or {}
        rate = self.rt.usage.pricing.rate(ce.name, cr.get("instance_types"))
        return {
            "ce": ce,
            "info": info,
            "queues": queues,
            "running": [self._row(v) for v in self.dash.running_on(ce.name)],
            "rate": rate,
        }

    def ce(self, request: Request) -> tuple[str, dict[str, Any]]:
        context = self._ce(request.path_params["name"])
        return "ce.html", {"title": f"Compute environment {context['ce'].name}", **context}

    def ce_fragment(self, request: Request) -> tuple[str, dict[str, Any]]:
        return "_ce.html", self._ce(request.path_params["name"])

    def ce_state(self, request: Request, form: dict[str, str]) -> str:
        name = request.path_params["name"]
        state = form.get("state", "")
        if state not in ("ENABLED", "DISABLED"):
            raise InvalidRequest("state must be ENABLED or DISABLED")
        self.services.compute_environments.update(name, state=state)
        return "/ui/compute-environments/" + quote(name, safe="")

    # ---- usage and events ---------------------------------------------------------------------

    def usage(self, request: Request) -> tuple[str, dict[str, Any]]:
        q = request.query_params
        period = q.get("period", "7d")
        if period not in PERIODS:
            period = "7d"
        group_by = q.get("group", "queue")
        now = now_ms()
        since = parse_since(period, PERIODS[period], now)
        summary = self.rt.usage.summary(group_by, since, now)
        days = self.rt.usage.summary("day", now - PERIODS["30d"], now)
        by_day = {g["key"]: g for g in days["groups"]}
        labels, cost, waste = [], [], []
        for i in range(29, -1, -1):
            day = datetime.fromtimestamp((now - i * 86_400_000) / 1000, UTC).strftime("%Y-%m-%d")
            g = by_day.get(day)
            labels.append(day[5:])
            used = (g["cost"] - g["waste"]) if g else 0.0
            cost.append(max(0.0, used))
            waste.append(g["waste"] if g else 0.0)
        chart = charts.bars(
            labels,
            [("used", "ok", cost), ("reserved, unused", "waste", waste)],
            f"Cost per day ({self.rt.settings.currency}), last 30 days",
            fmt=charts.money_axis(_symbol(self.rt.settings.currency)),
            width=1200,
        )
        hints = [h.as_dict() for h in self.rt.usage.hints(since, now)]
        return "usage.html", {
            "title": "Usage and cost",
            "summary": summary,
            "period": period,
            "periods": list(PERIODS),
            "group": group_by,
            "groups": ["queue", "job_definition", "share_identifier", "compute_environment", "day"],
            "chart": chart,
            "hints": hints,
            "prices": self.rt.usage.pricing.default,
        }

    def events(self, _request: Request) -> tuple[str, dict[str, Any]]:
        from batchyard.events import webhooks as wh

        latest = self.rt.outbox.latest()
        return "events.html", {
            "title": "Events",
            "webhooks": wh.status(self.rt.store, self.rt.settings.webhooks, latest),
            "dead": wh.dead_letters(self.rt.store, None, 20),
            "latest": latest,
        }

    # ---- streams ----------------------------------------------------------------------------

    def _light(self, pos: Position, job: str | None, queue: str | None) -> list[Any]:
        rows = self.rt.outbox.read(pos, 500)
        if not rows:
            return []
        from sqlalchemy import text

        seqs = list({r.job_seq for r in rows})
        info: dict[int, tuple[str, str, int]] = {}
        with self.rt.store.read() as conn:
            for i in range(0, len(seqs), 500):
                chunk = seqs[i : i + 500]
                marks = ", ".join(f":s{k}" for k in range(len(chunk)))
                for seq, job_id, name, qid in conn.execute(
                    text(f"SELECT seq, id, name, queue_id FROM jobs WHERE seq IN ({marks})"),
                    {f"s{k}": s for k, s in enumerate(chunk)},
                ):
                    info[seq] = (job_id, name, qid)
            from batchyard.store import resources as res

            queues = {q.id: q.name for q in res.job_queues(conn)}
        out = []
        for r in rows:
            found = info.get(r.job_seq)
            if found is None:
                continue
            job_id, name, qid = found
            child = split_child_id(job_id)
            parent = child[0] if child else (job_id.split("#")[0] if "#" in job_id else None)
            if job is not None and job_id != job and parent != job:
                continue
            qname = queues.get(qid, "?")
            if queue is not None and qname != queue:
                continue
            out.append(
                (
                    r.id,
                    "transition",
                    {
                        "job": job_id,
                        "name": name,
                        "parent": parent,
                        "queue": qname,
                        "from": r.from_status,
                        "to": r.to_status,
                        "reason": r.reason,
                        "at": r.at,
                    },
                )
            )
        return out

    async def stream(self, request: Request) -> Response:
        after = last_event_id(request)
        start = (
            int(after)
            if after and after.isdigit()
            else await anyio.to_thread.run_sync(self.rt.outbox.latest)
        )
        pos = Position(start)
        job = request.query_params.get("job") or None
        queue = request.query_params.get("queue") or None

        def fetch(_cursor: Any) -> tuple[list[Any], Any]:
            return self._light(pos, job, queue), pos.id

        return sse(fetch, pos.id, self.rt.stopping)

    async def log_stream(self, request: Request) -> Response:
        """The job's output as it is written: the last lines of its latest attempt, then
        every new line; a new attempt (a retry) switches to its stream."""
        job_id = request.path_params["job_id"]
        resume = last_event_id(request)
        state: dict[str, Any] = {"stream": None, "token": None, "ended": False}
        if resume and "|" in resume:
            state["stream"], state["token"] = resume.split("|", 1)

        def fetch(cursor: Any) -> tuple[list[Any], Any]:
            view = self.services.jobs.get(job_id)
            if not view.attempts:
                return [], cursor
            latest = view.attempts[-1]
            items: list[Any] = []
            try:
                if state["stream"] != latest.log_stream:
                    page = self.rt.logs_service.events(latest.log_stream, limit=200)
                    items.append(
                        (None, "attempt", {"number": latest.number, "stream": latest.log_stream})
                    )
                    state["stream"] = latest.log_stream
                else:
                    page = self.rt.logs_service.events(
                        latest.log_stream, next_token=state["token"], limit=1000
                    )
            except NotFound:  # the attempt has not written anything yet
                return items, cursor
            state["token"] = page.forward
            cursor = f"{state['stream']}|{state['token']}"
            if page.events:
                items.append(
                    (
                        cursor,
                        "lines",
                        [{"t": e.timestamp, "m": e.message} for e in page.events],
                    )
                )
            elif view.job.status in TERMINAL and not state["ended"]:
                state["ended"] = True
                items.append((cursor, "end", {"status": view.job.status.value}))
            return items, cursor

        return sse(fetch, resume, self.rt.stopping, poll=0.25)

    # ---- routes -----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        static = StaticFiles(packages=[("batchyard.ui", "static")])
        return [
            Route("/ui", self.page(self.overview), methods=["GET"]),
            Route("/ui/", lambda r: RedirectResponse("/ui", status_code=307), methods=["GET"]),
            Mount("/ui/static", app=static, name="static"),
            Route("/ui/stream", self.stream, methods=["GET"]),
            Route("/ui/fragments/overview", self.page(self.overview_fragment), methods=["GET"]),
            Route("/ui/jobs", self.page(self.jobs), methods=["GET"]),
            Route("/ui/fragments/jobs", self.page(self.jobs_fragment), methods=["GET"]),
            Route("/ui/jobs/{job_id}", self.page(self.job), methods=["GET"]),
            Route("/ui/jobs/{job_id}/log", self.log_stream, methods=["GET"]),
            Route(
                "/ui/jobs/{job_id}/{what}",
                self.action(self.stop_job, self.stop_message),
                methods=["POST"],
            ),
            Route("/ui/fragments/job/{job_id}", self.page(self.job_fragment), methods=["GET"]),
            Route("/ui/queues/{name}", self.page(self.queue), methods=["GET"]),
            Route(
                "/ui/queues/{name}/state",
                self.action(self.queue_state, self.state_message),
                methods=["POST"],
            ),
            Route("/ui/fragments/queue/{name}", self.page(self.queue_fragment), methods=["GET"]),
            Route("/ui/compute-environments/{name}", self.page(self.ce), methods=["GET"]),
            Route(
                "/ui/compute-environments/{name}/state",
                self.action(self.ce_state, self.state_message),
                methods=["POST"],
            ),
            Route("/ui/fragments/ce/{name}", self.page(self.ce_fragment), methods=["GET"]),
            Route("/ui/usage", self.page(self.usage), methods=["GET"]),
            Route("/ui/events", self.page(self.events), methods=["GET"]),
        ]


def _attempt_dict(a: Any) -> dict[str, Any]:
    return {
        "number": a.number,
        "compute_environment": a.compute_environment,
        "status": a.status,
        "started_at": a.started_at,
        "stopped_at": a.stopped_at,
        "exit_code": a.exit_code,
        "reason": a.reason,
        "status_reason": a.status_reason,
        "log_stream": a.log_stream,
    }
