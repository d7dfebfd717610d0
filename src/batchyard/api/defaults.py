"""What AWS Batch answers for members nobody set: empty collections and documented defaults.

AWS fills these into its Describe*/List* answers, and client code written against AWS indexes
them directly (``job["tags"]``, ``jd["containerProperties"]["environment"]``), so a missing
member is a KeyError there. :func:`batchyard.api.casing.to_wire` fills a member from this table
when the answer leaves it out; handlers need not know. Keys are the model's shape name and the
member's wire name; values are wire values. A shape is filled wherever it appears (a job
definition's ``containerProperties`` and a node range's ``container`` are both
``ContainerProperties``). Every entry names the AWS material that shows it; the sources are
also listed in docs/api-compatibility.md ("Response defaults").

Sources, as cited below:

- ``examples``: botocore's ``data/batch/2016-08-10/examples-1.json`` (AWS's documented
  examples).
- ``cli``: the AWS CLI's examples, awscli/examples/batch/describe-job-definitions.rst
  (``parameters: {}`` on a job definition) and describe-jobs.rst.
- ``events``: the AWS Batch User Guide, "Job state change events" (batch_job_events.html),
  whose ``detail`` "resembles the JobDetail object" DescribeJobs returns.
- ``eks``: AWS's EKS Blueprints, docs/teams/aws-batch-on-eks-team.md (aws-quickstart/
  cdk-eks-blueprints), a ``describe-jobs`` answer for a job on Amazon EKS.
- ``terraform``: the Terraform AWS provider (internal/service/batch/container_properties.go,
  eks_properties.go), which before comparing job definitions removes what the API adds ("an
  empty array when not configured during the request", "the default Fargate platform
  configuration", empty linuxParameters lists, and for EKS "all empty slices").
- ``fargate``: the API reference, FargatePlatformConfiguration: "If one isn't specified, the
  LATEST platform version is used by default."
- ``tags``: every Batch resource's ``tags`` is the same ``TagrisTagsMap``; AWS answers it ``{}``
  for an untagged job (``eks``), and it is answered the same way for every resource that
  carries it (no AWS example shows an untagged resource of the other kinds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.model import Shape

# The lists every container answers with, set or not (examples: command, environment,
# mountPoints, ulimits, volumes; events: also networkInterfaces, resourceRequirements,
# secrets; terraform: all of them for job definitions).
_CONTAINER_LISTS = (
    "command",
    "environment",
    "mountPoints",
    "ulimits",
    "volumes",
    "resourceRequirements",
    "secrets",
)
# The lists of an EKS container and its pod (terraform for job definitions; eks shows the
# same for jobs, whose eksProperties batchyard never answers: it runs no EKS jobs).
_EKS_CONTAINER_LISTS = ("command", "args", "env", "volumeMounts")


def _lists(shape: str, members: tuple[str, ...]) -> dict[tuple[str, str], Any]:
    return {(shape, m): [] for m in members}


DEFAULTS: dict[tuple[str, str], Any] = {
    # DescribeJobs
    ("JobDetail", "dependsOn"): [],  # examples, events, eks
    ("JobDetail", "parameters"): {},  # examples, events, eks
    ("JobDetail", "tags"): {},  # eks
    ("JobDetail", "platformCapabilities"): [],  # events, eks
    ("JobDetail", "eksAttempts"): [],  # eks
    **_lists("ContainerDetail", (*_CONTAINER_LISTS, "networkInterfaces")),  # examples, events
    ("AttemptContainerDetail", "networkInterfaces"): [],  # events (its container's list)
    ("RetryStrategy", "evaluateOnExit"): [],  # events
    # DescribeJobDefinitions
    ("JobDefinition", "parameters"): {},  # cli
    ("JobDefinition", "tags"): {},  # tags
    **_lists("ContainerProperties", _CONTAINER_LISTS),  # examples, terraform
    ("LogConfiguration", "options"): {},  # terraform
    ("LogConfiguration", "secretOptions"): [],  # terraform
    ("LinuxParameters", "devices"): [],  # terraform
    ("LinuxParameters", "tmpfs"): [],  # terraform
    **_lists("EksContainer", _EKS_CONTAINER_LISTS),  # terraform, as eks for jobs
    ("EksPodProperties", "volumes"): [],  # terraform, as eks for jobs
    # DescribeComputeEnvironments, DescribeJobQueues, DescribeSchedulingPolicies,
    # DescribeConsumableResource
    ("ComputeEnvironmentDetail", "tags"): {},  # tags
    ("JobQueueDetail", "tags"): {},  # tags
    ("SchedulingPolicyDetail", "tags"): {},  # tags
    ("DescribeConsumableResourceResponse", "tags"): {},  # tags
}


@dataclass(frozen=True, slots=True)
class NestedDefault:
    """``outer[member][inner] = value`` when the list ``outer[when]`` holds ``contains``.

    For a default that depends on a sibling: a Fargate container's platform version is only
    defaulted when the job definition (or job) runs on Fargate.
    """

    member: str
    inner: str
    value: Any
    when: str
    contains: str


_FARGATE_LATEST = ("fargatePlatformConfiguration", {"platformVersion": "LATEST"})

# keyed by the outer shape's name (fargate, terraform)
RULES: dict[str, tuple[NestedDefault, ...]] = {
    "JobDefinition": (
        NestedDefault("containerProperties", *_FARGATE_LATEST, "platformCapabilities", "FARGATE"),
    ),
    "JobDetail": (NestedDefault("container", *_FARGATE_LATEST, "platformCapabilities", "FARGATE"),),
}


def fresh(value: Any) -> Any:
    """A copy of a default for one answer, so no two answers share a mutable value."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def without_defaults(value: Any, shape: Shape) -> Any:
    """``value`` (wire form) without the members that only hold what AWS answers for an unset
    member: what a client compares when it asks "is the described resource the one I want?"
    (a definition described back carries ``environment: []`` it was never sent). Apply it to
    both sides of a comparison. Walks the model, so it is for clients, not for answers."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        out = dict(value)
        for rule in RULES.get(shape.name, ()):
            inner = out.get(rule.member)
            if (
                isinstance(inner, dict)
                and inner.get(rule.inner) == rule.value
                and rule.contains in (out.get(rule.when) or ())
            ):
                out[rule.member] = {k: v for k, v in inner.items() if k != rule.inner}
        members = shape.members
        for k in list(out):
            if k in members:
                out[k] = without_defaults(out[k], members[k])
                key = (shape.name, k)
                if key in DEFAULTS and out[k] == DEFAULTS[key]:
                    del out[k]
        return out
    if t == "list" and isinstance(value, list):
        return [without_defaults(v, shape.member) for v in value]
    if t == "map" and isinstance(value, dict):
        return {k: without_defaults(v, shape.value) for k, v in value.items()}
    return value
