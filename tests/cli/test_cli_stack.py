"""apply / diff / delete of stack files, through the real executable."""

from __future__ import annotations

import json
import textwrap

from helpers import describe_ce, describe_queue


def stack_text(ce: str, queue: str, jd: str, priority: int = 1, message: str = "hello") -> str:
    return textwrap.dedent(
        f"""\
        # a small stack
        schedulingPolicies:
          - name: {ce}-fair
            fairsharePolicy: {{shareDecaySeconds: 600, shareDistribution: [{{shareIdentifier: a, weightFactor: 1}}]}}
        consumableResources:
          - consumableResourceName: {ce}-licenses
            totalQuantity: 3
        computeEnvironments:
          - computeEnvironmentName: {ce}
            type: MANAGED
            state: ENABLED
            computeResources: {{type: EC2, minvCpus: 0, maxvCpus: 2}}
            tags: {{team: cli-tests}}
        jobQueues:
          - jobQueueName: {queue}
            priority: {priority}
            computeEnvironmentOrder:
              - {{order: 1, computeEnvironment: {ce}}}
        jobDefinitions:
          - jobDefinitionName: {jd}
            type: container
            containerProperties:
              command: [echo, "{message}"]
              resourceRequirements:
                - {{type: VCPU, value: "0.5"}}
                - {{type: MEMORY, value: "64"}}
            retryStrategy: {{attempts: 2}}
            consumableResourceProperties:
              consumableResourceList: [{{consumableResource: {ce}-licenses, quantity: 1}}]
        """
    )


def revisions(batch, name: str) -> list[int]:
    found = batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")[
        "jobDefinitions"
    ]
    return sorted(d["revision"] for d in found)


def test_apply_is_idempotent_and_diff_shows_changes_first(cli, cli_server, unique, tmp_path):
    batch = cli_server.client("batch")
    ce, queue, jd = unique("ce"), unique("q"), unique("jd")
    path = tmp_path / "stack.yaml"
    path.write_text(stack_text(ce, queue, jd))

    r = cli("diff", "-f", str(path))
    assert r.code == 0, r
    assert f"+ create computeEnvironment {ce}" in r.stdout
    assert f"+ create jobQueue {queue}" in r.stdout
    assert f"+ register jobDefinition {jd}" in r.stdout
    assert f"+ create schedulingPolicy {ce}-fair" in r.stdout
    assert f"+ create consumableResource {ce}-licenses" in r.stdout
    assert describe_ce(batch, ce) is None, "diff must not change anything"

    r = cli("apply", "-f", str(path))
    assert r.code == 0, r
    assert f"created computeEnvironment {ce}: VALID" in r.stdout
    assert "4 created, 1 registered (5 write requests)" in r.stdout
    assert describe_ce(batch, ce)["status"] == "VALID"
    assert describe_queue(batch, queue)["status"] == "VALID"
    assert revisions(batch, jd) == [1]

    r = cli("apply", "-f", str(path))
    assert r.code == 0, r
    assert "no changes" in r.stdout and "0 write requests" in r.stdout, r
    r = cli("diff", "-f", str(path), "--exit-code")
    assert r.code == 0 and "no differences" in r.stdout, r

    path.write_text(stack_text(ce, queue, jd, priority=7, message="hello again"))
    r = cli("diff", "-f", str(path), "--exit-code")
    assert r.code == 1, r
    assert f"~ update jobQueue {queue}" in r.stdout and "priority: 1 → 7" in r.stdout
    assert f"+ register jobDefinition {jd} (new revision after {jd}:1)" in r.stdout
    assert 'containerProperties.command: ["echo", "hello"] → ["echo", "hello again"]' in r.stdout
    assert describe_queue(batch, queue)["priority"] == 1, "diff must not change anything"
    r = cli("diff", "-f", str(path), "--output", "json")
    changes = {c["name"]: c for c in json.loads(r.stdout)["changes"]}
    assert changes[queue]["action"] == "update" and changes[ce]["action"] == "unchanged"

    r = cli("apply", "-f", str(path))
    assert r.code == 0, r
    assert "1 registered, 1 updated, 3 unchanged" in r.stdout, r
    assert describe_queue(batch, queue)["priority"] == 7
    assert revisions(batch, jd) == [1, 2]
    r = cli("apply", "-f", str(path), "-o", "json")
    assert r.code == 0 and json.loads(r.stdout)["writeRequests"] == 0, r

    r = cli("delete", "-f", str(path))
    assert r.code == 0, r
    assert (
        f"deleted jobQueue {queue}" in r.stdout and f"deleted computeEnvironment {ce}" in r.stdout
    )
    assert describe_ce(batch, ce) is None and describe_queue(batch, queue) is None
    assert revisions(batch, jd) == []
    r = cli("delete", "-f", str(path))
    assert r.code == 0 and "nothing to delete" in r.stdout, r


def test_bad_stack_files_are_refused_with_their_line_and_change_nothing(
    cli, cli_server, unique, tmp_path
):
    batch = cli_server.client("batch")
    ce, queue = unique("ce"), unique("q")
    cases = {
        "malformed YAML": (
            f"computeEnvironments:\n  - computeEnvironmentName: {ce}\n   type: MANAGED\n",
            ["bad.yaml:3:4: not valid YAML"],
        ),
        "unknown field": (
            f"computeEnvironments:\n  - computeEnvironmentName: {ce}\n    type: MANAGED\n"
            "    computeResources:\n      type: EC2\n      maxvCpus: 2\n      maxVcpu: 2\n",
            [
                "bad.yaml:7:7: computeEnvironments[0].computeResources: unknown field 'maxVcpu' (did you mean 'maxvCpus'?)"
            ],
        ),
        "wrong types and values": (
            f"jobQueues:\n  - jobQueueName: {queue}\n    priority: high\n    state: ON\n",
            [
                "bad.yaml:3:15: jobQueues[0].priority: expected an integer, got a string ('high')",
                "bad.yaml:4:12: jobQueues[0].state: expected a string, got a boolean (true)",
            ],
        ),
        "a queue referencing a missing compute environment": (
            f"computeEnvironments:\n  - computeEnvironmentName: {ce}\n    type: MANAGED\n"
            "    computeResources: {type: EC2, maxvCpus: 2}\n"
            f"jobQueues:\n  - jobQueueName: {queue}\n    priority: 1\n"
            "    computeEnvironmentOrder:\n      - order: 1\n        computeEnvironment: no-such-ce\n",
            [
                "bad.yaml:10:29: jobQueues[0].computeEnvironmentOrder[0].computeEnvironment: "
                "compute environment 'no-such-ce' is neither declared in this stack nor on the server"
            ],
        ),
        "a name declared twice": (
            f"computeEnvironments:\n  - computeEnvironmentName: {ce}\n    type: UNMANAGED\n"
            f"  - computeEnvironmentName: {ce}\n    type: UNMANAGED\n",
            [
                f"bad.yaml:4:29: computeEnvironments[1].computeEnvironmentName: '{ce}' is declared twice"
            ],
        ),
        "not a stack": ("- just\n- a list\n", ["a stack is a mapping"]),
    }
    path = tmp_path / "bad.yaml"
    for what, (text, messages) in cases.items():
        path.write_text(text)
        for command in ("apply", "diff") if what == "unknown field" else ("apply",):
            r = cli(command, "-f", "bad.yaml", cwd=tmp_path)
            assert r.code == 2, (what, r)
            assert "nothing was changed" in r.stderr, (what, r)
            for message in messages:
                assert message in r.stderr, (what, message, r)
        assert describe_ce(batch, ce) is None, what
        assert describe_queue(batch, queue) is None, what


def test_server_refusal_during_apply_names_the_resource_and_line(cli, cli_server, unique, tmp_path):
    ce = unique("ce")
    path = tmp_path / "stack.yaml"
    # valid for the schema, refused by the server: the same scheduling policy name twice is
    # caught offline, so use a rule only the server checks (maxTimeSeconds below the minimum)
    queue = unique("q")
    path.write_text(
        f"computeEnvironments:\n  - computeEnvironmentName: {ce}\n    type: MANAGED\n"
        "    computeResources: {type: EC2, maxvCpus: 1}\n"
        f"jobQueues:\n  - jobQueueName: {queue}\n    priority: 1\n"
        f"    computeEnvironmentOrder: [{{order: 1, computeEnvironment: {ce}}}]\n"
        "    jobStateTimeLimitActions:\n"
        "      - {reason: x, state: RUNNABLE, maxTimeSeconds: 0, action: TERMINATE}\n"
    )
    r = cli("apply", "-f", str(path))
    assert r.code == 1, r
    assert f"stack.yaml:6:5: jobQueue {queue}: apply refused:" in r.stderr, r
    assert "1 change(s) were made before this" in r.stderr
    r = cli("delete", "-f", str(path), "--yes")
    assert r.code == 0, r


def test_print_schema_is_the_published_schema(cli):
    from batchyard.cli.stack.schema import build_schema, load_schema

    r = cli("apply", "--print-schema")
    assert r.code == 0
    schema = json.loads(r.stdout)
    assert schema == load_schema()
    assert schema == build_schema(), "stack.schema.json is stale: regenerate it (see schema.py)"
    assert set(schema["properties"]) == {
        "schedulingPolicies",
        "consumableResources",
        "computeEnvironments",
        "jobQueues",
        "jobDefinitions",
    }


def test_what_aws_fills_in_is_no_change(cli, cli_server, unique, tmp_path):
    """Described back, a Fargate definition has platformVersion LATEST and empty lists it was
    never sent (as on AWS); applying the same stack again changes nothing."""
    batch = cli_server.client("batch")
    plain, pinned = unique("fargate"), unique("latest")
    path = tmp_path / "stack.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            jobDefinitions:
              - jobDefinitionName: {plain}
                type: container
                platformCapabilities: [FARGATE]
                containerProperties:
                  command: [echo, hi]
                  resourceRequirements: [{{type: VCPU, value: "0.25"}}, {{type: MEMORY, value: "512"}}]
              - jobDefinitionName: {pinned}
                type: container
                platformCapabilities: [FARGATE]
                containerProperties:
                  command: [echo, hi]
                  environment: []
                  resourceRequirements: [{{type: VCPU, value: "0.25"}}, {{type: MEMORY, value: "512"}}]
                  fargatePlatformConfiguration: {{platformVersion: LATEST}}
            """
        )
    )
    r = cli("apply", "-f", str(path))
    assert r.code == 0, r
    (jd,) = batch.describe_job_definitions(jobDefinitionName=plain)["jobDefinitions"]
    assert jd["containerProperties"]["fargatePlatformConfiguration"] == {
        "platformVersion": "LATEST"
    }
    r = cli("diff", "-f", str(path), "--exit-code")
    assert r.code == 0 and "no differences" in r.stdout, r
    assert (revisions(batch, plain), revisions(batch, pinned)) == ([1], [1])
