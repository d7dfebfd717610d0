"""What applying (or deleting) a stack would do: the server's current state, read through the
AWS Batch API, compared with the file.

Rules, per kind (the order is the order of :data:`APPLY_ORDER`):

- a resource missing on the server is created (a job definition is registered);
- a compute environment, job queue, scheduling policy or consumable resource that exists is
  compared on the fields the file gives (a field left out of the file is left alone) and
  updated in place; a field AWS cannot change in place is reported as a problem;
- a job definition is compared, as a whole, with its latest ACTIVE revision; any difference
  registers a new revision;
- ``tags``, when given, are made exactly those (the reserved ``batchyard:provider`` of a
  compute environment is never removed).

Planning reads only; every problem it finds (a reference to nothing, a change AWS does not
allow) is reported with its line before anything is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from batchyard.cli.stack.loader import Path_, Problem, Stack, StackError
from batchyard.cli.stack.schema import KINDS

APPLY_ORDER = [
    "schedulingPolicies",
    "consumableResources",
    "computeEnvironments",
    "jobQueues",
    "jobDefinitions",
]
SINGULAR = {
    "schedulingPolicies": "schedulingPolicy",
    "consumableResources": "consumableResource",
    "computeEnvironments": "computeEnvironment",
    "jobQueues": "jobQueue",
    "jobDefinitions": "jobDefinition",
}
PROVIDER_TAG = "batchyard:provider"
_CE_UPDATABLE = {
    "state",
    "unmanagedvCpus",
    "computeResources",
    "serviceRole",
    "updatePolicy",
    "context",
    "ecsSettings",
    "eksConfiguration",
}
_QUEUE_UPDATABLE = {
    "state",
    "schedulingPolicyArn",
    "priority",
    "computeEnvironmentOrder",
    "serviceEnvironmentOrder",
    "jobStateTimeLimitActions",
}


@dataclass(slots=True)
class FieldChange:
    path: str
    old: Any
    new: Any


@dataclass(slots=True)
class Change:
    """One resource of the stack and what apply (or delete) does with it."""

    kind: str
    name: str
    action: str  # create, update, register, unchanged; delete, absent
    index: int = -1  # position in the file's list, for line numbers
    fields: list[FieldChange] = field(default_factory=list)
    current: dict[str, Any] | None = None
    desired: dict[str, Any] | None = None
    update: dict[str, Any] = field(default_factory=dict)  # the update request's members
    tags_set: dict[str, str] = field(default_factory=dict)
    tags_removed: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def changes(self) -> bool:
        return self.action not in ("unchanged", "absent")

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": SINGULAR[self.kind],
            "name": self.name,
            "action": self.action,
            "note": self.note or None,
            "fields": [{"path": f.path, "old": f.old, "new": f.new} for f in self.fields],
        }


# ---- comparing ----------------------------------------------------------------------------


def normalize(value: Any) -> Any:
    """Values as compared: None, empty lists and empty mappings count as not given; a whole
    float is its integer."""
    if isinstance(value, dict):
        out = {k: normalize(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None}
    if isinstance(value, list):
        return [normalize(v) for v in value] or None
    if isinstance(value, float) and value.is_integer():
        return int(value)  # YAML's 1 and the API's 1.0 are the same weight
    return value


def _clean(value: Any) -> Any:
    value = normalize(value)
    if isinstance(value, dict) and not value:
        return None
    return value


def diff_values(old: Any, new: Any, path: str) -> list[FieldChange]:
    """Leaf differences between two values (mappings recursed into, lists compared whole)."""
    old, new = _clean(old), _clean(new)
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for key in list(dict.fromkeys([*old, *new])):
            out += diff_values(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return out
    if _canon(old) == _canon(new):
        return []
    return [FieldChange(path, old, new)]


def _canon(value: Any) -> str:
    return json.dumps(_clean(value), sort_keys=True, default=str)


def short_name(ref: str) -> str:
    """A name from a name or an ARN (``arn:...:job-queue/name`` -> ``name``)."""
    return ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref


def _tags(change: Change, desired: dict[str, str] | None, current: dict[str, str]) -> None:
    if desired is None:
        return
    for k, v in desired.items():
        if current.get(k) != v:
            change.tags_set[k] = v
    change.tags_removed = sorted(k for k in current if k not in desired and k != PROVIDER_TAG)
    if change.tags_set or change.tags_removed:
        change.fields += diff_values(
            {k: current.get(k) for k in [*change.tags_set, *change.tags_removed]},
            {k: desired.get(k) for k in [*change.tags_set, *change.tags_removed]},
            "tags",
        )


# ---- reading the server -------------------------------------------------------------------


class Remote:
    """The server's current resources of the names a stack mentions (read-only calls)."""

    def __init__(self, batch: Any) -> None:
        self.batch = batch

    def compute_environments(self, names: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(names)), 100):
            found = self.batch.describe_compute_environments(computeEnvironments=chunk)
            for ce in found["computeEnvironments"]:
                out[ce["computeEnvironmentName"]] = ce
        return out

    def job_queues(self, names: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(names)), 100):
            for q in self.batch.describe_job_queues(jobQueues=chunk)["jobQueues"]:
                out[q["jobQueueName"]] = q
        return out

    def scheduling_policies(self, names: list[str]) -> dict[str, dict[str, Any]]:
        wanted = set(names)
        arns: list[str] = []
        for page in self.batch.get_paginator("list_scheduling_policies").paginate():
            arns += [p["arn"] for p in page["schedulingPolicies"] if short_name(p["arn"]) in wanted]
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(arns, 100):
            for p in self.batch.describe_scheduling_policies(arns=chunk)["schedulingPolicies"]:
                out[p["name"]] = p
        return out

    def consumable_resources(self, names: list[str]) -> dict[str, dict[str, Any]]:
        wanted = set(names)
        out: dict[str, dict[str, Any]] = {}
        if not wanted:
            return out
        for page in self.batch.get_paginator("list_consumable_resources").paginate():
            for r in page["consumableResources"]:
                name = r["consumableResourceName"]
                if name in wanted:
                    out[name] = self.batch.describe_consumable_resource(consumableResource=name)
        return out

    def job_definitions(self, name: str, status: str = "ACTIVE") -> list[dict[str, Any]]:
        """Every revision of ``name`` with ``status``, newest first."""
        found: list[dict[str, Any]] = []
        pages = self.batch.get_paginator("describe_job_definitions").paginate(
            jobDefinitionName=name, status=status
        )
        for page in pages:
            found += page["jobDefinitions"]
        return sorted(found, key=lambda d: d["revision"], reverse=True)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# ---- planning -----------------------------------------------------------------------------


class Planner:
    def __init__(self, stack: Stack, remote: Remote) -> None:
        self.stack = stack
        self.remote = remote
        self.problems: list[Problem] = []

    def problem(self, path: Path_, message: str) -> None:
        self.problems.append(self.stack.problem(path, message))

    def raise_problems(self) -> None:
        if self.problems:
            self.problems.sort(key=lambda p: (p.line, p.column))
            raise StackError(self.stack.source, self.problems)

    def _names(self, kind: str) -> list[str]:
        return [item[KINDS[kind][1]] for item in self.stack.items(kind)]

    def check_offline(self) -> None:
        """Rules the schema cannot state: unique names, ranges AWS checks, one of several."""
        for kind in KINDS:
            seen: dict[str, int] = {}
            for i, name in enumerate(self._names(kind)):
                if name in seen:
                    self.problem(
                        (kind, i, KINDS[kind][1]),
                        f"{name!r} is declared twice in {kind} (also item {seen[name]})",
                    )
                seen.setdefault(name, i)
        for i, ce in enumerate(self.stack.items("computeEnvironments")):
            res = ce.get("computeResources") or {}
            low, want, high = res.get("minvCpus", 0), res.get("desiredvCpus"), res.get("maxvCpus")
            if high is not None and low > high:
                self.problem(
                    ("computeEnvironments", i, "computeResources", "minvCpus"),
                    f"minvCpus ({low}) is above maxvCpus ({high})",
                )
            if want is not None and high is not None and not low <= want <= high:
                self.problem(
                    ("computeEnvironments", i, "computeResources", "desiredvCpus"),
                    f"desiredvCpus ({want}) must lie between minvCpus ({low}) and maxvCpus "
                    f"({high})",
                )
            if ce.get("type") == "MANAGED" and not res:
                self.problem(
                    ("computeEnvironments", i, "type"),
                    "a MANAGED compute environment needs computeResources (type and maxvCpus)",
                )
        for i, q in enumerate(self.stack.items("jobQueues")):
            if not 0 <= q["priority"] <= 1000:
                self.problem(
                    ("jobQueues", i, "priority"),
                    f"priority {q['priority']} is outside 0..1000",
                )
            order = q.get("computeEnvironmentOrder") or []
            if not order and not q.get("serviceEnvironmentOrder"):
                self.problem(
                    ("jobQueues", i), "computeEnvironmentOrder lists no compute environment"
                )
            if len(order) > 3:
                self.problem(
                    ("jobQueues", i, "computeEnvironmentOrder"),
                    f"a queue uses at most 3 compute environments ({len(order)} given)",
                )
            orders = [e["order"] for e in order]
            if len(set(orders)) != len(orders):
                self.problem(
                    ("jobQueues", i, "computeEnvironmentOrder"),
                    "each compute environment needs a distinct order",
                )
        for i, jd in enumerate(self.stack.items("jobDefinitions")):
            given = [
                k for k in ("containerProperties", "ecsProperties", "eksProperties") if k in jd
            ]
            if jd["type"] == "container" and len(given) != 1:
                self.problem(
                    ("jobDefinitions", i),
                    "a container job definition needs exactly one of containerProperties, "
                    f"ecsProperties and eksProperties (given: {', '.join(given) or 'none'})",
                )
            if jd["type"] == "multinode" and "nodeProperties" not in jd:
                self.problem(
                    ("jobDefinitions", i), "a multinode job definition needs nodeProperties"
                )
            attempts = (jd.get("retryStrategy") or {}).get("attempts")
            if attempts is not None and not 1 <= attempts <= 10:
                self.problem(
                    ("jobDefinitions", i, "retryStrategy", "attempts"),
                    f"attempts is {attempts}; it must be between 1 and 10",
                )

    # ---- apply ----------------------------------------------------------------------------

    def plan_apply(self) -> list[Change]:
        self.check_offline()
        self.raise_problems()
        st = self.stack
        ce_refs = [
            short_name(e["computeEnvironment"])
            for q in st.items("jobQueues")
            for e in q.get("computeEnvironmentOrder") or []
        ]
        policy_refs = [
            short_name(q["schedulingPolicyArn"])
            for q in st.items("jobQueues")
            if q.get("schedulingPolicyArn")
        ]
        resource_refs = [
            short_name(r["consumableResource"])
            for jd in st.items("jobDefinitions")
            for r in (jd.get("consumableResourceProperties") or {}).get("consumableResourceList")
            or []
        ]
        policies = self.remote.scheduling_policies(self._names("schedulingPolicies") + policy_refs)
        resources = self.remote.consumable_resources(
            self._names("consumableResources") + resource_refs
        )
        ces = self.remote.compute_environments(self._names("computeEnvironments") + ce_refs)
        queues = self.remote.job_queues(self._names("jobQueues"))
        self._check_references(ces, policies, resources)
        changes: list[Change] = []
        for i, item in enumerate(st.items("schedulingPolicies")):
            changes.append(self._policy(i, item, policies.get(item["name"])))
        for i, item in enumerate(st.items("consumableResources")):
            changes.append(self._resource(i, item, resources.get(item["consumableResourceName"])))
        for i, item in enumerate(st.items("computeEnvironments")):
            changes.append(self._ce(i, item, ces.get(item["computeEnvironmentName"])))
        for i, item in enumerate(st.items("jobQueues")):
            changes.append(self._queue(i, item, queues.get(item["jobQueueName"])))
        for i, item in enumerate(st.items("jobDefinitions")):
            latest = self.remote.job_definitions(item["jobDefinitionName"])
            changes.append(self._definition(i, item, latest[0] if latest else None))
        self.raise_problems()
        return changes

    def _check_references(
        self,
        ces: dict[str, Any],
        policies: dict[str, Any],
        resources: dict[str, Any],
    ) -> None:
        st = self.stack
        declared_ces = set(self._names("computeEnvironments"))
        for i, q in enumerate(st.items("jobQueues")):
            for j, e in enumerate(q.get("computeEnvironmentOrder") or []):
                name = short_name(e["computeEnvironment"])
                path = ("jobQueues", i, "computeEnvironmentOrder", j, "computeEnvironment")
                if name in declared_ces:
                    continue
                ce = ces.get(name)
                if ce is None:
                    self.problem(
                        path,
                        f"compute environment {name!r} is neither declared in this stack nor "
                        "on the server",
                    )
                elif ce["status"] in ("DELETING", "DELETED", "INVALID"):
                    self.problem(path, f"compute environment {name!r} is {ce['status']}")
            ref = q.get("schedulingPolicyArn")
            if ref and short_name(ref) not in set(self._names("schedulingPolicies")) | set(
                policies
            ):
                self.problem(
                    ("jobQueues", i, "schedulingPolicyArn"),
                    f"scheduling policy {short_name(ref)!r} is neither declared in this stack "
                    "nor on the server",
                )
        declared = set(self._names("consumableResources")) | set(resources)
        for i, jd in enumerate(st.items("jobDefinitions")):
            props = jd.get("consumableResourceProperties") or {}
            for j, r in enumerate(props.get("consumableResourceList") or []):
                if short_name(r["consumableResource"]) not in declared:
                    self.problem(
                        (
                            "jobDefinitions",
                            i,
                            "consumableResourceProperties",
                            "consumableResourceList",
                            j,
                            "consumableResource",
                        ),
                        f"consumable resource {short_name(r['consumableResource'])!r} is "
                        "neither declared in this stack nor on the server",
                    )

    def _policy(self, i: int, item: dict[str, Any], cur: dict[str, Any] | None) -> Change:
        c = Change("schedulingPolicies", item["name"], "create", i, desired=item, current=cur)
        if cur is None:
            return c
        for key in ("fairsharePolicy", "quotaSharePolicy"):
            if key in item:
                found = diff_values(cur.get(key), item[key], key)
                if found:
                    c.fields += found
                    c.update[key] = item[key]
        _tags(c, item.get("tags"), cur.get("tags") or {})
        c.action = "update" if c.fields else "unchanged"
        return c

    def _resource(self, i: int, item: dict[str, Any], cur: dict[str, Any] | None) -> Change:
        name = item["consumableResourceName"]
        c = Change("consumableResources", name, "create", i, desired=item, current=cur)
        if cur is None:
            return c
        if "resourceType" in item and item["resourceType"] != cur.get("resourceType"):
            self.problem(
                ("consumableResources", i, "resourceType"),
                f"the resourceType of {name!r} is {cur.get('resourceType')} on the server and "
                "cannot be changed; delete the resource first or use another name",
            )
        if "totalQuantity" in item and item["totalQuantity"] != cur.get("totalQuantity"):
            c.fields.append(
                FieldChange("totalQuantity", cur.get("totalQuantity"), item["totalQuantity"])
            )
            c.update = {"operation": "SET", "quantity": item["totalQuantity"]}
        _tags(c, item.get("tags"), cur.get("tags") or {})
        c.action = "update" if c.fields else "unchanged"
        return c

    def _ce(self, i: int, item: dict[str, Any], cur: dict[str, Any] | None) -> Change:
        from batchyard.api.model import batch_model

        name = item["computeEnvironmentName"]
        c = Change("computeEnvironments", name, "create", i, desired=item, current=cur)
        if cur is None:
            return c
        if cur.get("status") == "DELETING":
            self.problem(
                ("computeEnvironments", i, "computeEnvironmentName"),
                f"compute environment {name!r} is being deleted; wait until it is gone",
            )
        if item.get("type") != cur.get("type"):
            self.problem(
                ("computeEnvironments", i, "type"),
                f"{name!r} is {cur.get('type')} on the server; the type cannot be changed "
                "(delete it first or use another name)",
            )
        updatable = set(batch_model().shape_for("ComputeResourceUpdate").members)
        for key, want in item.items():
            if key in ("computeEnvironmentName", "type", "tags"):
                continue
            if key == "computeResources":
                have = cur.get(key) or {}
                changed: dict[str, Any] = {}
                for sub, value in want.items():
                    found = diff_values(have.get(sub), value, f"{key}.{sub}")
                    if not found:
                        continue
                    if sub not in updatable:
                        self.problem(
                            ("computeEnvironments", i, key, sub),
                            f"{key}.{sub} cannot be changed on an existing compute environment;"
                            " delete it first or use another name",
                        )
                    c.fields += found
                    changed[sub] = value
                if changed:
                    c.update[key] = changed
                continue
            found = diff_values(cur.get(key), want, key)
            if not found:
                continue
            if key not in _CE_UPDATABLE:
                self.problem(
                    ("computeEnvironments", i, key),
                    f"{key} cannot be changed on an existing compute environment; delete it "
                    "first or use another name",
                )
            c.fields += found
            c.update[key] = want
        tags = item.get("tags")
        have_tags = cur.get("tags") or {}
        if tags is not None:
            want_provider = tags.get(PROVIDER_TAG, "local")
            have_provider = have_tags.get(PROVIDER_TAG, "local")
            if want_provider != have_provider:
                self.problem(
                    ("computeEnvironments", i, "tags", PROVIDER_TAG),
                    f"{name!r} runs on provider {have_provider!r}; the provider cannot be "
                    "changed (create another compute environment)",
                )
            tags = {k: v for k, v in tags.items() if k != PROVIDER_TAG}
            have_tags = {k: v for k, v in have_tags.items() if k != PROVIDER_TAG}
        _tags(c, tags, have_tags)
        c.action = "update" if c.fields else "unchanged"
        return c

    def _queue(self, i: int, item: dict[str, Any], cur: dict[str, Any] | None) -> Change:
        name = item["jobQueueName"]
        c = Change("jobQueues", name, "create", i, desired=item, current=cur)
        if cur is None:
            return c
        if cur.get("status") == "DELETING":
            self.problem(
                ("jobQueues", i, "jobQueueName"),
                f"job queue {name!r} is being deleted; wait until it is gone",
            )
        for key, want in item.items():
            if key in ("jobQueueName", "tags"):
                continue
            have = cur.get(key)
            if key == "schedulingPolicyArn":
                have, want = short_name(have or "") or None, short_name(want)
            elif key == "computeEnvironmentOrder":
                have, want = _ce_order(have), _ce_order(want)
            found = diff_values(have, want, key)
            if not found:
                continue
            if key not in _QUEUE_UPDATABLE:
                self.problem(
                    ("jobQueues", i, key),
                    f"{key} cannot be changed on an existing job queue; delete it first or use "
                    "another name",
                )
            c.fields += found
            c.update[key] = item[key]
        _tags(c, item.get("tags"), cur.get("tags") or {})
        c.action = "update" if c.fields else "unchanged"
        return c

    def _definition(self, i: int, item: dict[str, Any], cur: dict[str, Any] | None) -> Change:
        from batchyard.api.defaults import without_defaults
        from batchyard.api.model import batch_model

        name = item["jobDefinitionName"]
        c = Change("jobDefinitions", name, "register", i, desired=item, current=cur)
        if cur is None:
            c.note = "revision 1" if not self.remote.job_definitions(name, "INACTIVE") else ""
            return c
        members = batch_model().operation_model("RegisterJobDefinition").input_shape.members
        have = {k: v for k, v in cur.items() if k in members and k != "jobDefinitionName"}
        want = {k: v for k, v in item.items() if k != "jobDefinitionName"}
        # what AWS answers for unset members (Fargate's LATEST) is no change
        shape = batch_model().shape_for("JobDefinition")
        have, want = without_defaults(have, shape), without_defaults(want, shape)
        c.fields = diff_values(have, want, "")
        if c.fields:
            c.note = f"new revision after {name}:{cur['revision']}"
        else:
            c.action = "unchanged"
            c.note = f"{name}:{cur['revision']}"
        return c

    # ---- delete ---------------------------------------------------------------------------

    def plan_delete(self) -> list[Change]:
        self.check_offline()
        self.raise_problems()
        st = self.stack
        policies = self.remote.scheduling_policies(self._names("schedulingPolicies"))
        resources = self.remote.consumable_resources(self._names("consumableResources"))
        ces = self.remote.compute_environments(self._names("computeEnvironments"))
        queues = self.remote.job_queues(self._names("jobQueues"))
        found = {
            "schedulingPolicies": policies,
            "consumableResources": resources,
            "computeEnvironments": ces,
            "jobQueues": queues,
        }
        changes: list[Change] = []
        for kind in reversed(APPLY_ORDER):
            for i, item in enumerate(st.items(kind)):
                name = item[KINDS[kind][1]]
                if kind == "jobDefinitions":
                    revisions = self.remote.job_definitions(name)
                    c = Change(kind, name, "delete" if revisions else "absent", i)
                    c.current = {"revisions": [r["revision"] for r in revisions]}
                    if revisions:
                        c.note = "deregister revision(s) " + ", ".join(
                            str(r["revision"])
                            for r in sorted(revisions, key=lambda r: r["revision"])
                        )
                else:
                    cur = found[kind].get(name)
                    c = Change(kind, name, "delete" if cur else "absent", i, current=cur)
                changes.append(c)
        return changes


def _ce_order(value: Any) -> list[dict[str, Any]] | None:
    if not value:
        return None
    return sorted(
        (
            {"order": e["order"], "computeEnvironment": short_name(e["computeEnvironment"])}
            for e in value
        ),
        key=lambda e: e["order"],
    )
