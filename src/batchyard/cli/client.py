"""The CLI's connection to a server: an unmodified boto3 client, like any other user's."""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

from batchyard.config import DEFAULT_PORT

DEFAULT_ENDPOINT = f"http://127.0.0.1:{DEFAULT_PORT}"


def resolve_endpoint(explicit: str | None = None) -> str:
    """``--endpoint``, else ``$BATCHYARD_ENDPOINT``, else the local default server."""
    return (explicit or os.environ.get("BATCHYARD_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def client(service: str, endpoint: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` at ``endpoint``.

    Without AWS credentials in the environment it signs with placeholder keys, which a
    server on loopback accepts; configured credentials are used as they are.
    """
    session = boto3.session.Session()
    creds: dict[str, str] = {}
    if session.get_credentials() is None:
        creds = {"aws_access_key_id": "batchyard", "aws_secret_access_key": "batchyard"}
    return session.client(
        service,
        endpoint_url=endpoint,
        region_name=region or session.region_name or "us-east-1",
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
        **creds,
    )
