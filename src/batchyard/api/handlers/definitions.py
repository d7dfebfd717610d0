"""Job definitions."""

from __future__ import annotations

from typing import Any

from batchyard.api.operations import Env, operation
from batchyard.domain.resources import JobDefinition

JD, CR = "job-definition", "consumable-resource"


def render_job_definition(env: Env, jd: JobDefinition) -> dict[str, Any]:
    container_kind = "EKS" if jd.spec.get("eks_properties") else "ECS"
    return {
        **jd.spec,
        "job_definition_name": jd.name,
        "job_definition_arn": env.arns.arn(JD, jd.ref),
        "revision": jd.revision,
        "status": jd.status,
        "type": jd.type,
        "tags": jd.tags,
        "container_orchestration_type": container_kind,
    }


def consumables_by_name(env: Env, props: dict[str, Any] | None, field: str) -> None:
    """Consumable resources may be named by ARN; below the edge they are names."""
    for i, req in enumerate((props or {}).get("consumable_resource_list") or []):
        ref = req.get("consumable_resource")
        if ref is not None:
            req["consumable_resource"] = env.arns.ref(
                ref, CR, f"{field}.consumableResourceList[{i}].consumableResource"
            )


@operation("RegisterJobDefinition")
def register_job_definition(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    name = req.pop("job_definition_name")
    consumables_by_name(
        env, req.get("consumable_resource_properties"), "consumableResourceProperties"
    )
    for i, r in enumerate((req.get("node_properties") or {}).get("node_range_properties") or []):
        consumables_by_name(
            env, r.get("consumable_resource_properties"), f"nodeRangeProperties[{i}]"
        )
    jd = env.services.job_definitions.register(name=name, **req)
    return {
        "job_definition_name": jd.name,
        "job_definition_arn": env.arns.arn(JD, jd.ref),
        "revision": jd.revision,
    }


@operation("DeregisterJobDefinition")
def deregister_job_definition(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    env.services.job_definitions.deregister(
        env.arns.ref(req["job_definition"], JD, "jobDefinition")
    )
    return {}


@operation("DescribeJobDefinitions")
def describe_job_definitions(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    refs = req.get("job_definitions")
    if refs is not None:
        refs = [env.arns.ref(r, JD, "jobDefinitions") for r in refs]
    page = env.services.job_definitions.describe(
        refs,
        req.get("job_definition_name"),
        req.get("status"),
        req.get("max_results"),
        req.get("next_token"),
    )
    return {
        "job_definitions": [render_job_definition(env, jd) for jd in page.items],
        "next_token": page.next_token,
    }
