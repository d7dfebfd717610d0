""" "Did you mean" for a name a request got wrong: the closest names of the same kind, found
only once the lookup has failed, so a request that names things right reads nothing more."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sqlalchemy import Connection

from batchyard.errors import NotFound
from batchyard.store import resources as repo

MAX_SUGGESTIONS = 3


def close_matches(name: str, known: Iterable[str]) -> list[str]:
    """Up to three known names like ``name``, closest first, ignoring case (``Quickstart``
    finds ``quickstart``); never ``name`` itself."""
    by_lower: dict[str, str] = {}
    for k in known:
        if k != name:
            by_lower.setdefault(k.lower(), k)
    found = difflib.get_close_matches(name.lower(), by_lower, n=MAX_SUGGESTIONS, cutoff=0.6)
    return [by_lower[f] for f in found]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'a'?"``, ``"; did you mean 'a', 'b' or 'c'?"``, or ``""``."""
    quoted = [repr(m) for m in close_matches(name, known)]
    if not quoted:
        return ""
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"; did you mean {listed}?"


def unknown(conn: Connection, kind: repo.Kind, name: str, field: str | None = None) -> NotFound:
    """The error for a ``kind`` named ``name`` that does not
    exist, with the names it may have meant; ``field`` is the request member that named it."""
    where = f"{field}: " if field else ""
    hint = did_you_mean(name, repo.names(conn, kind))
    return NotFound(f"{where}{kind} {name!r} does not exist{hint}")


def unknown_definition(
    conn: Connection, name: str, revision: int | None, field: str | None = None
) -> NotFound:
    """The error for a job definition reference that finds nothing: ``name`` (the newest
    ACTIVE revision) or ``name:revision``."""
    where = f"{field}: " if field else ""
    newest = repo.latest_revision(conn, name)
    if revision is None:
        if newest:
            hint = "; every revision of it is INACTIVE (deregistered)"
        else:
            hint = did_you_mean(name, repo.names(conn, "job definition"))
        return NotFound(f"{where}job definition {name!r} has no ACTIVE revision{hint}")
    if newest:
        hint = f"; its newest revision is {name}:{newest}"
    else:
        hint = did_you_mean(name, repo.names(conn, "job definition"))
    return NotFound(f"{where}job definition {name}:{revision} does not exist{hint}")
