"""Usage and cost endpoints under ``/batchyard/v1`` (see service/usage.py for the figures):

    GET /batchyard/v1/usage?groupBy=queue&since=7d&until=...   totals per group (JSON; or
                                                            format=csv)
    GET /batchyard/v1/usage/attempts?since=7d                 one record per attempt
    GET /batchyard/v1/usage/hints?since=7d&minAttempts=3      right-sizing hints

``since`` and ``until`` take ``7d``/``12h``/``30m`` (before now), epoch milliseconds or ISO
8601; the default period is the last 7 days. ``groupBy``: queue, job_definition,
share_identifier, day, compute_environment, job or tag:<key>.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.api.extensions import PREFIX, _camel_key
from batchyard.api.protocol import error_response
from batchyard.domain.clock import now_ms
from batchyard.errors import BatchyardError, InvalidRequest
from batchyard.service.usage import Usage, parse_since

WEEK_MS = 7 * 86_400_000


def period(request: Request) -> tuple[int, int]:
    now = now_ms()
    q = request.query_params
    since = parse_since(q.get("since"), WEEK_MS, now)
    until = parse_since(q.get("until"), 0, now) if q.get("until") else now
    return since, until


def camel(value: Any) -> Any:
    """snake_case keys -> camelCase; a ``tags`` map is user data and keeps its keys."""
    if isinstance(value, dict):
        return {_camel_key(k): (v if k == "tags" else camel(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def csv_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def routes(usage: Usage) -> list[Route]:
    def endpoint(fn: Any) -> Any:
        async def handle(request: Request) -> Response:
            try:
                fmt = request.query_params.get("format", "json")
                if fmt not in ("json", "csv"):
                    raise InvalidRequest(f"format {fmt!r}: use json or csv")
                result, rows = await anyio.to_thread.run_sync(fn, request)
            except BatchyardError as e:
                return error_response(e)
            if fmt == "csv":
                return Response(csv_text(rows), media_type="text/csv")
            return Response(orjson.dumps(camel(result)), media_type="application/json")

        return handle

    def summary(request: Request) -> tuple[Any, list[dict[str, Any]]]:
        since, until = period(request)
        group_by = request.query_params.get("groupBy", "queue")
        result = usage.summary(group_by, since, until)
        return result, result["groups"]

    def attempts(request: Request) -> tuple[Any, list[dict[str, Any]]]:
        since, until = period(request)
        rows = [a.as_dict() for a in usage.attempts(since, until)]
        flat = [{**r, "tags": orjson.dumps(r["tags"]).decode()} for r in rows]
        return {"since": since, "until": until, "attempts": rows}, flat

    def hints(request: Request) -> tuple[Any, list[dict[str, Any]]]:
        since, until = period(request)
        least = request.query_params.get("minAttempts", "3")
        if not least.isdigit() or int(least) < 1:
            raise InvalidRequest("minAttempts must be a positive integer")
        found = [h.as_dict() for h in usage.hints(since, until, int(least))]
        return {"since": since, "until": until, "hints": found}, found

    return [
        Route(f"{PREFIX}/usage", endpoint(summary), methods=["GET"]),
        Route(f"{PREFIX}/usage/attempts", endpoint(attempts), methods=["GET"]),
        Route(f"{PREFIX}/usage/hints", endpoint(hints), methods=["GET"]),
    ]
