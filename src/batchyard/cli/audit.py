"""``batchyard audit``: the audit log, newest first, like CloudTrail's event history.

batchyard audit --since 1h
batchyard audit --principal alice --action batch:TerminateJob --output json
batchyard audit --outcome AccessDeniedException
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Annotated, Any

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
    short,
)

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def when(text: str | None, flag: str) -> int | None:
    """``90m``, ``2h``, ``7d`` (ago), an ISO date/time, or epoch milliseconds."""
    if not text:
        return None
    m = _SPAN.match(text.strip())
    if m:
        return int((time.time() - float(m.group(1)) * _UNIT[m.group(2)]) * 1000)
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise Usage(
            f"{flag} {text!r}: write a span ago (30m, 2h, 7d), an ISO time "
            "(2025-01-31T12:00) or epoch milliseconds"
        ) from None


@handle_errors
def audit(
    since: Annotated[
        str | None, typer.Option(help="From: 30m, 2h, 7d ago, an ISO time, or epoch ms.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Until (same forms).")] = None,
    principal: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. batch:SubmitJob.")
    ] = None,
    outcome: Annotated[
        str | None, typer.Option(help="Only this outcome: Success, or an error code.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many records.")] = 100,
    output: OutputOpt = Output.table,
    local: LocalOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    endpoint: EndpointOpt = None,
) -> None:
    """Who did what, to which resource, from where, and how it ended (newest first)."""
    query: dict[str, Any] = {
        "since": when(since, "--since"),
        "until": when(until, "--until"),
        "principal": principal,
        "action": action,
        "outcome": outcome,
    }
    events: list[dict[str, Any]] = []
    token = None
    while len(events) < limit:
        page = min(1000, limit - len(events))
        if local:
            admin = Local(data_dir, config)
            try:
                rows, token = admin.audit.query(**query, limit=page, next_token=token)
            finally:
                admin.close()
            from batchyard.api.extensions import camel

            found = camel({"events": rows})["events"]
        else:
            answer = call(
                endpoint, "GET", "/audit", query={**query, "limit": page, "nextToken": token}
            )
            found, token = answer["events"], answer.get("nextToken")
        events += found
        if not token or not found:
            break
    if output == Output.json:
        print_json({"events": events})
        return
    if not events:
        out.print("no audit records match")
        return
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("TIME", "PRINCIPAL", "ACTION", "RESOURCE", "SOURCE", "OUTCOME"):
        t.add_column(col, no_wrap=col != "RESOURCE", overflow="fold")
    for e in events:
        res = ", ".join(e.get("resources") or []) or "-"
        ok = e["outcome"] == "Success"
        t.add_row(
            clock(e["at"]),
            e["principal"],
            e["action"],
            short(res, 70),
            e.get("source") or "-",
            "[green]Success[/]" if ok else f"[red]{e['outcome']}[/]",
        )
    out.print(t)
