"""Opaque, tamper-safe ``nextToken`` values.

A token carries the position to resume from and a digest of the request's filters, signed
with a per-database secret: a token cannot be forged, edited, or replayed against a different
query, and it stays valid across restarts and across servers sharing one database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from batchyard.domain.resources import Page
from batchyard.errors import InvalidRequest

DEFAULT_PAGE = 100


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Tokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _scope(self, operation: str, filters: Any) -> str:
        blob = orjson.dumps([operation, filters], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()[:16]

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode(self, operation: str, filters: Any, cursor: Any) -> str:
        payload = orjson.dumps([self._scope(operation, filters), cursor])
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, token: str | None, operation: str, filters: Any) -> Any:
        """The cursor inside ``token`` (None for no token); refuses foreign or edited tokens."""
        if token is None:
            return None
        try:
            body, sig = token.split(".", 1)
            payload = _unb64(body)
            good = hmac.compare_digest(_unb64(sig), self._sign(payload))
            scope, cursor = orjson.loads(payload) if good else (None, None)
        except (ValueError, orjson.JSONDecodeError):
            good, scope, cursor = False, None, None
        if not good:
            raise InvalidRequest(
                "nextToken is not a token this server issued (it may be truncated or edited); "
                "repeat the request without nextToken to start from the beginning"
            )
        if scope != self._scope(operation, filters):
            raise InvalidRequest(
                f"nextToken was not issued for this {operation} request: it belongs to another "
                "operation or to different filters; send the same operation and parameters as "
                "the request that returned it"
            )
        return cursor


def page_size(max_results: int | None, field: str = "maxResults", limit: int = 100) -> int:
    if max_results is None:
        return DEFAULT_PAGE if limit >= DEFAULT_PAGE else limit
    if not 1 <= max_results <= limit:
        raise InvalidRequest(f"{field} is {max_results}; it must be between 1 and {limit}")
    return max_results


def cut_page(tokens: Tokens, operation: str, filters: Any, items: list[Any], limit: int) -> Page:
    """Cut ``items`` (fetched with one row more than ``limit``) to a page resuming after the
    last item's ``id``."""
    if len(items) <= limit:
        return Page(items)
    items = items[:limit]
    return Page(items, tokens.encode(operation, filters, items[-1].id))
