"""``batchyard credentials``: access keys for the people and programs that call the server.

    batchyard credentials create --name alice [--policy team-a.json] [--group team-a]
    batchyard credentials list
    batchyard credentials revoke BYAK... | --user alice
    batchyard credentials groups alice team-a team-b

The secret is printed once, at creation; the server keeps it encrypted. Configure it like an
AWS key (``aws configure``, or ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``) and any AWS
SDK, the AWS CLI and this CLI sign with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from batchyard.cli.admin import ConfigOpt, DataDirOpt, Local, LocalOpt, call, user_arn
from batchyard.cli.common import (
    EndpointOpt,
    Output,
    OutputOpt,
    Usage,
    ago,
    handle_errors,
    out,
    print_json,
)

app = typer.Typer(
    help="Access keys: create (the secret is shown once), list, revoke; a user's groups.",
    no_args_is_help=True,
)


def read_policy(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise Usage(f"cannot read the policy file {path}: {e.strerror}") from None
    except ValueError as e:
        raise Usage(f"the policy file {path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise Usage(f"the policy file {path} must hold a JSON object")
    return doc


@app.command("create")
@handle_errors
def create(
    name: Annotated[str, typer.Option("--name", help="The user the key belongs to.")],
    policy: Annotated[
        Path | None,
        typer.Option(help="A policy document (JSON file) attached to this key."),
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="Add the user to this group (repeatable)."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note kept with the key.")] = None,
    output: OutputOpt = Output.table,
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """Create an access key for a user (created if new) and print its secret, once."""
    doc = read_policy(policy) if policy is not None else None
    policy_name = policy.stem if policy is not None else "default"
    if local:
        admin = Local(data_dir, config)
        try:
            key_id, secret = admin.identities.create_key(
                name, doc, policy_name, list(group or []), description
            )
            admin.record("iam:CreateAccessKey", [user_arn(admin.account(), name)])
        finally:
            admin.close()
    else:
        found = call(
            endpoint,
            "POST",
            "/credentials",
            body={
                "name": name,
                "policy": doc,
                "policyName": policy_name,
                "groups": list(group or []),
                "description": description,
            },
        )
        key_id, secret = found["accessKeyId"], found["secretAccessKey"]
    if output == Output.json:
        print_json({"accessKeyId": key_id, "secretAccessKey": secret, "user": name})
        return
    out.print(f"access key for [bold]{name}[/]")
    out.print(f"  access key id:     {key_id}")
    out.print(f"  secret access key: {secret}")
    out.print(
        "\nThe secret is shown only now; keep it safe. Use it like an AWS key, e.g.\n"
        f"  aws configure set aws_access_key_id {key_id} --profile batchyard\n"
        "  aws configure set aws_secret_access_key <secret> --profile batchyard\n"
        "  export AWS_PROFILE=batchyard",
        highlight=False,
    )


@app.command("list")
@handle_errors
def list_keys(
    user: Annotated[str | None, typer.Option(help="Only this user's keys.")] = None,
    output: OutputOpt = Output.table,
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """Every access key (never its secret): user, groups, status, created, last used."""
    if local:
        admin = Local(data_dir, config)
        try:
            keys = [_camel(k) for k in admin.identities.list_keys(user)]
        finally:
            admin.close()
    else:
        keys = call(endpoint, "GET", "/credentials", query={"user": user})["accessKeys"]
    if output == Output.json:
        print_json({"accessKeys": keys})
        return
    if not keys:
        out.print("no access keys yet: batchyard credentials create --name NAME")
        return
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ACCESS KEY ID", "USER", "GROUPS", "STATUS", "CREATED", "LAST USED", "POLICIES"):
        t.add_column(col, no_wrap=True)
    for k in keys:
        status = "[green]Active[/]" if k["status"] == "Active" else "[red]Revoked[/]"
        t.add_row(
            k["accessKeyId"],
            k["user"],
            ", ".join(k.get("groups") or []) or "-",
            status,
            ago(k.get("createdAt")),
            ago(k.get("lastUsedAt")),
            ", ".join(k.get("policies") or []) or "-",
        )
    out.print(t)


def _camel(k: dict[str, Any]) -> dict[str, Any]:
    from batchyard.api.extensions import camel

    return camel(k)


@app.command("revoke")
@handle_errors
def revoke(
    access_key_id: Annotated[str | None, typer.Argument(help="The key to revoke.")] = None,
    user: Annotated[str | None, typer.Option(help="Revoke every key of this user.")] = None,
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """Revoke a key (or all of a user's): refused from the next request on, on every server."""
    if (access_key_id is None) == (user is None):
        raise Usage("name one ACCESS_KEY_ID, or --user NAME")
    if local:
        admin = Local(data_dir, config)
        try:
            revoked = admin.identities.revoke(access_key_id, user)
            admin.record("iam:DeleteAccessKey", revoked)
        finally:
            admin.close()
    else:
        body = {"accessKeyId": access_key_id, "user": user}
        revoked = call(endpoint, "POST", "/credentials/revoke", body=body)["revoked"]
    if revoked:
        out.print("revoked " + ", ".join(revoked))
    else:
        out.print("nothing to revoke: already revoked")


@app.command("groups")
@handle_errors
def groups(
    user: Annotated[str, typer.Argument(help="The user.")],
    names: Annotated[
        list[str] | None, typer.Argument(help="Its groups (none: no group at all).")
    ] = None,
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """Set the groups a user belongs to (their policies apply to all its keys)."""
    wanted = list(names or [])
    if local:
        admin = Local(data_dir, config)
        try:
            admin.identities.set_groups(user, wanted)
            admin.record("iam:AddUserToGroup", [user_arn(admin.account(), user)])
        finally:
            admin.close()
    else:
        call(endpoint, "PUT", f"/users/{user}/groups", body={"groups": wanted})
    out.print(f"{user}: groups {', '.join(sorted(set(wanted))) or '(none)'}")
