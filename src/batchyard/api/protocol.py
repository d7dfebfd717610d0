"""AWS REST-JSON on the server side: route, parse, validate, serialize, and shape errors.

Everything here is driven by botocore's service model: the routes are the operations'
``requestUri``s, the input shapes validate requests and the output shapes serialize answers,
so the server speaks exactly the protocol the clients were generated from.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
from botocore.model import OperationModel, ServiceModel
from starlette.responses import Response

from batchyard.api.casing import to_domain, to_wire
from batchyard.api.validation import validate
from batchyard.errors import BatchyardError, InvalidRequest, UnknownRoute

log = logging.getLogger("batchyard.api")
_LABEL = re.compile(r"\{([A-Za-z0-9_]+)(\+?)\}")
# AWS Batch's service quotas: "Maximum job payload size (for SubmitJob API operations) 30 KiB"
# and "Maximum job definition size (for RegisterJobDefinition API operations) 24 KiB".
PAYLOAD_LIMITS = {"SubmitJob": 30 * 1024, "RegisterJobDefinition": 24 * 1024}


@dataclass(frozen=True, slots=True)
class _Template:
    regex: re.Pattern[str]
    labels: tuple[str, ...]
    method: str
    operation: OperationModel


class Router:
    """Maps ``(method, raw path)`` to an operation and its URI labels."""

    def __init__(self, model: ServiceModel) -> None:
        self.static: dict[str, dict[str, OperationModel]] = {}
        self.templates: list[_Template] = []
        for name in model.operation_names:
            op = model.operation_model(name)
            uri = op.http["requestUri"].split("?", 1)[0]
            method = op.http["method"]
            labels = _LABEL.findall(uri)
            if not labels:
                self.static.setdefault(uri, {})[method] = op
                continue
            pattern = "^"
            pos = 0
            for m in _LABEL.finditer(uri):
                pattern += re.escape(uri[pos : m.start()])
                pattern += "(.+)" if m.group(2) else "([^/]+)"
                pos = m.end()
            pattern += re.escape(uri[pos:]) + "/?$"
            self.templates.append(
                _Template(re.compile(pattern), tuple(lb for lb, _ in labels), method, op)
            )

    def match(self, method: str, raw_path: str) -> tuple[OperationModel, dict[str, str]]:
        path = raw_path.rstrip("/") or "/"
        by_method = self.static.get(path)
        if by_method is not None:
            op = by_method.get(method)
            if op is None:
                raise UnknownRoute(
                    f"{path} accepts {', '.join(sorted(by_method))}, not {method}", status=405
                )
            return op, {}
        allowed = []
        for t in self.templates:
            m = t.regex.match(raw_path)
            if m is None:
                continue
            if t.method != method:
                allowed.append(t.method)
                continue
            return t.operation, {lb: unquote(v) for lb, v in zip(t.labels, m.groups(), strict=True)}
        if allowed:
            raise UnknownRoute(
                f"{path} accepts {', '.join(sorted(allowed))}, not {method}", status=405
            )
        raise UnknownRoute(
            f"no AWS Batch operation is served at {path}; the API lives under /v1/ "
            "(point your client's endpoint_url at this server's root URL)"
        )


def request_id() -> str:
    """A UUID-shaped id for ``x-amzn-RequestId``: it only tells one answer from another, so
    it comes from ``random`` (uuid4 reads the kernel's entropy on every call)."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_request(
    op: OperationModel, body: bytes, path_params: dict[str, str], query: str
) -> dict[str, Any]:
    """Body, URI labels and query string -> a validated request in snake_case."""
    params: Any = {}
    if body.strip():
        try:
            params = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise InvalidRequest(f"the request body is not valid JSON: {e}") from None
        if not isinstance(params, dict):
            raise InvalidRequest("the request body must be a JSON object")
        _check_payload(op.name, body, params)
    shape = op.input_shape
    if shape is None:
        return {}
    qs = parse_qs(query, keep_blank_values=True) if query else {}
    for name, member in shape.members.items():
        loc = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if loc == "uri" and wire in path_params:
            params[name] = path_params[wire]
        elif loc == "querystring" and wire in qs:
            values = qs[wire]
            params[name] = values if member.type_name == "list" else values[-1]
    validate(params, shape, op.name)
    return to_domain(params, shape)


def _check_payload(operation: str, body: bytes, params: dict[str, Any]) -> None:
    """AWS's payload quotas, measured on the request's compact JSON (UTF-8, no insignificant
    whitespace), so a pretty-printed body is not held against its sender."""
    limit = PAYLOAD_LIMITS.get(operation)
    if limit is None or len(body) <= limit:
        return
    size = len(orjson.dumps(params))
    if size <= limit:
        return
    what = "job payload" if operation == "SubmitJob" else "job definition"
    raise InvalidRequest(
        f"the {operation} request is {size:,} bytes ({size / 1024:.1f} KiB); AWS Batch limits "
        f"a {what} to {limit // 1024} KiB ({limit:,} bytes), so this request would fail on "
        "AWS too. Pass large inputs through a file or an S3 object and give its location in "
        "parameters or the command, rather than the data itself"
    )


def response(op: OperationModel, result: dict[str, Any]) -> Response:
    body = to_wire(result, op.output_shape) if op.output_shape is not None else {}
    return Response(
        orjson.dumps(body),
        media_type="application/json",
        headers={"x-amzn-RequestId": request_id()},
    )


def error_response(err: BatchyardError) -> Response:
    return Response(
        orjson.dumps({"__type": err.code, "message": err.message}),
        status_code=err.status,
        media_type="application/json",
        headers={"x-amzn-ErrorType": err.code, "x-amzn-RequestId": request_id()},
    )
