"""``batchyard policy``: IAM-style policies on users, groups and access keys, and the
simulator that answers "may this key do X on Y?".

    batchyard policy put --group team-a --name queues team-a.json
    batchyard policy list [--user alice]
    batchyard policy delete --group team-a --name queues
    batchyard policy simulate --access-key BYAK... --action batch:SubmitJob \\
        --resource arn:aws:batch:us-east-1:000000000000:job-queue/team-b

``simulate`` exits 0 when every action is allowed on every resource, 1 otherwise; with
``--policy FILE`` it decides against that document alone, without a server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from batchyard.cli.admin import ConfigOpt, DataDirOpt, Local, LocalOpt, call
from batchyard.cli.common import (
    EXIT_FAILED,
    EndpointOpt,
    Output,
    OutputOpt,
    Usage,
    clock,
    handle_errors,
    out,
    print_json,
)
from batchyard.cli.credentials import read_policy

app = typer.Typer(
    help="IAM-style policies on users, groups and keys; simulate a request against them.",
    no_args_is_help=True,
)

UserOpt = Annotated[str | None, typer.Option("--user", help="Attached to this user.")]
GroupOpt = Annotated[str | None, typer.Option("--group", help="Attached to this group.")]
KeyOpt = Annotated[str | None, typer.Option("--key", help="Attached to this access key.")]


def _owner(user: str | None, group: str | None, key: str | None) -> tuple[str, str]:
    given = [(k, v) for k, v in (("user", user), ("group", group), ("key", key)) if v]
    if len(given) != 1:
        raise Usage("name exactly one of --user, --group and --key")
    return given[0]


@app.command("put")
@handle_errors
def put(
    file: Annotated[Path, typer.Argument(help="The policy document (JSON).")],
    name: Annotated[str, typer.Option("--name", help="The policy's name on its owner.")],
    user: UserOpt = None,
    group: GroupOpt = None,
    key: KeyOpt = None,
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """Attach a policy to a user, a group or a key (replacing one of the same name)."""
    kind, owner = _owner(user, group, key)
    doc = read_policy(file)
    if local:
        admin = Local(data_dir, config)
        try:
            replaced = admin.identities.put_policy(kind, owner, name, doc)
            admin.record(f"iam:Put{kind.title()}Policy", [f"{kind}/{owner}/{name}"])
        finally:
            admin.close()
    else:
        found = call(endpoint, "PUT", f"/policies/{kind}/{owner}/{name}", body={"document": doc})
        replaced = found["replaced"]
    out.print(f"{'replaced' if replaced else 'attached'} policy {name} on {kind} {owner}")


@app.command("delete")
@handle_errors
def delete(
    name: Annotated[str, typer.Option("--name", help="The policy's name.")],
    user: UserOpt = None,
    group: GroupOpt = None,
    key: KeyOpt = None,
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """Detach (delete) a policy."""
    kind, owner = _owner(user, group, key)
    if local:
        admin = Local(data_dir, config)
        try:
            admin.identities.delete_policy(kind, owner, name)
            admin.record(f"iam:Delete{kind.title()}Policy", [f"{kind}/{owner}/{name}"])
        finally:
            admin.close()
    else:
        call(endpoint, "DELETE", f"/policies/{kind}/{owner}/{name}")
    out.print(f"deleted policy {name} of {kind} {owner}")


@app.command("list")
@handle_errors
def list_policies(
    user: UserOpt = None,
    group: GroupOpt = None,
    key: KeyOpt = None,
    output: OutputOpt = Output.table,
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """The policies attached to users, groups and keys (all, or one owner's)."""
    kind = owner = None
    if user or group or key:
        kind, owner = _owner(user, group, key)
    if local:
        admin = Local(data_dir, config)
        try:
            policies = [
                {
                    "kind": p["owner_kind"],
                    "owner": p["owner"],
                    "name": p["name"],
                    "document": json.loads(p["document"]),
                    "updatedAt": p["updated_at"],
                }
                for p in admin.identities.list_policies(kind, owner)
            ]
        finally:
            admin.close()
    else:
        query = {"kind": kind, "owner": owner}
        policies = call(endpoint, "GET", "/policies", query=query)["policies"]
    if output == Output.json:
        print_json({"policies": policies})
        return
    if not policies:
        out.print("no policies")
        return
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ATTACHED TO", "NAME", "STATEMENTS", "UPDATED"):
        t.add_column(col, no_wrap=True)
    for p in policies:
        stmts = p["document"].get("Statement")
        n = len(stmts) if isinstance(stmts, list) else 1
        t.add_row(f"{p['kind']} {p['owner']}", p["name"], str(n), clock(p.get("updatedAt")))
    out.print(t)


def _context(pairs: list[str] | None) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise Usage(f"--context {pair!r}: write KEY=VALUE, e.g. batch:ShareIdentifier=blue")
        ctx[key] = value
    return ctx


@app.command("simulate")
@handle_errors
def simulate(
    action: Annotated[
        list[str], typer.Option("--action", help="e.g. batch:SubmitJob (repeatable).")
    ],
    resource: Annotated[
        list[str] | None,
        typer.Option("--resource", help="An ARN (repeatable; default *)."),
    ] = None,
    access_key: Annotated[
        str | None, typer.Option("--access-key", help="Simulate this key.")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Simulate this user (no key's policy).")] = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="Simulate this policy document alone (no server needed)."),
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", help="A condition key, KEY=VALUE (repeatable)."),
    ] = None,
    output: OutputOpt = Output.table,
    endpoint: EndpointOpt = None,
) -> None:
    """May this key (user, policy) perform these actions on these resources?

    Exit 0 if all are allowed, 1 if any is denied; each answer names the statement that
    decided it.
    """
    if sum(x is not None for x in (access_key, user, policy)) != 1:
        raise Usage("name exactly one of --access-key, --user and --policy")
    resources = list(resource or ["*"])
    ctx = _context(context)
    if policy is not None:
        result = _simulate_locally(read_policy(policy), action, resources, ctx)
    else:
        body = {
            "accessKeyId": access_key,
            "user": user,
            "actions": action,
            "resources": resources,
            "context": ctx,
        }
        result = call(endpoint, "POST", "/policy/simulate", body=body)
    denied = [r for r in result["results"] if not r["allowed"]]
    if output == Output.json:
        print_json(result)
    else:
        for r in result["results"]:
            verdict = "[green]allowed[/]" if r["allowed"] else f"[red]{r['decision']}[/]"
            out.print(f"{verdict}  {r['action']} on {r['resource']}", highlight=False)
            out.print(f"   {r['explanation']}", highlight=False, soft_wrap=True)
    if denied:
        raise typer.Exit(EXIT_FAILED)


def _simulate_locally(
    doc: dict[str, Any], actions: list[str], resources: list[str], ctx: dict[str, Any]
) -> dict[str, Any]:
    from batchyard.auth.policy import Resource, evaluate, parse_policy

    policies = (parse_policy(doc, "given"),)
    results = []
    for a in actions:
        for arn in resources:
            d = evaluate(policies, a, [Resource(arn)], ctx)
            results.append(
                {
                    "action": a,
                    "resource": arn,
                    "decision": d.kind,
                    "allowed": d.allowed,
                    "matchedStatements": [
                        {"policy": s.policy, "statement": s.index, "sid": s.sid}
                        for s in d.statements
                    ],
                    "explanation": d.explain("the given policy"),
                }
            )
    return {"principal": "given policy", "results": results}
