"""SubmitJob, DescribeJobs, ListJobs, Cancel/Terminate (single and bulk), GetJobQueueSnapshot."""

from __future__ import annotations

from typing import Any

from batchyard.api.operations import Env, operation
from batchyard.service.jobs import JobView
from batchyard.service.submit import Submission

JOB, JQ, JD = "job", "job-queue", "job-definition"


def _last_container(view: JobView) -> dict[str, Any]:
    last = view.attempts[-1] if view.attempts else None
    if last is None:
        return {}
    return {"exit_code": last.exit_code, "reason": last.reason, "log_stream_name": last.log_stream}


def _array_properties(view: JobView) -> dict[str, Any] | None:
    j = view.job
    if j.array_size is not None:
        return {
            "size": j.array_size,
            "status_summary": j.array_counts,
            "status_summary_last_updated_at": j.updated_at,
        }
    if j.array_index is not None:
        return {"index": j.array_index}
    return None


def _node_details(view: JobView) -> dict[str, Any] | None:
    if view.job.node_index is None:
        return None
    main = (view.spec.get("node_properties") or {}).get("main_node", 0)
    return {"node_index": view.job.node_index, "is_main_node": view.job.node_index == main}


def _node_summary(view: JobView) -> dict[str, Any] | None:
    j = view.job
    if j.num_nodes is not None:
        return {"num_nodes": j.num_nodes}
    details = _node_details(view)
    return (
        {**details, "num_nodes": (view.spec.get("node_properties") or {}).get("num_nodes")}
        if details
        else None
    )


def render_job(env: Env, view: JobView) -> dict[str, Any]:
    j, spec = view.job, view.spec
    container: dict[str, Any] | None = {**(spec.get("container") or {}), **_last_container(view)}
    if j.num_nodes is not None:
        container = None  # a multi-node job has nodes, each with its container
    return {
        "job_arn": env.arns.arn(JOB, j.id),
        "job_name": j.name,
        "job_id": j.id,
        "job_queue": env.arns.arn(JQ, view.queue),
        "status": j.status.value,
        "share_identifier": j.share_identifier,
        "scheduling_priority": j.scheduling_priority,
        "attempts": [
            {
                "container": {
                    "exit_code": a.exit_code,
                    "reason": a.reason,
                    "log_stream_name": a.log_stream,
                },
                "started_at": a.started_at,
                "stopped_at": a.stopped_at,
                "status_reason": a.status_reason,
            }
            for a in view.attempts
        ],
        "status_reason": j.status_reason,
        "created_at": j.created_at,
        "retry_strategy": spec.get("retry_strategy"),
        "started_at": j.started_at,
        "stopped_at": j.stopped_at,
        "depends_on": spec.get("depends_on") if view.parent is None else None,
        "job_definition": env.arns.arn(JD, view.definition),
        "parameters": spec.get("parameters"),
        "container": container,
        "node_properties": spec.get("node_properties") if j.num_nodes is not None else None,
        "node_details": _node_details(view),
        "array_properties": _array_properties(view),
        "timeout": spec.get("timeout"),
        "tags": view.tags,
        "propagate_tags": spec.get("propagate_tags"),
        "platform_capabilities": spec.get("platform_capabilities"),
        "is_cancelled": j.is_cancelled,
        "is_terminated": j.is_terminated,
        "consumable_resource_properties": spec.get("consumable_resource_properties"),
    }


def render_summary(env: Env, view: JobView) -> dict[str, Any]:
    j = view.job
    last = _last_container(view)
    return {
        "job_arn": env.arns.arn(JOB, j.id),
        "job_id": j.id,
        "job_name": j.name,
        "created_at": j.created_at,
        "share_identifier": j.share_identifier,
        "status": j.status.value,
        "status_reason": j.status_reason,
        "started_at": j.started_at,
        "stopped_at": j.stopped_at,
        "container": {"exit_code": last.get("exit_code"), "reason": last.get("reason")}
        if last
        else None,
        "array_properties": _array_properties(view),
        "node_properties": _node_summary(view),
        "job_definition": env.arns.arn(JD, view.definition),
        "is_cancelled": j.is_cancelled,
        "is_terminated": j.is_terminated,
    }


@operation("SubmitJob")
async def submit_job(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    deps = req.get("depends_on") or []
    for i, d in enumerate(deps):
        if d.get("job_id", "").startswith("arn:"):
            d["job_id"] = env.arns.ref(d["job_id"], JOB, f"dependsOn[{i}].jobId")
    array = req.get("array_properties") or {}
    job = await env.services.jobs.submit(
        Submission(
            name=req["job_name"],
            queue=env.arns.ref(req["job_queue"], JQ, "jobQueue"),
            job_definition=env.arns.ref(req["job_definition"], JD, "jobDefinition"),
            parameters=req.get("parameters"),
            container_overrides=req.get("container_overrides"),
            array_size=array.get("size") if array else None,
            depends_on=deps,
            retry_strategy=req.get("retry_strategy"),
            timeout=req.get("timeout"),
            tags=req.get("tags"),
            propagate_tags=req.get("propagate_tags"),
            share_identifier=req.get("share_identifier"),
            scheduling_priority_override=req.get("scheduling_priority_override"),
            node_overrides=req.get("node_overrides"),
            consumable_resource_properties_override=req.get(
                "consumable_resource_properties_override"
            ),
            eks_properties_override=req.get("eks_properties_override"),
            ecs_properties_override=req.get("ecs_properties_override"),
        )
    )
    return {"job_arn": env.arns.arn(JOB, job.id), "job_name": job.name, "job_id": job.id}


def _job_id(env: Env, ref: str, field: str) -> str:
    return env.arns.ref(ref, JOB, field) if ref.startswith("arn:") else ref


@operation("DescribeJobs")
def describe_jobs(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    ids = [_job_id(env, j, "jobs") for j in req["jobs"]]
    return {"jobs": [render_job(env, v) for v in env.services.jobs.describe(ids)]}


def _filters(env: Env, filters: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """A JOB_DEFINITION filter's ARNs -> names (one of another region is refused, saying
    so, as every other ARN of the request is)."""
    for f in filters or []:
        if f.get("name") == "JOB_DEFINITION":
            f["values"] = [
                env.arns.ref(v, JD, "filters.values") if v.startswith("arn:") else v
                for v in f.get("values") or []
            ]
    return filters


@operation("ListJobs")
def list_jobs(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    queue = req.get("job_queue")
    page = env.services.jobs.list(
        queue=env.arns.ref(queue, JQ, "jobQueue") if queue else None,
        array_job_id=req.get("array_job_id"),
        multi_node_job_id=req.get("multi_node_job_id"),
        status=req.get("job_status"),
        filters=_filters(env, req.get("filters")),
        max_results=req.get("max_results"),
        next_token=req.get("next_token"),
    )
    return {
        "job_summary_list": [render_summary(env, v) for v in page.items],
        "next_token": page.next_token,
    }


@operation("CancelJob")
def cancel_job(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    env.services.jobs.cancel(_job_id(env, req["job_id"], "jobId"), req["reason"])
    return {}


@operation("TerminateJob")
def terminate_job(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    env.services.jobs.terminate(_job_id(env, req["job_id"], "jobId"), req["reason"])
    return {}


def _bulk(env: Env, req: dict[str, Any], terminate: bool) -> dict[str, Any]:
    ids = [_job_id(env, j, "jobs") for j in req["jobs"]]
    result = env.services.jobs.bulk(ids, req["reason"], terminate)
    return {
        "successful": result.successful,
        "errors": [{"job": j, "code": c, "message": m} for j, c, m in result.errors],
    }


@operation("CancelJobs")
def cancel_jobs(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    return _bulk(env, req, terminate=False)


@operation("TerminateJobs")
def terminate_jobs(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    return _bulk(env, req, terminate=True)


@operation("GetJobQueueSnapshot")
def get_job_queue_snapshot(env: Env, req: dict[str, Any]) -> dict[str, Any]:
    head, now, used = env.services.jobs.snapshot(env.arns.ref(req["job_queue"], JQ, "jobQueue"))
    return {
        "front_of_queue": {
            "jobs": [
                {"job_arn": env.arns.arn(JOB, j.id), "earliest_time_at_position": j.updated_at}
                for j in head
            ],
            "last_updated_at": now,
        },
        "queue_utilization": {
            "total_capacity_usage": [{"capacity_unit": "VCPU", "quantity": used}],
            "last_updated_at": now,
        },
    }
