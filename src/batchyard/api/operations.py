"""The table of operation handlers, filled by the modules in ``api.handlers``.

A handler takes the edge's :class:`Env` and the request as snake_case values, calls the
service layer and returns the response as snake_case values; it never sees HTTP. Handlers
are plain functions that may block (the edge runs them on a worker thread); a coroutine
function is awaited on the event loop instead, for a call that waits without working
(SubmitJob, on the shared commit).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from batchyard.api.arns import Arns
from batchyard.service.services import Services


@dataclass(slots=True)
class Env:
    services: Services
    arns: Arns


Handler = Callable[[Env, dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]
HANDLERS: dict[str, Handler] = {}


def operation(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        assert name not in HANDLERS, f"two handlers for {name}"
        HANDLERS[name] = fn
        return fn

    return register


def load_handlers() -> dict[str, Handler]:
    """Import every handler module once, so that their decorators fill the table."""
    from batchyard.api.handlers import (  # noqa: F401
        compute,
        definitions,
        jobs,
        policies,
        tags,
    )

    return HANDLERS
