"""``batchyard secrets``: the secret store that job definitions' ``secrets`` read from.

    printf %s "$DB_PASSWORD" | batchyard secrets put db-password
    batchyard secrets put /prod/db/password --value-file password.txt
    printf %s '{"username": "app", "password": "..."}' | batchyard secrets put db-creds
    batchyard secrets list
    batchyard secrets delete db-password

A job definition names a secret in ``containerProperties.secrets`` the ways AWS Batch
definitions do: ``{"name": "DB_PASSWORD", "valueFrom": "db-password"}``, a Secrets Manager
ARN (``arn:aws:secretsmanager:REGION:ACCOUNT:secret:db-creds``, with or without AWS's
``-AbCdEf`` suffix, and ``:password::`` to take one key of a JSON value), or a Systems
Manager parameter's name or ARN (``/prod/db/password``,
``arn:aws:ssm:REGION:ACCOUNT:parameter/prod/db/password``). The value is read from standard
input or a file, never from the command line (where ``ps`` would show it), is encrypted at
rest, and is never shown again.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer
from rich.table import Table

from batchyard.cli.admin import ConfigOpt, DataDirOpt, Local, LocalOpt, call
from batchyard.cli.common import (
    EndpointOpt,
    Output,
    OutputOpt,
    Usage,
    clock,
    handle_errors,
    out,
    print_json,
)

app = typer.Typer(
    help="The secret store: values jobs receive as environment variables (never shown back). "
    "A job definition's secrets[].valueFrom names one as AWS Batch definitions do: by name, "
    "Secrets Manager ARN (with :JSON-KEY:: to take one key of a JSON value) or Systems "
    "Manager parameter name or ARN. See docs/security.md.",
    no_args_is_help=True,
)
NAME_HELP = (
    "The secret's name, as valueFrom names it: a Secrets Manager name (db-creds), a "
    "parameter name (/prod/db/password), or an ARN of either (stored under the name in it)."
)


def _value(value_file: Path | None) -> str:
    if value_file is not None:
        try:
            return value_file.read_text().rstrip("\n")
        except OSError as e:
            raise Usage(f"cannot read {value_file}: {e.strerror}") from None
    if sys.stdin.isatty():
        first = getpass.getpass("value: ")
        if getpass.getpass("again: ") != first:
            raise Usage("the two values differ; nothing was stored")
        return first
    return sys.stdin.read().rstrip("\n")


@app.command("put")
@handle_errors
def put(
    name: Annotated[str, typer.Argument(help=NAME_HELP)],
    value_file: Annotated[
        Path | None,
        typer.Option(help="Read the value from this file (default: standard input)."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note kept with it.")] = None,
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """Create or replace a secret (a new version); its value never comes back out.

    A value that is a JSON object lets a definition take one of its keys: a Secrets Manager
    ARN in valueFrom followed by the key and two colons, e.g. ...db-creds:password::"""
    from batchyard.service.secrets import store_name

    value = _value(value_file)
    if local:
        admin = Local(data_dir, config)
        try:
            name = store_name(name)
            version = admin.secrets.put(name, value, description)
            admin.record("secretsmanager:PutSecretValue", [f"secret:{name}"])
        finally:
            admin.close()
    else:
        body = {"value": value, "description": description}
        done = call(endpoint, "PUT", f"/secrets/{quote(name, safe='')}", body=body)
        name, version = done["name"], done["version"]
    out.print(f"stored secret {name} (version {version})")


@app.command("list")
@handle_errors
def list_secrets(
    output: OutputOpt = Output.table,
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """The secrets' names, versions and dates (never their values)."""
    if local:
        from batchyard.api.extensions import camel

        admin = Local(data_dir, config)
        try:
            found = camel(admin.secrets.list())
        finally:
            admin.close()
    else:
        found = call(endpoint, "GET", "/secrets")["secrets"]
    if output == Output.json:
        print_json({"secrets": found})
        return
    if not found:
        out.print("no secrets yet: batchyard secrets put NAME < value")
        return
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("NAME", "VERSION", "UPDATED", "DESCRIPTION"):
        t.add_column(col, no_wrap=col != "DESCRIPTION")
    for s in found:
        updated = clock(s.get("updatedAt"))
        t.add_row(s["name"], str(s["version"]), updated, s.get("description") or "")
    out.print(t)


@app.command("delete")
@handle_errors
def delete(
    name: Annotated[str, typer.Argument(help="The secret to delete (a name or an ARN).")],
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """Delete a secret; jobs that still name it fail to start (ResourceInitializationError)."""
    from batchyard.service.secrets import store_name

    if local:
        admin = Local(data_dir, config)
        try:
            name = store_name(name)
            admin.secrets.delete(name)
            admin.record("secretsmanager:DeleteSecret", [f"secret:{name}"])
        finally:
            admin.close()
    else:
        name = call(endpoint, "DELETE", f"/secrets/{quote(name, safe='')}")["name"]
    out.print(f"deleted secret {name}")
