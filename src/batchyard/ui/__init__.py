"""The web dashboard, served by the server itself at ``/ui`` (a browser opening ``/`` is sent
there).

Server-rendered HTML (Jinja2 templates shipped in the package), one small stylesheet and one
small script of our own, charts as SVG generated on the server: nothing to build or install
beyond the package. Pages update live from a Server-Sent Events stream of job transitions
(``/ui/stream``): a change re-renders the part of the page it affects, never the whole page,
and no page polls its jobs. A job's log is followed by a stream of its own.

Every page, fragment, stream and action is a handler that receives the request and calls the
same services as the AWS API (see pages.py), so authentication in front of the API covers the
dashboard too. See docs/dashboard.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from batchyard.api import index

if TYPE_CHECKING:
    from batchyard.server import Runtime


def routes(runtime: Runtime) -> list[BaseRoute]:
    from batchyard.ui.pages import Pages

    return Pages(runtime).routes()


def root(api: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """``GET /``: a browser (it accepts HTML) is sent to the dashboard; a request naming an
    AWS operation (``X-Amz-Target``) goes to the API; any other client gets a short page
    saying where the dashboard and the API are (api/index.py)."""

    async def handle(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/ui", status_code=307)
        if "x-amz-target" in request.headers:
            return await api(request)
        return index.page(request)

    return handle
