"""Scheduling policies and consumable resources."""

from __future__ import annotations

from typing import Any

from batchyard.api.operations import Env, operation
from batchyard.domain.resources import ConsumableResource, SchedulingPolicy

SP, CR = "scheduling-policy", "consumable-resource"


def render_scheduling_policy(env: Env, p: SchedulingPolicy) -> dict[str, Any]:
    return {**p.spec, "name": p.name, "arn": env.arns.arn(SP, p.name), "tags": p.tags}


def render_consumable_resource(env: Env, cr: ConsumableResource) -> dict[str, Any]:
    return {
        "consumable_resource_name": cr.name,
        "consumable_resource_arn": env.arns.arn(CR, cr.name),
        "total_quantity": cr.total_quantity,
        "in_use_quantity": cr.in_use_quantity,
        "available_quantity": cr.available_quantity,
        "resource_type": cr.resource_type,
        "created_at": cr.created_at,
        "tags": cr.tags,
    }


@operation("CreateSchedulingPolicy")
def create_scheduling_policy(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    p = env.services.scheduling_policies.create(**req)
    return {"name": p.name, "arn": env.arns.arn(SP, p.name)}


@operation("UpdateSchedulingPolicy")
def update_scheduling_policy(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    name = env.arns.ref(req.pop("arn"), SP, "arn")
    env.services.scheduling_policies.update(name, **req)
    return {}


@operation("DeleteSchedulingPolicy")
def delete_scheduling_policy(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    env.services.scheduling_policies.delete(env.arns.ref(req["arn"], SP, "arn"))
    return {}


@operation("DescribeSchedulingPolicies")
def describe_scheduling_policies(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    names = [env.arns.ref(a, SP, "arns") for a in req["arns"]]
    policies = env.services.scheduling_policies.describe(names)
    return {"scheduling_policies": [render_scheduling_policy(env, p) for p in policies]}


@operation("ListSchedulingPolicies")
def list_scheduling_policies(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    page = env.services.scheduling_policies.list(req.get("max_results"), req.get("next_token"))
    return {
        "scheduling_policies": [{"arn": env.arns.arn(SP, p.name)} for p in page.items],
        "next_token": page.next_token,
    }


@operation("CreateConsumableResource")
def create_consumable_resource(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    cr = env.services.consumable_resources.create(name=req.pop("consumable_resource_name"), **req)
    return {
        "consumable_resource_name": cr.name,
        "consumable_resource_arn": env.arns.arn(CR, cr.name),
    }


@operation("UpdateConsumableResource")
def update_consumable_resource(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    name = env.arns.ref(req.pop("consumable_resource"), CR, "consumableResource")
    cr = env.services.consumable_resources.update(
        name,
        operation=req.get("operation"),
        quantity=req.get("quantity"),
        client_token=req.get("client_token"),
    )
    return {
        "consumable_resource_name": cr.name,
        "consumable_resource_arn": env.arns.arn(CR, cr.name),
        "total_quantity": cr.total_quantity,
    }


@operation("DeleteConsumableResource")
def delete_consumable_resource(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    env.services.consumable_resources.delete(
        env.arns.ref(req["consumable_resource"], CR, "consumableResource")
    )
    return {}


@operation("DescribeConsumableResource")
def describe_consumable_resource(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    name = env.arns.ref(req["consumable_resource"], CR, "consumableResource")
    return render_consumable_resource(env, env.services.consumable_resources.get(name))


@operation("ListConsumableResources")
def list_consumable_resources(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    page = env.services.consumable_resources.list(
        req.get("filters"), req.get("max_results"), req.get("next_token")
    )
    summaries = []
    for cr in page.items:
        full = render_consumable_resource(env, cr)
        for key in ("available_quantity", "created_at", "tags"):
            full.pop(key)
        summaries.append(full)
    return {"consumable_resources": summaries, "next_token": page.next_token}
