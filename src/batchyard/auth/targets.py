"""What a request asks to do, in IAM's terms: the action, the resources (ARNs), and the
condition keys, following AWS's "Actions, resources, and condition keys for AWS Batch".

Where AWS authorizes an action on ``*`` only, batchyard does the same, with one deliberate
difference: the job actions read (DescribeJobs, ListJobs of an array's children) check each
job like CancelJob and TerminateJob do, so that a key limited to some queues cannot read the
jobs of others. Every job resource is also named by its job queue's ARN (see
:class:`batchyard.auth.policy.Resource`), so ``job-queue/team-a-*`` covers those queues' jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from batchyard.api.arns import Arns
from batchyard.auth.policy import ANY, Resource
from batchyard.logs.store import GROUP
from batchyard.service import secrets as secret_refs
from batchyard.service.job_definitions import parse_ref
from batchyard.store import resources as res
from batchyard.store import security as repo
from batchyard.store.db import Store

JOB, JQ, JD, CE = "job", "job-queue", "job-definition", "compute-environment"
SP, CR = "scheduling-policy", "consumable-resource"
READ_PREFIXES = ("Describe", "List", "Get")


@dataclass(slots=True)
class Check:
    action: str
    resources: list[Resource]


@dataclass(slots=True)
class Target:
    """Everything one request needs checked, and what the audit log says it touched."""

    checks: list[Check]
    context: dict[str, Any] = field(default_factory=dict)
    mutating: bool = False
    # SubmitJob: the queue's name and how many jobs it adds
    queue: str | None = None
    adds: int = 0

    @property
    def action(self) -> str:
        return self.checks[0].action if self.checks else ""

    @property
    def arns(self) -> list[str]:
        out: list[str] = []
        for c in self.checks:
            out += [r.arn for r in c.resources if r.arn not in out]
        return out


_NAMED = (
    ("job_queue", JQ),
    ("job_queue_name", JQ),
    ("compute_environment", CE),
    ("compute_environment_name", CE),
    ("job_definition", JD),
    ("job_definition_name", JD),
    ("job_id", JOB),
    ("jobs", JOB),
    ("consumable_resource", CR),
    ("consumable_resource_name", CR),
    ("resource_arn", JOB),
)


def _adds(req: dict[str, Any]) -> int:
    return 1 + ((req.get("array_properties") or {}).get("size") or 0)


def mutating(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES)


def _tags(tags: dict[str, str] | None, keys: list[str] | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if tags:
        ctx["aws:TagKeys"] = sorted(tags)
        for k, v in tags.items():
            ctx[f"aws:RequestTag/{k}"] = v
    if keys:
        ctx["aws:TagKeys"] = sorted(keys)
    return ctx


class Targets:
    def __init__(self, store: Store, arns: Arns) -> None:
        self.store = store
        self.arns = arns
        self._logs_prefix = arns.of("logs", f"log-group:{GROUP}")

    # ---- names -> resources -----------------------------------------------------------------

    def arn(self, kind: str, name: str) -> str:
        return self.arns.arn(kind, name)

    def _name(self, text: str, kind: str, field_name: str) -> str:
        return self.arns.ref(text, kind, field_name)

    def _res(self, kind: str, text: str | None, field_name: str) -> list[Resource]:
        if not text:
            return []
        return [Resource(self.arn(kind, self._name(text, kind, field_name)))]

    def jobs(self, ids: list[str], field_name: str = "jobs") -> list[Resource]:
        """Job ids (or ARNs) -> their resources, each also named by its queue's ARN."""
        names = [self._name(i, JOB, field_name) if i.startswith("arn:") else i for i in ids]
        with self.store.read() as conn:
            queues = repo.queues_of_jobs(conn, names)
        out = []
        for n in names:
            queue = queues.get(n)
            aliases = (self.arn(JQ, queue),) if queue else ()
            out.append(Resource(self.arn(JOB, n), aliases))
        return out

    def secret_arn(self, name: str) -> str:
        return self.arns.of("secretsmanager", f"secret:{name}")

    def user_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.arns.account_id}:user/{name}"

    def group_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.arns.account_id}:group/{name}"

    def stream_arn(self, stream: str | None) -> str:
        return f"{self._logs_prefix}:log-stream:{stream}" if stream else self._logs_prefix

    # ---- the AWS Batch API ------------------------------------------------------------------

    def light(self, api: str, op: str, req: dict[str, Any]) -> Target:
        """For the audit log when nothing is authorized (authentication off): the resources
        the request names, as ARNs, without reading the store."""
        names: list[str] = []
        for key, kind in _NAMED:
            value = req.get(key)
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str) and v:
                    names.append(v if v.startswith("arn:") else self.arn(kind, v))
        target = Target(
            [Check(f"{api}:{op}", [Resource(n) for n in names] or [ANY])],
            mutating=api == "batch" and mutating(op),
        )
        if op == "SubmitJob":
            target.queue = self._name(req["job_queue"], JQ, "jobQueue")
            target.adds = _adds(req)
        return target

    def batch(self, op: str, req: dict[str, Any]) -> Target:
        action = f"batch:{op}"
        method = getattr(self, f"_op_{op}", None)
        if method is not None:
            target: Target = method(action, req)
        else:
            target = Target([Check(action, self._generic(op, req))])
        target.mutating = mutating(op)
        return target

    def _generic(self, op: str, req: dict[str, Any]) -> list[Resource]:
        """Operations named after their resource: Create/Update/Delete<Kind>."""
        for kind, key, name_key in (
            (CE, "compute_environment", "compute_environment_name"),
            (JQ, "job_queue", "job_queue_name"),
            (SP, "arn", "name"),
            (CR, "consumable_resource", "consumable_resource_name"),
        ):
            text = req.get(name_key) or req.get(key)
            stem = kind.replace("-", " ").title().replace(" ", "")
            if op.endswith(stem) and isinstance(text, str) and text:
                return self._res(kind, text, key)
        return [ANY]

    def _op_CreateComputeEnvironment(self, action: str, req: dict[str, Any]) -> Target:
        r = self._res(CE, req["compute_environment_name"], "computeEnvironmentName")
        return Target([Check(action, r)], _tags(req.get("tags")))

    def _op_CreateJobQueue(self, action: str, req: dict[str, Any]) -> Target:
        r = self._res(JQ, req["job_queue_name"], "jobQueueName") + self._queue_parts(req)
        return Target([Check(action, r)], _tags(req.get("tags")))

    def _op_UpdateJobQueue(self, action: str, req: dict[str, Any]) -> Target:
        r = self._res(JQ, req["job_queue"], "jobQueue") + self._queue_parts(req)
        return Target([Check(action, r)])

    def _queue_parts(self, req: dict[str, Any]) -> list[Resource]:
        out = []
        for i, e in enumerate(req.get("compute_environment_order") or []):
            out += self._res(CE, e.get("compute_environment"), f"computeEnvironmentOrder[{i}]")
        out += self._res(SP, req.get("scheduling_policy_arn"), "schedulingPolicyArn")
        return out

    def _op_CreateSchedulingPolicy(self, action: str, req: dict[str, Any]) -> Target:
        return Target([Check(action, self._res(SP, req["name"], "name"))], _tags(req.get("tags")))

    def _op_CreateConsumableResource(self, action: str, req: dict[str, Any]) -> Target:
        r = self._res(CR, req["consumable_resource_name"], "consumableResourceName")
        return Target([Check(action, r)], _tags(req.get("tags")))

    def _op_RegisterJobDefinition(self, action: str, req: dict[str, Any]) -> Target:
        name = req["job_definition_name"]
        r = [Resource(self.arn(JD, name), (self.arn(JD, f"{name}:*"),))]
        ctx = _tags(req.get("tags"))
        containers = [req.get("container_properties") or {}]
        for n in (req.get("node_properties") or {}).get("node_range_properties") or []:
            containers.append(n.get("container") or {})
        for c in containers:
            if c.get("user") is not None:
                ctx["batch:User"] = c["user"]
            if c.get("image") is not None:
                ctx["batch:Image"] = c["image"]
            if c.get("privileged") is not None:
                ctx["batch:Privileged"] = bool(c["privileged"])
        return Target([Check(action, r)], ctx)

    def _op_DeregisterJobDefinition(self, action: str, req: dict[str, Any]) -> Target:
        ref = self._name(req["job_definition"], JD, "jobDefinition")
        name, _, _ = ref.rpartition(":")
        r = [Resource(self.arn(JD, ref), (self.arn(JD, name or ref),))]
        return Target([Check(action, r)])

    def _op_SubmitJob(self, action: str, req: dict[str, Any]) -> Target:
        queue_name = self._name(req["job_queue"], JQ, "jobQueue")
        ref = self._name(req["job_definition"], JD, "jobDefinition")
        name, revision = parse_ref(ref, "jobDefinition")
        with self.store.read() as conn:
            jd = res.job_definition(conn, name, revision)
        jd_ref = f"{name}:{jd.revision}" if jd is not None else ref
        resources = [
            Resource(self.arn(JQ, queue_name)),
            Resource(self.arn(JD, jd_ref), (self.arn(JD, name),)),
        ]
        ctx = _tags(req.get("tags"))
        if req.get("share_identifier") is not None:
            ctx["batch:ShareIdentifier"] = req["share_identifier"]
        target = Target([Check(action, resources)], ctx)
        target.queue, target.adds = queue_name, _adds(req)
        if jd is not None:
            if jd.type == "multinode":
                target.adds += (jd.spec.get("node_properties") or {}).get("num_nodes") or 0
            secrets = self._definition_secrets(jd.spec)
            if secrets:  # running with a secret is reading it (as a job role must, on AWS)
                target.checks.append(Check("secretsmanager:GetSecretValue", secrets))
        return target

    def _definition_secrets(self, spec: dict[str, Any]) -> list[Resource]:
        """The secrets a definition's containers read: each by its ARN in the store, also
        known by the other name it may resolve to and by the ARN ``valueFrom`` gives (so that
        policies written for the ARNs of AWS match); a reference that can never resolve reads
        nothing (the job fails at its start)."""
        containers = [spec.get("container_properties") or {}]
        for n in (spec.get("node_properties") or {}).get("node_range_properties") or []:
            containers.append(n.get("container") or {})
        out: dict[str, Resource] = {}
        for c in containers:
            for ref in secret_refs.refs(c, "containerProperties.secrets"):
                if ref.problem is not None or ref.value_from in out:
                    continue
                arns = [self.secret_arn(n) for n in ref.names]
                if ref.value_from.startswith("arn:"):
                    arns.append(ref.value_from)
                out[ref.value_from] = Resource(arns[0], tuple(arns[1:]))
        return list(out.values())

    def _op_DescribeJobs(self, action: str, req: dict[str, Any]) -> Target:
        return Target([Check(action, self.jobs(list(req["jobs"])))])

    def _op_ListJobs(self, action: str, req: dict[str, Any]) -> Target:
        if req.get("job_queue"):
            return Target([Check(action, self._res(JQ, req["job_queue"], "jobQueue"))])
        parent = req.get("array_job_id") or req.get("multi_node_job_id")
        if parent:
            return Target([Check(action, self.jobs([parent], "arrayJobId"))])
        return Target([Check(action, [ANY])])

    def _op_GetJobQueueSnapshot(self, action: str, req: dict[str, Any]) -> Target:
        return Target([Check(action, self._res(JQ, req["job_queue"], "jobQueue"))])

    def _op_CancelJob(self, action: str, req: dict[str, Any]) -> Target:
        return Target([Check(action, self.jobs([req["job_id"]], "jobId"))])

    _op_TerminateJob = _op_CancelJob

    def _op_CancelJobs(self, action: str, req: dict[str, Any]) -> Target:
        # AWS: the bulk forms need batch:CancelJob / batch:TerminateJob on each job
        return Target([Check("batch:CancelJob", self.jobs(list(req["jobs"])))])

    def _op_TerminateJobs(self, action: str, req: dict[str, Any]) -> Target:
        return Target([Check("batch:TerminateJob", self.jobs(list(req["jobs"])))])

    def _tagged(self, arn: str) -> list[Resource]:
        parsed = self.arns.parse(arn, "resourceArn")
        if parsed.kind == JOB:
            return self.jobs([parsed.resource], "resourceArn")
        return [Resource(self.arn(parsed.kind, parsed.resource))]

    def _op_TagResource(self, action: str, req: dict[str, Any]) -> Target:
        return Target([Check(action, self._tagged(req["resource_arn"]))], _tags(req.get("tags")))

    def _op_UntagResource(self, action: str, req: dict[str, Any]) -> Target:
        ctx = _tags(None, req.get("tag_keys"))
        return Target([Check(action, self._tagged(req["resource_arn"]))], ctx)

    def _op_ListTagsForResource(self, action: str, req: dict[str, Any]) -> Target:
        return Target([Check(action, self._tagged(req["resource_arn"]))])

    # ---- the CloudWatch Logs API ------------------------------------------------------------

    def logs(self, op: str, req: dict[str, Any]) -> Target:
        action = f"logs:{op}"
        if op == "GetLogEvents":
            return Target([Check(action, [self._stream(req["log_stream_name"])])])
        if op == "FilterLogEvents" and req.get("log_stream_names"):
            return Target([Check(action, [self._stream(s) for s in req["log_stream_names"]])])
        if op == "DescribeLogGroups":
            return Target([Check(action, [ANY])])
        return Target([Check(action, [Resource(self._logs_prefix + ":*")])])

    def _stream(self, stream: str) -> Resource:
        with self.store.read() as conn:
            found = repo.job_of_stream(conn, stream)
        if found is None:
            return Resource(self.stream_arn(stream))
        job_id, queue = found
        return Resource(self.stream_arn(stream), (self.arn(JOB, job_id), self.arn(JQ, queue)))
