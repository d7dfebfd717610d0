"""Signed calls to batchyard's own endpoints (``/batchyard/v1/...``), with the same
credentials boto3 would use (``aws configure``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``), signed with AWS Signature Version 4 like every AWS API call, so that they
pass a server that requires authentication. HTTPS endpoints are verified against
``AWS_CA_BUNDLE`` (as boto3 does) when it is set.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from batchyard.cli.common import Failed, Unreachable

PLACEHOLDER = ("batchyard", "batchyard")  # accepted by a server without authentication


def _credentials() -> tuple[Any, str]:
    import botocore.session
    from botocore.credentials import Credentials

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    session = botocore.session.get_session()
    creds = session.get_credentials()
    if creds is None:
        creds = Credentials(*PLACEHOLDER)
    region = session.get_config_variable("region") or "us-east-1"
    return creds.get_frozen_credentials(), region


def ssl_context(endpoint: str) -> ssl.SSLContext | None:
    if not endpoint.startswith("https"):
        return None
    bundle = os.environ.get("AWS_CA_BUNDLE") or os.environ.get("BATCHYARD_CA_BUNDLE")
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


def request_headers(method: str, url: str, body: bytes) -> dict[str, str]:
    """The headers that sign ``method url body`` (SigV4, service ``batch``)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    creds, region = _credentials()
    headers = {"Content-Type": "application/json"} if body else {}
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(creds, "batch", region).add_auth(req)
    return dict(req.headers.items())


def call(
    endpoint: str,
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> Any:
    """One JSON call; :class:`Failed` with the server's message when it refuses."""
    url = endpoint.rstrip("/") + path
    params = {k: v for k, v in (query or {}).items() if v is not None}
    if params:
        url += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(
        url, data=data or None, method=method, headers=request_headers(method, url, data)
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ssl_context(endpoint)) as r:
            raw = r.read()
            return json.loads(raw) if raw else {}
    except urllib.error.HTTPError as e:
        try:
            payload = json.loads(e.read())
            message = payload.get("message") or payload.get("Message") or str(e)
            code = payload.get("__type")
        except ValueError:
            message, code = f"{url} answered HTTP {e.code}", None
        raise Failed(f"{code}: {message}" if code else message) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise Unreachable(
            f"cannot reach the batchyard server at {endpoint} ({reason}). Start one with "
            "`batchyard server --detach`, or point --endpoint / BATCHYARD_ENDPOINT at one."
        ) from None
