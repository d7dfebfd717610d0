"""Compute environments and job queues."""

from __future__ import annotations

from typing import Any

from batchyard.api import instance_types
from batchyard.api.operations import Env, operation
from batchyard.domain.resources import ComputeEnvironment, JobQueue

CE, JQ, SP = "compute-environment", "job-queue", "scheduling-policy"


def render_compute_environment(env: Env, ce: ComputeEnvironment) -> dict[str, Any]:
    return {
        **ce.spec,
        "compute_environment_name": ce.name,
        "compute_environment_arn": env.arns.arn(CE, ce.name),
        "tags": ce.tags,
        "type": ce.type,
        "state": ce.state,
        "status": ce.status,
        "status_reason": ce.status_reason,
        "uuid": ce.uuid,
        "container_orchestration_type": "EKS" if ce.spec.get("eks_configuration") else "ECS",
    }


def render_job_queue(env: Env, q: JobQueue) -> dict[str, Any]:
    return {
        "job_queue_name": q.name,
        "job_queue_arn": env.arns.arn(JQ, q.name),
        "state": q.state,
        "scheduling_policy_arn": env.arns.arn(SP, q.scheduling_policy)
        if q.scheduling_policy
        else None,
        "status": q.status,
        "status_reason": q.status_reason,
        "priority": q.priority,
        "compute_environment_order": [
            {"order": e.order, "compute_environment": env.arns.arn(CE, e.compute_environment)}
            for e in q.compute_environment_order
        ],
        "job_queue_type": q.spec.get("job_queue_type"),
        "tags": q.tags,
        "job_state_time_limit_actions": q.job_state_time_limit_actions or None,
    }


@operation("CreateComputeEnvironment")
def create_compute_environment(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    name = req.pop("compute_environment_name")
    instance_types.check(req.get("compute_resources"))
    ce = env.services.compute_environments.create(name=name, **req)
    return {
        "compute_environment_name": ce.name,
        "compute_environment_arn": env.arns.arn(CE, ce.name),
    }


@operation("UpdateComputeEnvironment")
def update_compute_environment(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    name = env.arns.ref(req.pop("compute_environment"), CE, "computeEnvironment")
    instance_types.check(req.get("compute_resources"))
    ce = env.services.compute_environments.update(name, **req)
    return {
        "compute_environment_name": ce.name,
        "compute_environment_arn": env.arns.arn(CE, ce.name),
    }


@operation("DeleteComputeEnvironment")
def delete_compute_environment(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    name = env.arns.ref(req["compute_environment"], CE, "computeEnvironment")
    env.services.compute_environments.delete(name)
    return {}


@operation("DescribeComputeEnvironments")
def describe_compute_environments(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    refs = req.get("compute_environments")
    names = None if refs is None else [env.arns.ref(r, CE, "computeEnvironments") for r in refs]
    page = env.services.compute_environments.describe(
        names, req.get("max_results"), req.get("next_token")
    )
    return {
        "compute_environments": [render_compute_environment(env, ce) for ce in page.items],
        "next_token": page.next_token,
    }


def _queue_args(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    order = req.pop("compute_environment_order", None)
    if order is not None:
        req["compute_environment_order"] = [
            {
                "order": e["order"],
                "compute_environment": env.arns.ref(
                    e["compute_environment"], CE, f"computeEnvironmentOrder[{i}].computeEnvironment"
                ),
            }
            for i, e in enumerate(order)
        ]
    policy = req.pop("scheduling_policy_arn", None)
    if policy is not None:
        req["scheduling_policy"] = env.arns.ref(policy, SP, "schedulingPolicyArn")
    return req


@operation("CreateJobQueue")
def create_job_queue(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    name = req.pop("job_queue_name")
    req = _queue_args(env, req)
    req.setdefault("compute_environment_order", None)
    q = env.services.job_queues.create(name=name, **req)
    return {"job_queue_name": q.name, "job_queue_arn": env.arns.arn(JQ, q.name)}


@operation("UpdateJobQueue")
def update_job_queue(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    name = env.arns.ref(req.pop("job_queue"), JQ, "jobQueue")
    q = env.services.job_queues.update(name, **_queue_args(env, req))
    return {"job_queue_name": q.name, "job_queue_arn": env.arns.arn(JQ, q.name)}


@operation("DeleteJobQueue")
def delete_job_queue(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    env.services.job_queues.delete(env.arns.ref(req["job_queue"], JQ, "jobQueue"))
    return {}


@operation("DescribeJobQueues")
def describe_job_queues(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    refs = req.get("job_queues")
    names = None if refs is None else [env.arns.ref(r, JQ, "jobQueues") for r in refs]
    page = env.services.job_queues.describe(names, req.get("max_results"), req.get("next_token"))
    return {
        "job_queues": [render_job_queue(env, q) for q in page.items],
        "next_token": page.next_token,
    }
