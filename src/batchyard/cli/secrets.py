"""``batchyard secrets``: the secret store that job definitions' ``secrets`` read from.

    printf %s "$DB_PASSWORD" | batchyard secrets put db-password
    batchyard secrets put api-token --value-file token.txt
    batchyard secrets list
    batchyard secrets delete db-password

A job definition names a secret in ``containerProperties.secrets``:
``{"name": "DB_PASSWORD", "valueFrom": "db-password"}``; the job gets it as the variable
``DB_PASSWORD``. The value is read from standard input or a file, never from the command line
(where ``ps`` would show it), is encrypted at rest, and is never shown again.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

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
    help="The secret store: values jobs receive as environment variables (never shown back).",
    no_args_is_help=True,
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
    name: Annotated[str, typer.Argument(help="The secret's name (what valueFrom says).")],
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
    """Create or replace a secret (a new version); its value never comes back out."""
    value = _value(value_file)
    if local:
        admin = Local(data_dir, config)
        try:
            version = admin.secrets.put(name, value, description)
            admin.record("secretsmanager:PutSecretValue", [f"secret:{name}"])
        finally:
            admin.close()
    else:
        body = {"value": value, "description": description}
        version = call(endpoint, "PUT", f"/secrets/{name}", body=body)["version"]
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
    name: Annotated[str, typer.Argument(help="The secret to delete.")],
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """Delete a secret; jobs that still name it fail to start (ResourceInitializationError)."""
    if local:
        admin = Local(data_dir, config)
        try:
            admin.secrets.delete(name)
            admin.record("secretsmanager:DeleteSecret", [f"secret:{name}"])
        finally:
            admin.close()
    else:
        call(endpoint, "DELETE", f"/secrets/{name}")
    out.print(f"deleted secret {name}")
