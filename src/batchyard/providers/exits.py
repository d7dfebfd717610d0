"""An attempt's end as the processes that run jobs report it: the local agent and the Ray
supervisor both send exit records as JSON objects, and both are read here.

A record: ``{"id", "at", "exit_code", "reason"?, "usage"?, "never_started"?}``. ``exit_code``
is null when no process ran or its status is unknown; ``never_started`` (true) means the
attempt was given up before its process was started, for a reason that is not the job's (the
agent stopped first), so the job may simply run again.
"""

from __future__ import annotations

from typing import Any

from batchyard.providers.base import Exited


def exited(record: dict[str, Any]) -> Exited:
    """The :class:`Exited` an exit record describes."""
    return Exited(
        attempt_id=record["id"],
        at=record["at"],
        exit_code=record.get("exit_code"),
        reason=record.get("reason"),
        usage=record.get("usage"),
        never_started=bool(record.get("never_started")),
    )
