"""Authentication in front of every route, as ASGI middleware: whatever routes the
application has (the AWS API, the CloudWatch Logs endpoint, batchyard's own endpoints, the
dashboard, events, metrics), a request reaches them only with a verified principal.

Open without a signature: ``GET /healthz``, the dashboard's login page and static files
(``/ui/login``, ``/ui/logout``, ``/ui/static/…``) and, when ``auth_metrics = false``,
``/metrics``. With ``auth = "off"`` every request passes as the unrestricted anonymous
principal (the loopback default).

With authentication required the body is read here in full (it is part of the signature;
``max_request_bytes`` caps it, 413 beyond) and handed on unchanged. batchyard's own endpoints
are authorized here by the table in :mod:`batchyard.auth.routes`; the AWS operations are
authorized once parsed, in the edge (:meth:`batchyard.auth.guard.Guard.check`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote, urlsplit

import anyio.to_thread
import orjson

from batchyard.api.protocol import request_id
from batchyard.auth import routes, sigv4
from batchyard.auth.guard import PRINCIPAL, SESSION_COOKIE, Guard
from batchyard.errors import (
    AccessDenied,
    AuthError,
    BatchyardError,
    PayloadTooLarge,
    ServerError,
    Throttled,
)

log = logging.getLogger("batchyard.auth")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _headers(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]


def _cookie(headers: list[tuple[str, str]]) -> str | None:
    for k, v in headers:
        if k != "cookie":
            continue
        for part in v.split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE and value:
                return value
    return None


def _signed(headers: list[tuple[str, str]]) -> bool:
    return any(k == "authorization" for k, _ in headers)


def _source(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


async def error(send: Send, err: BatchyardError, headers: list[tuple[str, str]]) -> None:
    """An AWS-shaped error, in the JSON flavour of the protocol the request used."""
    target = next((v for k, v in headers if k == "x-amz-target"), "")
    media = "application/x-amz-json-1.1" if target else "application/json"
    body = orjson.dumps({"__type": err.code, "message": err.message})
    extra = [(b"retry-after", b"1")] if isinstance(err, Throttled) else []
    await send(
        {
            "type": "http.response.start",
            "status": err.status,
            "headers": [
                (b"content-type", media.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"x-amzn-errortype", err.code.encode()),
                (b"x-amzn-requestid", request_id().encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


class AuthMiddleware:
    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard
        self.limit = guard.settings.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        headers = _headers(scope)
        source = _source(scope)
        if routes.exempt(path, self.guard.settings):
            scope[PRINCIPAL] = None
            await self.app(scope, receive, send)
            return
        if not self.guard.required:
            principal = self.guard.anonymous(source, headers)
            scope[PRINCIPAL] = principal
            if self.guard.throttle is not None:
                try:
                    self.guard.take(principal)
                except Throttled as e:
                    await error(send, e, headers)
                    return
            await self.app(scope, receive, send)
            return
        try:
            body = await self._body(scope, receive, headers)
        except PayloadTooLarge as e:
            await error(send, e, headers)
            return
        raw = scope.get("raw_path") or path.encode()
        req = sigv4.Request(
            method,
            raw.decode("latin-1"),
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            hashlib.sha256(body).hexdigest(),
        )
        secure = scope.get("scheme") == "https"
        cookie = _cookie(headers) if routes.sessions_allowed(path) else None
        try:
            principal = await anyio.to_thread.run_sync(
                self.guard.authenticate, req, source, secure, cookie
            )
            self.guard.take(principal)
        except AuthError as e:
            self.guard.refused_signature(e, req, source, routes.operation(method, raw, headers))
            try:
                self.guard.refused(source)
            except Throttled as t:
                await error(send, t, headers)
                return
            if routes.wants_login(method, path, headers):
                await _redirect(send, f"/ui/login?next={quote(path)}")
                return
            await error(send, e, headers)
            return
        except Throttled as e:
            await error(send, e, headers)
            return
        except BatchyardError as e:
            await error(send, e, headers)
            return
        except Exception:
            log.exception("authentication of %s %s failed", method, path)
            await error(send, ServerError("the server failed to authenticate the request"), headers)
            return
        if cookie and method not in ("GET", "HEAD", "OPTIONS") and not _signed(headers):
            origin = next((v for k, v in headers if k == "origin"), None)
            host = next((v for k, v in headers if k == "host"), "")
            if origin is not None and urlsplit(origin).netloc != host:  # besides SameSite
                await error(send, AccessDenied("a cross-site request with a session"), headers)
                return
        scope[PRINCIPAL] = principal
        replay = _replay(body, receive)
        rule = routes.rule(method, path)
        if rule is None:  # the AWS API: authorized per operation once parsed
            await self.app(scope, replay, send)
            return
        if rule.inside:  # the endpoint authorizes itself
            await self.app(scope, replay, send)
            return
        try:
            target = await anyio.to_thread.run_sync(rule.target, self.guard, method, path)
            self.guard.authorize(principal, target)
        except BatchyardError as e:
            if isinstance(e, AuthError) or method not in ("GET", "HEAD"):
                self.guard.record(principal, rule.action, [], e)
            await error(send, e, headers)
            return
        if method in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, replay, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, replay, watch)
        finally:
            self.guard.audit_route(principal, target, status)

    async def _body(self, scope: Scope, receive: Receive, headers: list[tuple[str, str]]) -> bytes:
        declared = next((v for k, v in headers if k == "content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            raise PayloadTooLarge.over(self.limit, int(declared))
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise PayloadTooLarge.over(self.limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
