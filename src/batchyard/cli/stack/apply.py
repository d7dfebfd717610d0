"""Carrying out a plan through the AWS Batch API, in dependency order, waiting where a later
step needs an earlier one settled (a queue needs its compute environments VALID; a compute
environment can be deleted only once DISABLED and no queue uses it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from batchyard.cli.stack.loader import Stack
from batchyard.cli.stack.plan import SINGULAR, Change, short_name

WRITE_PREFIXES = ("Create", "Update", "Delete", "Register", "Deregister", "Tag", "Untag")


class ApplyError(Exception):
    """The server refused a step, or a resource did not settle; ``done`` steps were made."""

    def __init__(self, change: Change, message: str, done: int) -> None:
        self.change = change
        self.message = message
        self.done = done
        super().__init__(message)


def count_writes(client: Any) -> list[str]:
    """Record the name of every write call ``client`` makes (for "N write requests")."""
    calls: list[str] = []

    def before(model: Any, **_: Any) -> None:
        if model.name.startswith(WRITE_PREFIXES):
            calls.append(model.name)

    client.meta.events.register("before-call", before)
    return calls


def _message(e: Any) -> str:
    return e.response.get("Error", {}).get("Message") or str(e)


class Applier:
    def __init__(
        self,
        batch: Any,
        stack: Stack,
        say: Callable[[str], None],
        timeout: float = 300.0,
        poll: float = 0.1,
    ) -> None:
        self.batch = batch
        self.stack = stack
        self.say = say
        self.timeout = timeout
        self.poll = poll
        self.done = 0
        self.arns: dict[str, str] = {}

    # ---- apply ----------------------------------------------------------------------------

    def apply(self, changes: list[Change]) -> None:
        from botocore.exceptions import ClientError

        for c in changes:
            if not c.changes:
                continue
            try:
                getattr(self, f"_apply_{c.kind}")(c)
            except ClientError as e:
                raise ApplyError(c, _message(e), self.done) from None
            self.done += 1

    def _tag(self, c: Change, arn: str) -> None:
        if c.tags_set:
            self.batch.tag_resource(resourceArn=arn, tags=c.tags_set)
        if c.tags_removed:
            self.batch.untag_resource(resourceArn=arn, tagKeys=c.tags_removed)

    def _apply_schedulingPolicies(self, c: Change) -> None:
        assert c.desired is not None
        if c.action == "create":
            self.batch.create_scheduling_policy(**c.desired)
            self.say(f"created schedulingPolicy {c.name}")
            return
        assert c.current is not None
        arn = c.current["arn"]
        if c.update:
            self.batch.update_scheduling_policy(arn=arn, **c.update)
        self._tag(c, arn)
        self.say(f"updated schedulingPolicy {c.name}")

    def _apply_consumableResources(self, c: Change) -> None:
        assert c.desired is not None
        if c.action == "create":
            self.batch.create_consumable_resource(**c.desired)
            self.say(f"created consumableResource {c.name}")
            return
        assert c.current is not None
        if c.update:
            self.batch.update_consumable_resource(consumableResource=c.name, **c.update)
        self._tag(c, c.current["consumableResourceArn"])
        self.say(f"updated consumableResource {c.name}")

    def _apply_computeEnvironments(self, c: Change) -> None:
        assert c.desired is not None
        if c.action == "create":
            self.batch.create_compute_environment(**c.desired)
            verb = "created"
        else:
            assert c.current is not None
            if c.update:
                self.batch.update_compute_environment(computeEnvironment=c.name, **c.update)
            self._tag(c, c.current["computeEnvironmentArn"])
            verb = "updated"
        ce = self._settle(c, self._describe_ce, ("VALID", "INVALID"))
        if ce["status"] == "INVALID":
            raise ApplyError(
                c, f"compute environment {c.name} is INVALID: {ce.get('statusReason')}", self.done
            )
        self.say(f"{verb} computeEnvironment {c.name}: VALID")

    def _apply_jobQueues(self, c: Change) -> None:
        assert c.desired is not None
        if c.action == "create":
            self.batch.create_job_queue(**c.desired)
            verb = "created"
        else:
            assert c.current is not None
            if c.update:
                self.batch.update_job_queue(jobQueue=c.name, **c.update)
            self._tag(c, c.current["jobQueueArn"])
            verb = "updated"
        self._settle(c, self._describe_queue, ("VALID", "INVALID"))
        self.say(f"{verb} jobQueue {c.name}: VALID")

    def _apply_jobDefinitions(self, c: Change) -> None:
        assert c.desired is not None
        out = self.batch.register_job_definition(**c.desired)
        self.arns[c.name] = out["jobDefinitionArn"]
        self.say(f"registered jobDefinition {c.name}:{out['revision']}")

    # ---- delete ---------------------------------------------------------------------------

    def delete(self, changes: list[Change]) -> None:
        from botocore.exceptions import ClientError

        for c in changes:
            if not c.changes:
                continue
            try:
                getattr(self, f"_delete_{c.kind}")(c)
            except ClientError as e:
                raise ApplyError(c, _message(e), self.done) from None
            self.done += 1

    def _delete_jobDefinitions(self, c: Change) -> None:
        for revision in (c.current or {}).get("revisions", []):
            self.batch.deregister_job_definition(jobDefinition=f"{c.name}:{revision}")
        self.say(f"deregistered jobDefinition {c.name} ({c.note.split(' ', 1)[-1]})")

    def _delete_jobQueues(self, c: Change) -> None:
        assert c.current is not None
        if c.current["state"] != "DISABLED":
            self.batch.update_job_queue(jobQueue=c.name, state="DISABLED")
            self._settle(c, self._describe_queue, ("VALID", "INVALID"))
        if c.current["status"] != "DELETING":
            self.batch.delete_job_queue(jobQueue=c.name)
        self._gone(c, self._describe_queue)
        self.say(f"deleted jobQueue {c.name}")

    def _delete_computeEnvironments(self, c: Change) -> None:
        assert c.current is not None
        if c.current["state"] != "DISABLED":
            self.batch.update_compute_environment(computeEnvironment=c.name, state="DISABLED")
            self._settle(c, self._describe_ce, ("VALID", "INVALID"))
        if c.current["status"] != "DELETING":
            self.batch.delete_compute_environment(computeEnvironment=c.name)
        self._gone(c, self._describe_ce)
        self.say(f"deleted computeEnvironment {c.name}")

    def _delete_consumableResources(self, c: Change) -> None:
        self.batch.delete_consumable_resource(consumableResource=c.name)
        self.say(f"deleted consumableResource {c.name}")

    def _delete_schedulingPolicies(self, c: Change) -> None:
        assert c.current is not None
        self.batch.delete_scheduling_policy(arn=c.current["arn"])
        self.say(f"deleted schedulingPolicy {c.name}")

    # ---- waiting --------------------------------------------------------------------------

    def _describe_ce(self, name: str) -> dict[str, Any] | None:
        found = self.batch.describe_compute_environments(computeEnvironments=[name])
        return (found["computeEnvironments"] or [None])[0]

    def _describe_queue(self, name: str) -> dict[str, Any] | None:
        return (self.batch.describe_job_queues(jobQueues=[name])["jobQueues"] or [None])[0]

    def _settle(
        self, c: Change, describe: Callable[[str], Any], until: tuple[str, ...]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            item = describe(c.name)
            if item is not None and item["status"] in until:
                return item
            if time.monotonic() > deadline:
                status = item["status"] if item else "missing"
                raise ApplyError(
                    c,
                    f"{SINGULAR[c.kind]} {c.name} is still {status} after {self.timeout:.0f} s",
                    self.done,
                )
            time.sleep(self.poll)

    def _gone(self, c: Change, describe: Callable[[str], Any]) -> None:
        deadline = time.monotonic() + self.timeout
        while (item := describe(c.name)) is not None:
            if time.monotonic() > deadline:
                hint = (
                    "; it still has unfinished jobs (see batchyard jobs --queue "
                    f"{short_name(c.name)})"
                    if c.kind == "jobQueues"
                    else ""
                )
                raise ApplyError(
                    c,
                    f"{SINGULAR[c.kind]} {c.name} is still {item['status']} after "
                    f"{self.timeout:.0f} s{hint}",
                    self.done,
                )
            time.sleep(self.poll)
