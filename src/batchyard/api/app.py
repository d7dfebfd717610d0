"""The ASGI application: health, the AWS Batch API, and the error boundary around it."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from batchyard import ui
from batchyard.api import extensions
from batchyard.api import logs as logs_api
from batchyard.api import usage as usage_api
from batchyard.api.arns import Arns, PerRegion, check_region
from batchyard.api.model import batch_model
from batchyard.api.operations import Env, load_handlers
from batchyard.api.protocol import Router, error_response, parse_request, response
from batchyard.api.security import SecurityApi
from batchyard.auth.guard import PRINCIPAL
from batchyard.auth.middleware import AuthMiddleware
from batchyard.auth.sigv4 import claimed_region
from batchyard.errors import BatchyardError, NotSupported, PayloadTooLarge, ServerError
from batchyard.events.api import EventsApi

if TYPE_CHECKING:
    from batchyard.auth.identity import Principal
    from batchyard.auth.targets import Target
    from batchyard.server import Runtime

log = logging.getLogger("batchyard.api")
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (without reading on) anything larger than ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge.over(limit, int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge.over(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(runtime: Runtime) -> ASGIApp:
    router = Router(batch_model())
    handlers = load_handlers()
    default = Env(services=runtime.services, arns=runtime.arns)
    account = runtime.arns.account_id
    envs = PerRegion(lambda region: Env(services=runtime.services, arns=Arns(region, account)))
    limit = runtime.settings.max_request_bytes
    guard = runtime.guard

    def env_of(scope: Scope) -> Env:
        """The request acts in the region its signature's scope names (docs/api-compatibility.md,
        "Regions and accounts"); an unsigned one in the server's."""
        region = claimed_region(scope["headers"], scope["query_string"])
        if region is None or region == default.arns.region:
            return default
        return envs.get(check_region(region))

    def call(
        principal: Principal | None, name: str, req: dict, authorized: list[Target], env: Env
    ) -> Any:
        """Authorize, then handle: one trip to a worker thread for both (both may block)."""
        authorized.append(guard.check(principal, "batch", name, req, env.arns.region))
        return handlers[name](env, req)

    async def call_async(
        principal: Principal | None, name: str, req: dict, authorized: list[Target], env: Env
    ) -> Any:
        """A handler that waits on the event loop (see api.operations): authorized there too
        unless that needs the store."""
        region = env.arns.region
        target = guard.check_at_once(principal, "batch", name, req, region)
        if target is None:
            target = await anyio.to_thread.run_sync(
                guard.check, principal, "batch", name, req, region
            )
        authorized.append(target)
        result = handlers[name](env, req)
        assert inspect.isawaitable(result)  # only coroutine handlers are called here
        return await result

    async def aws(request: Request) -> Response:
        principal = request.scope.get(PRINCIPAL)
        authorized: list[Target] = []  # what the request was authorized for (security.md)
        try:
            env = env_of(request.scope)
            body = await read_body(request, limit)
            target = request.headers.get("x-amz-target", "")
            if target.startswith(logs_api.TARGET_PREFIX) and request.scope["path"] == "/":
                request.scope["batchyard.operation"] = target.rsplit(".", 1)[-1]  # metrics
                region = env.arns.region

                async def check(name: str, req: dict) -> None:
                    await anyio.to_thread.run_sync(
                        guard.check, principal, "logs", name, req, region
                    )

                return await logs_api.handle(
                    runtime.logs_service, target, body, check, arns=env.arns
                )
            raw = request.scope.get("raw_path") or request.scope["path"].encode()
            op, labels = router.match(request.method, raw.decode("latin-1"))
            request.scope["batchyard.operation"] = op.name  # for the metrics
            if op.name not in handlers:  # said before validation: no input would help
                raise NotSupported(
                    f"{op.name} is part of the AWS Batch API but batchyard does not support it "
                    "yet; see the README for the operations it implements"
                )
            req = parse_request(op, body, labels, request.scope["query_string"].decode("latin-1"))
            if inspect.iscoroutinefunction(handlers.get(op.name)):
                result = await call_async(principal, op.name, req, authorized, env)
            else:
                result = await anyio.to_thread.run_sync(
                    call, principal, op.name, req, authorized, env
                )
            guard.outcome(principal, op.name, authorized[0])
            return response(op, result)
        except BatchyardError as e:
            checked = authorized[0] if authorized else None
            if isinstance(e, ServerError):
                log.error("%s %s failed: %s", request.method, request.url.path, e.message)
            guard.outcome(principal, request.scope.get("batchyard.operation"), checked, e)
            return error_response(e)
        except Exception:
            checked = authorized[0] if authorized else None
            log.exception("%s %s failed", request.method, request.url.path)
            err = ServerError("the server failed to process this request; its log has the details")
            guard.outcome(principal, request.scope.get("batchyard.operation"), checked, err)
            return error_response(err)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "store": runtime.store.dialect})

    api = runtime.metrics.endpoint(aws)
    events = EventsApi(
        runtime.store,
        runtime.outbox,
        runtime.events,
        runtime.settings.webhooks,
        runtime.stopping,
    )
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", runtime.metrics.handle, methods=["GET"]),
            *extensions.routes(runtime.insight),
            *events.routes(),
            *usage_api.routes(runtime.usage),
            *SecurityApi(guard).routes(),
            *ui.routes(runtime),
            Route("/", ui.root(api), methods=["GET"]),  # a browser goes to the dashboard
            Route("/{path:path}", api, methods=_METHODS),
        ],
        lifespan=runtime.lifespan,
    )
    # authentication in front of every route, present and future (docs/security.md)
    return ServerErrorMiddleware(AuthMiddleware(_Edge(api, app), guard=guard))


class _Edge:
    """The AWS Batch API (every operation's path starts with ``/v1/``) straight to its
    endpoint; everything else through the application's router, which would otherwise try
    each of its other routes' patterns on every API request first."""

    def __init__(
        self, api: Callable[[Request], Awaitable[Response]], app: Callable[..., Awaitable[None]]
    ) -> None:
        self.api = api
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            response = await self.api(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
