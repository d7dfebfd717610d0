"""TagResource, UntagResource, ListTagsForResource."""

from __future__ import annotations

from typing import Any

from batchyard.api.operations import Env, operation


def _target(env: Env, req: dict[str, Any]) -> tuple[str, str]:
    arn = env.arns.parse(req["resource_arn"], "resourceArn")
    return arn.kind, arn.resource


@operation("TagResource")
def tag_resource(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    env.services.tags.tag(*_target(env, req), req["tags"])
    return {}


@operation("UntagResource")
def untag_resource(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    env.services.tags.untag(*_target(env, req), req["tag_keys"])
    return {}


@operation("ListTagsForResource")
def list_tags_for_resource(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    return {"tags": env.services.tags.list(*_target(env, req))}
