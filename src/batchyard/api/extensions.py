"""batchyard's own endpoints beside the AWS API, under ``/batchyard/v1/``: what AWS Batch has
no operation for. JSON in camelCase like the AWS API, errors in the same AWS shape.

    GET /batchyard/v1/status                 queues with job counts, compute environments
                                             with capacity and use
    GET /batchyard/v1/jobs/{jobId}/explain   why the job is where it is
    GET /batchyard/v1/jobs/{jobId}/history   its status transitions (time, from, to, reason)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.api.protocol import error_response
from batchyard.errors import BatchyardError
from batchyard.service.insight import Insight

PREFIX = "/batchyard/v1"


def camel(value: Any) -> Any:
    """snake_case keys -> camelCase, recursively (keys only; values are left alone)."""
    if isinstance(value, dict):
        return {_camel_key(k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def _camel_key(key: str) -> str:
    if "_" not in key or key.isupper():
        return key
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def routes(insight: Insight) -> list[Route]:
    def endpoint(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            try:
                result = await anyio.to_thread.run_sync(fn, request)
            except BatchyardError as e:
                return error_response(e)
            return Response(orjson.dumps(camel(result)), media_type="application/json")

        return handle

    return [
        Route(f"{PREFIX}/status", endpoint(lambda r: insight.status()), methods=["GET"]),
        Route(
            f"{PREFIX}/jobs/{{job_id}}/explain",
            endpoint(lambda r: insight.explain(r.path_params["job_id"]).as_dict()),
            methods=["GET"],
        ),
        Route(
            f"{PREFIX}/jobs/{{job_id}}/history",
            endpoint(lambda r: {"transitions": insight.history(r.path_params["job_id"])}),
            methods=["GET"],
        ),
    ]
