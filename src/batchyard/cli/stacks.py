"""``apply``, ``diff`` and ``delete`` of a declarative stack file (see docs/cli.md#stacks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from batchyard.cli.common import (
    EXIT_FAILED,
    Api,
    EndpointOpt,
    Output,
    OutputOpt,
    Usage,
    err,
    handle_errors,
    out,
    print_json,
)
from batchyard.cli.stack.apply import Applier, ApplyError, count_writes
from batchyard.cli.stack.loader import Stack, StackError, load
from batchyard.cli.stack.plan import SINGULAR, Change, Planner, Remote
from batchyard.cli.stack.schema import KINDS, dumps, load_schema

FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        help="The stack file (YAML; - reads standard input).",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", help="Seconds to wait for each resource to settle.", min=1),
]

_SIGN = {
    "create": "[green]+[/]",
    "register": "[green]+[/]",
    "update": "[yellow]~[/]",
    "delete": "[red]-[/]",
    "unchanged": " ",
    "absent": " ",
}
_VERB = {
    "create": "create",
    "register": "register",
    "update": "update",
    "delete": "delete",
    "unchanged": "unchanged",
    "absent": "not on the server",
}


def _value(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str) if v is not None else "(none)"
    return text if len(text) <= 120 else text[:117] + "..."


def _read(file: Path | None) -> Stack:
    if file is None:
        raise typer.BadParameter("give the stack file with -f FILE", param_hint="--file")
    try:
        return load(file)
    except StackError as e:
        raise Usage(
            f"{len(e.problems)} problem(s) in {e.source}; nothing was changed\n" + e.render()
        ) from None


def _plan(api: Api, stack: Stack, delete: bool = False) -> list[Change]:
    planner = Planner(stack, Remote(api.batch))
    try:
        return planner.plan_delete() if delete else planner.plan_apply()
    except StackError as e:
        raise Usage(
            f"{len(e.problems)} problem(s) in {e.source}; nothing was changed\n" + e.render()
        ) from None


def show_changes(changes: list[Change], verbose_create: bool = True) -> None:
    for c in changes:
        if not c.changes:
            continue
        note = f" ({c.note})" if c.note else ""
        out.print(f"{_SIGN[c.action]} {_VERB[c.action]} {SINGULAR[c.kind]} [bold]{c.name}[/]{note}")
        if c.action in ("create", "register") and c.current is None and verbose_create:
            name_field = KINDS[c.kind][1]
            for key, value in (c.desired or {}).items():
                if key != name_field:
                    out.print(f"    {key}: {_value(value)}", markup=False, highlight=False)
        for f in c.fields:
            out.print(
                f"    {f.path}: {_value(f.old)} → {_value(f.new)}", markup=False, highlight=False
            )
    unchanged = [c for c in changes if not c.changes]
    if unchanged:
        what = "unchanged" if any(c.action == "unchanged" for c in unchanged) else "absent"
        names = ", ".join(f"{SINGULAR[c.kind]} {c.name}" for c in unchanged)
        out.print(f"  {len(unchanged)} {what}: {names}", highlight=False)


_PENDING = {
    "create": "to create",
    "register": "to register",
    "update": "to update",
    "delete": "to delete",
    "unchanged": "unchanged",
    "absent": "absent",
}
_DONE = {**_PENDING, "create": "created", "register": "registered", "update": "updated"}


def _counts(changes: list[Change], words: dict[str, str] = _PENDING) -> str:
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    return ", ".join(f"{counts[k]} {w}" for k, w in words.items() if counts.get(k))


def _fail_apply(stack: Stack, e: ApplyError, verb: str) -> None:
    c = e.change
    line, col = stack.where((c.kind, c.index)) if c.index >= 0 else (0, 0)
    where = f"{stack.source}:{line}:{col}: " if line else f"{stack.source}: "
    done = (
        f"{e.done} change(s) were made before this; fix the problem and run it again (it "
        "continues where it stopped)"
        if e.done
        else "nothing was changed"
    )
    err.print(
        f"[bold red]error:[/] {where}{SINGULAR[c.kind]} {c.name}: {verb} refused: {e.message}\n"
        f"  {done}",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_FAILED)


@handle_errors
def apply(
    file: FileOpt = None,
    print_schema: Annotated[
        bool, typer.Option("--print-schema", help="Print the stack file's JSON Schema and exit.")
    ] = False,
    timeout: TimeoutOpt = 300,
    output: OutputOpt = Output.table,
    endpoint: EndpointOpt = None,
) -> None:
    """Create or update what a stack file declares (idempotent, in dependency order).

    Order: scheduling policies, consumable resources, compute environments (waiting until
    VALID), job queues, job definitions (a new revision only when the spec changed).
    Applying an unchanged file makes no write request; an invalid file changes nothing."""
    if print_schema:
        typer.echo(dumps(load_schema()), nl=False)
        return
    stack = _read(file)
    api = Api(endpoint)
    changes = _plan(api, stack)
    todo = [c for c in changes if c.changes]
    if output == Output.json:
        writes = count_writes(api.batch)
        try:
            Applier(api.batch, stack, lambda _: None, timeout=timeout).apply(changes)
        except ApplyError as e:
            _fail_apply(stack, e, "apply")
        print_json({"changes": [c.as_dict() for c in changes], "writeRequests": len(writes)})
        return
    if not todo:
        out.print(
            f"no changes: the server already matches {stack.source} "
            f"({_counts(changes)}; 0 write requests)",
            highlight=False,
        )
        return
    writes = count_writes(api.batch)
    applier = Applier(
        api.batch, stack, lambda m: out.print(f"  {m}", highlight=False), timeout=timeout
    )
    try:
        applier.apply(changes)
    except ApplyError as e:
        _fail_apply(stack, e, "apply")
    out.print(
        f"applied {stack.source}: {_counts(changes, _DONE)} ({len(writes)} write requests)",
        highlight=False,
    )


@handle_errors
def diff(
    file: FileOpt = None,
    exit_code: Annotated[
        bool,
        typer.Option(
            "--exit-code", help="Exit 1 when there are differences (like git diff --exit-code)."
        ),
    ] = False,
    output: OutputOpt = Output.table,
    endpoint: EndpointOpt = None,
) -> None:
    """Show what `apply` would change, without changing anything."""
    stack = _read(file)
    api = Api(endpoint)
    changes = _plan(api, stack)
    differs = any(c.changes for c in changes)
    if output == Output.json:
        print_json({"changes": [c.as_dict() for c in changes], "differs": differs})
    elif not differs:
        out.print(
            f"no differences: the server matches {stack.source} ({_counts(changes)})",
            highlight=False,
        )
    else:
        show_changes(changes)
        out.print(
            f"{_counts(changes)}; run `batchyard apply -f {stack.source}` to make these changes",
            highlight=False,
        )
    if differs and exit_code:
        raise typer.Exit(EXIT_FAILED)


@handle_errors
def delete(
    file: FileOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    timeout: TimeoutOpt = 300,
    endpoint: EndpointOpt = None,
) -> None:
    """Delete what a stack file declares, in reverse dependency order.

    Deregisters the job definitions' ACTIVE revisions, disables and deletes the queues, then
    the compute environments, then consumable resources and scheduling policies. Resources
    not in the file are left alone."""
    stack = _read(file)
    api = Api(endpoint)
    changes = _plan(api, stack, delete=True)
    if not any(c.changes for c in changes):
        out.print(f"nothing to delete: none of {stack.source}'s resources exist", highlight=False)
        return
    show_changes(changes)
    import sys

    if not yes and sys.stdin.isatty() and not typer.confirm("Delete these resources?"):
        raise typer.Exit(EXIT_FAILED)
    writes = count_writes(api.batch)
    applier = Applier(
        api.batch, stack, lambda m: out.print(f"  {m}", highlight=False), timeout=timeout
    )
    try:
        applier.delete(changes)
    except ApplyError as e:
        _fail_apply(stack, e, "delete")
    deleted = sum(1 for c in changes if c.changes)
    out.print(
        f"deleted {deleted} resource(s) of {stack.source} ({len(writes)} write requests)",
        highlight=False,
    )
