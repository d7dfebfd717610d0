"""The CloudWatch Logs–compatible endpoint (JSON 1.1: ``POST /`` with ``X-Amz-Target``), so
``boto3.client("logs", endpoint_url=...)`` and ``aws logs ... --endpoint-url`` read job output.
Its ARNs are of the region the request was signed for, like the AWS Batch API's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import orjson
from starlette.responses import Response

from batchyard.api.arns import Arns
from batchyard.api.casing import to_domain, to_wire
from batchyard.api.model import logs_model
from batchyard.api.validation import validate
from batchyard.errors import (
    AuthError,
    BatchyardError,
    InvalidRequest,
    NotFound,
    NotSupported,
    Throttled,
)
from batchyard.logs.store import GROUP
from batchyard.service.logs import Logs, check_group

TARGET_PREFIX = "Logs_20140328."
_CODES = {NotFound: "ResourceNotFoundException", NotSupported: "InvalidOperationException"}


def _code(err: BatchyardError) -> str:
    if isinstance(err, AuthError | Throttled):  # AWS's own codes, whatever the service
        return err.code
    for kind, code in _CODES.items():
        if isinstance(err, kind):
            return code
    return "InvalidParameterException" if err.status < 500 else "ServiceUnavailableException"


def error_response(err: BatchyardError) -> Response:
    code = _code(err)
    own = isinstance(err, AuthError | Throttled)  # 403 and 429 stay what they are
    return Response(
        orjson.dumps({"__type": code, "message": err.message}),
        status_code=err.status if own else 400 if err.status < 500 else 500,
        media_type="application/x-amz-json-1.1",
        headers={"x-amzn-ErrorType": code},
    )


def _event(e: Any) -> dict[str, Any]:
    return {"timestamp": e.timestamp, "message": e.message, "ingestion_time": e.timestamp}


def _group_arn(arns: Arns) -> str:
    return arns.of("logs", f"log-group:{GROUP}")


def _check_group(req: dict[str, Any], arns: Arns) -> None:
    """The log group, by name or (``logGroupIdentifier``) by ARN, which must be of the
    request's region and the server's account."""
    group = req.get("log_group_name") or req.get("log_group_identifier")
    if group is not None and group.startswith("arn:"):
        own = _group_arn(arns)
        if group.removesuffix(":*") != own:
            raise NotFound(f"log group {group!r} does not exist; batchyard's log group is {own}")
        return
    check_group(group)


def get_log_events(logs: Logs, req: dict[str, Any], arns: Arns) -> dict[str, Any]:
    _check_group(req, arns)
    page = logs.events(
        req["log_stream_name"],
        start_from_head=bool(req.get("start_from_head")),
        next_token=req.get("next_token"),
        limit=req.get("limit"),
        start_time=req.get("start_time"),
        end_time=req.get("end_time"),
    )
    return {
        "events": [_event(e) for e in page.events],
        "next_forward_token": page.forward,
        "next_backward_token": page.backward,
    }


def describe_log_streams(logs: Logs, req: dict[str, Any], arns: Arns) -> dict[str, Any]:
    _check_group(req, arns)
    if req.get("order_by") == "LastEventTime" and req.get("log_stream_name_prefix"):
        raise InvalidRequest("orderBy LastEventTime cannot be combined with logStreamNamePrefix")
    streams, token = logs.streams(
        req.get("log_stream_name_prefix"),
        req.get("next_token"),
        req.get("limit"),
        bool(req.get("descending")),
    )
    return {
        "log_streams": [
            {
                "log_stream_name": s.name,
                "arn": f"{_group_arn(arns)}:log-stream:{s.name}",
                "creation_time": s.created_at,
                "first_event_timestamp": s.first_event,
                "last_event_timestamp": s.last_event,
                "last_ingestion_time": s.last_event,
                "stored_bytes": s.stored_bytes,
            }
            for s in streams
        ],
        "next_token": token,
    }


def filter_log_events(logs: Logs, req: dict[str, Any], arns: Arns) -> dict[str, Any]:
    _check_group(req, arns)
    found, searched, token = logs.filter(
        names=req.get("log_stream_names"),
        prefix=req.get("log_stream_name_prefix"),
        pattern=req.get("filter_pattern"),
        start_time=req.get("start_time"),
        end_time=req.get("end_time"),
        limit=req.get("limit"),
        next_token=req.get("next_token"),
    )
    return {
        "events": [
            {**_event(e), "log_stream_name": name, "event_id": f"{e.offset}"} for name, e in found
        ],
        "searched_log_streams": [
            {"log_stream_name": n, "searched_completely": True} for n in searched
        ],
        "next_token": token,
    }


def describe_log_groups(logs: Logs, req: dict[str, Any], arns: Arns) -> dict[str, Any]:
    prefix = req.get("log_group_name_prefix") or ""
    group = {
        "log_group_name": GROUP,
        "creation_time": 0,
        "arn": f"{_group_arn(arns)}:*",  # AWS: the group's ARN with ":*"; logGroupArn without
        "log_group_arn": _group_arn(arns),
    }
    return {"log_groups": [group] if GROUP.startswith(prefix) else []}


HANDLERS: dict[str, Callable[[Logs, dict[str, Any], Arns], dict[str, Any]]] = {
    "GetLogEvents": get_log_events,
    "DescribeLogStreams": describe_log_streams,
    "FilterLogEvents": filter_log_events,
    "DescribeLogGroups": describe_log_groups,
}


async def handle(
    logs: Logs,
    target: str,
    body: bytes,
    check: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
    *,
    arns: Arns,
) -> Response:
    """One CloudWatch Logs call; errors come back in that protocol's own shape. ``check``
    authorizes the parsed operation (docs/security.md); ``arns`` are the request's region's."""
    try:
        name = target[len(TARGET_PREFIX) :]
        model = logs_model()
        if name not in model.operation_names:
            raise InvalidRequest(f"{target} is not a CloudWatch Logs operation")
        handler = HANDLERS.get(name)
        if handler is None:
            raise NotSupported(
                f"{name} is not supported: batchyard serves GetLogEvents, DescribeLogStreams, "
                "FilterLogEvents and DescribeLogGroups for job output"
            )
        op = model.operation_model(name)
        try:
            params = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError as e:
            raise InvalidRequest(f"the request body is not valid JSON: {e}") from None
        if not isinstance(params, dict):
            raise InvalidRequest("the request body must be a JSON object")
        validate(params, op.input_shape, name, every_limit=True)
        req = to_domain(params, op.input_shape)
        if check is not None:
            await check(name, req)
        result = await anyio.to_thread.run_sync(handler, logs, req, arns)
        return Response(
            orjson.dumps(to_wire(result, op.output_shape)),
            media_type="application/x-amz-json-1.1",
        )
    except BatchyardError as e:
        return error_response(e)
