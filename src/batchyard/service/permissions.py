"""A job that failed on a permission: who it ran as, and how to give it access.

A root server runs jobs as unprivileged uids in group ``batchyard-jobs`` (docs/security.md,
"Jobs"): a job that writes where only root may fails with ``Permission denied`` in its output
and an exit code, and nothing else says why. When a failed attempt's output ends with such an
error, ``explain``, ``describe`` and the dashboard say which uid and group it ran as and how to
grant access. Only the last few KiB of a failed attempt's log are read.
"""

from __future__ import annotations

import os
import re
from typing import Any

from batchyard.logs.store import LogStore
from batchyard.providers.base import ran_as_text
from batchyard.providers.local.access import blocking_dir

TAIL_BYTES = 4096  # how much of a failed attempt's log end is searched
TAIL_LINES = 40
_DENIED = re.compile(r"permission denied|\bEACCES\b|\[Errno 13\]", re.IGNORECASE)
# an absolute path in an error line: the last one is what was refused (the first is often the
# program's own name, as in "/usr/bin/sh: 1: cannot create /tmp/x/out: Permission denied")
_PATH = re.compile(r"(?<![\w.~-])(/[^\s'\"`:,;()\[\]‘’“”<>]+)")


def denied_line(logs: LogStore, stream: str) -> str | None:
    """The last line of the stream's end saying a permission was denied, if any."""
    events = logs.read_backward(stream, None, TAIL_LINES, TAIL_BYTES)
    for e in reversed(events):
        if _DENIED.search(e.message):
            return e.message.strip()[:500]
    return None


def _target(line: str) -> str | None:
    """What to grant access to: the refused path if it exists, else the directory it was to
    be made in (the nearest one that exists)."""
    paths = _PATH.findall(line)
    if not paths:
        return None
    path = paths[-1].rstrip(".")
    while path not in ("", "/") and not os.path.lexists(path):
        path = os.path.dirname(path)
    return path if path not in ("", "/") else None


def permission_hint(number: int, ran_as: dict[str, Any], line: str) -> dict[str, Any]:
    """The hint for attempt ``number``, which ran as ``ran_as`` and whose output says
    ``line``: ``{"attempt", "ranAs", "line", "path", "fix"}`` (``fix``: the sentence)."""
    group = ran_as.get("group") or str(ran_as.get("gid"))
    uid = int(ran_as["uid"])
    target = _target(line)
    where = target or "DIR"
    fix = (
        f'attempt {number} ran as {ran_as_text(ran_as)} and failed on a permission: "{line}". '
        f"Give its group access: chgrp {group} {where} && chmod g+rwX {where}"
    )
    if target is not None:
        gids = {int(ran_as["gid"])}
        blocked = blocking_dir(target, uid, gids)
        if blocked is not None:
            fix += (
                f" ({blocked}, on the way there, does not let that uid through either: use a "
                f"directory outside it, or chmod o+x {blocked})"
            )
    if uid != os.geteuid():
        fix += (
            '; or run jobs as a user who has access: run_as = "NAME" in the server\'s '
            "settings (BATCHYARD_RUN_AS; see docs/security.md, Jobs)"
        )
    return {"attempt": number, "ran_as": ran_as, "line": line, "path": target, "fix": fix + "."}


def for_attempt(logs: LogStore | None, attempt: dict[str, Any]) -> dict[str, Any] | None:
    """The hint for a failed attempt (``insight``'s attempt dict) that ran and hit a
    permission error, else None. A job of uid 0 is never refused for its identity."""
    ran_as = attempt.get("ran_as")
    if (
        logs is None
        or attempt["status"] != "FAILED"
        or not ran_as
        or int(ran_as.get("uid", 0)) == 0
        or not attempt.get("log_stream")
    ):
        return None
    line = denied_line(logs, attempt["log_stream"])
    if line is None and attempt.get("reason") and _DENIED.search(attempt["reason"]):
        line = attempt["reason"]
    return None if line is None else permission_hint(attempt["number"], ran_as, line)
