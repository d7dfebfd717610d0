"""Strict checks of what the server sends: every field in the model's output shape, every
required field present, every value of the right type. botocore's parser silently drops
fields it does not know, so the check reads the raw body, before parsing."""

from __future__ import annotations

from typing import Any

import orjson
from botocore.exceptions import IncompleteReadError
from botocore.model import Shape

_TYPES = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "float": (int, float),
    "double": (int, float),
}


# Fields the model marks required that AWS itself leaves out: a job that has not started has
# no startedAt (AWS omits it too, whatever the model says).
OPTIONAL_IN_PRACTICE = {("JobDetail", "startedAt")}


def problems(value: Any, shape: Shape, path: str = "") -> list[str]:
    t = shape.type_name
    out: list[str] = []
    if t == "structure":
        if not isinstance(value, dict):
            return [f"{path or '.'}: expected an object, got {type(value).__name__}"]
        for req in shape.required_members:
            if req not in value and (shape.name, req) not in OPTIONAL_IN_PRACTICE:
                out.append(f"{path}.{req}: required field missing")
        for k, v in value.items():
            member = shape.members.get(k)
            if member is None:
                out.append(f"{path}.{k}: not a field of {shape.name}")
            else:
                out += problems(v, member, f"{path}.{k}")
    elif t == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        for i, v in enumerate(value):
            out += problems(v, shape.member, f"{path}[{i}]")
    elif t == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map"]
        for k, v in value.items():
            out += problems(v, shape.value, f"{path}.{k}")
    elif t in _TYPES:
        ok = isinstance(value, _TYPES[t]) and not (t != "boolean" and isinstance(value, bool))
        if not ok:
            out.append(f"{path}: expected {t}, got {value!r}")
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            out.append(f"{path}: {value!r} is not one of {enum}")
    return out


def check_response(http_response: Any, model: Any, **_: Any) -> None:
    """botocore ``after-call`` hook: fail the call if the raw response breaks the model.

    A body shorter than its Content-Length is a connection cut mid-response (the fault tests
    kill the server between its status line and its body). botocore does not check the
    length and would hand back an empty result; here it is the transport error it is."""
    status = http_response.status_code
    declared = http_response.headers.get("content-length")
    if declared is not None and declared.isdigit() and len(http_response.content) < int(declared):
        raise IncompleteReadError(
            actual_bytes=len(http_response.content), expected_bytes=int(declared)
        )
    body = orjson.loads(http_response.content) if http_response.content else {}
    if status >= 400:
        assert http_response.headers.get("x-amzn-ErrorType"), "error without x-amzn-ErrorType"
        assert isinstance(body.get("message"), str) and body["message"], "error without message"
        assert "Traceback" not in body["message"], body["message"]
        return
    if model.output_shape is not None:
        found = problems(body, model.output_shape)
        assert not found, f"{model.name} response breaks the model: {found}"
