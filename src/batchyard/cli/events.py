"""``batchyard events``: job state change events, as AWS Batch sends them to EventBridge.

Without ``--follow`` it prints the events from where you say (``--after`` a cursor,
``--since`` a time, else the last ``--last`` changes) up to now and exits; with ``--follow``
it stays connected to the server's event stream (Server-Sent Events) and prints each event as
it happens, reconnecting with the last cursor it saw, so nothing is missed across a dropped
connection or a server restart. ``-o json`` prints one event per line (for jq and scripts).
"""

from __future__ import annotations

import enum
import json
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from batchyard.cli.common import (
    Api,
    EndpointOpt,
    Failed,
    Unreachable,
    Usage,
    err,
    handle_errors,
    out,
    short,
    styled,
)

PATH = "/batchyard/v1/events"


class EventsOutput(enum.StrEnum):
    table = "table"
    json = "json"


def parse_since(value: str, now_ms: int) -> int:
    """``10m``, ``2h``, ``1d``, ``30s`` (before now), epoch milliseconds or ISO 8601."""
    units = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        return now_ms - int(float(value[:-1]) * units[value[-1]])
    if value.isdigit():
        return int(value)
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Usage(
            f"--since {value!r}: give a duration (10m, 2h, 1d), epoch milliseconds or an "
            "ISO 8601 time"
        ) from None
    return int(parsed.timestamp() * 1000)


def line(event: dict[str, Any]) -> str:
    d = event.get("detail") or {}
    queue = (d.get("jobQueue") or "").rsplit("/", 1)[-1]
    reason = short(d.get("statusReason"), 70)
    status = d.get("status", "?")
    pad = " " * max(1, 10 - len(status))
    return (
        f"{event.get('time', '')}  {styled(status)}{pad}{d.get('jobId', '?')}  "
        f"{d.get('jobName', '')}  [bright_black]{queue}[/]  {reason}"
    )


def _emit(event: dict[str, Any], output: EventsOutput) -> None:
    if output == EventsOutput.json:
        sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        out.print(line(event), highlight=False, soft_wrap=True)


def sse(response: Any) -> Iterator[tuple[str | None, str | None, str]]:
    """Server-Sent Events from an httpx streaming response: (id, event, data) each."""
    cursor = event = None
    data: list[str] = []
    for raw in response.iter_lines():
        if raw == "":
            if data:
                yield cursor, event, "\n".join(data)
            elif cursor is not None:
                yield cursor, None, ""  # a bare id: the cursor moved on
            event, data = None, []
            continue
        if raw.startswith(":"):
            continue
        name, _, value = raw.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            cursor = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)


def follow_stream(api: Api, params: list[tuple[str, str]], output: EventsOutput) -> None:
    import httpx

    from batchyard.cli.signed import request_headers, ssl_context

    cursor: str | None = None
    failures = 0
    while True:
        query = [*params, ("follow", "true")]
        if cursor is not None:
            query = [(k, v) for k, v in query if k not in ("since", "tail")] + [("after", cursor)]
        url = api.endpoint + PATH + "?" + urllib.parse.urlencode(query)
        try:
            with httpx.stream(
                "GET",
                url,
                timeout=httpx.Timeout(10.0, read=60.0),
                headers={"Accept": "text/event-stream", **request_headers("GET", url, b"")},
                verify=ssl_context(api.endpoint) or True,
            ) as response:
                if response.status_code != 200:
                    body = response.read().decode(errors="replace")
                    try:
                        message = json.loads(body).get("message", body)
                    except ValueError:
                        message = body or f"HTTP {response.status_code}"
                    raise Failed(message)
                failures = 0
                for item_cursor, _name, data in sse(response):
                    if item_cursor is not None:
                        cursor = item_cursor
                    if data:
                        _emit(json.loads(data), output)
        except httpx.HTTPError as e:
            failures += 1
            if cursor is None and failures >= 3:
                raise Unreachable(
                    f"cannot follow the events of {api.endpoint} ({type(e).__name__}: {e})"
                ) from None
        err.print(
            f"[bright_black]the event stream closed; reconnecting after {cursor or 'now'}…[/]",
            highlight=False,
        )
        time.sleep(min(5.0, 0.5 * 2 ** min(failures, 4)))


@handle_errors
def events(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing events as they happen.")
    ] = False,
    after: Annotated[
        str | None, typer.Option("--after", help="Start after this cursor (an event's id line).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Start at this time: 10m, 2h, 1d, epoch ms or ISO 8601."),
    ] = None,
    last: Annotated[
        int,
        typer.Option(
            "--last", "-n", help="Without --after/--since: start with the last N state changes."
        ),
    ] = 20,
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Only jobs of this queue.")
    ] = None,
    job: Annotated[
        list[str] | None,
        typer.Option("--job", "-j", help="Only this job (and its array children)."),
    ] = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="Only changes to this status.")
    ] = None,
    output: Annotated[
        EventsOutput,
        typer.Option("--output", "-o", help="table (for people) or json (one event per line)."),
    ] = EventsOutput.table,
    endpoint: EndpointOpt = None,
) -> None:
    """Job state change events ("Batch Job State Change", as AWS sends to EventBridge)."""
    api = Api(endpoint)
    params: list[tuple[str, str]] = []
    for name, values in (("queue", queue), ("jobId", job), ("status", status)):
        params += [(name, v.upper() if name == "status" else v) for v in values or []]
    if after is not None:
        params.append(("after", after))
    elif since is not None:
        params.append(("since", str(parse_since(since, int(time.time() * 1000)))))
    elif job and not follow:
        params.append(("after", "0"))  # a job's events: all of them
    else:
        params.append(("tail", str(max(0, last))))
    if follow:
        follow_stream(api, params, output)
        return
    cursor = None
    while True:
        query = (
            list(params)
            if cursor is None
            else [(k, v) for k, v in params if k not in ("after", "since", "tail")]
            + [("after", cursor)]
        )
        page = api.get(PATH + "?" + urllib.parse.urlencode([*query, ("limit", "1000")]))
        for event in page["events"]:
            _emit(event, output)
        if page["cursor"] == cursor:  # caught up (an empty page may only mean "scan on")
            return
        cursor = page["cursor"]
