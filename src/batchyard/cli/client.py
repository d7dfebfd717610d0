"""The CLI's connection to a server: an unmodified boto3 client, like any other user's."""

from __future__ import annotations

import json
import os
from typing import Any

DEFAULT_PORT = 8130  # batchyard.config.DEFAULT_PORT, without importing pydantic for every command
DEFAULT_ENDPOINT = f"http://127.0.0.1:{DEFAULT_PORT}"
STATE_FILE = "server.json"  # written by the server (batchyard.server.STATE_FILE)


def resolve_endpoint(explicit: str | None = None) -> str:
    """Where the server is: ``--endpoint``, else ``$BATCHYARD_ENDPOINT``, else the local
    server (see :func:`local_endpoint`)."""
    given = explicit or os.environ.get("BATCHYARD_ENDPOINT")
    if given:
        return given.rstrip("/")
    return local_endpoint()


def local_endpoint() -> str:
    """The server of this machine's data dir: the address a running one wrote to
    ``<data dir>/server.json``, else the ``host``/``port`` of the config file (and
    ``BATCHYARD_HOST``/``BATCHYARD_PORT``), else ``http://127.0.0.1:8130``.

    Raises :class:`batchyard.config.ConfigError` when the config file is invalid.
    """
    from batchyard.config import load_settings

    settings = load_settings()
    state = settings.data_dir / STATE_FILE
    try:
        info = json.loads(state.read_text())
        if _alive(int(info["pid"])):
            return str(info["endpoint"]).rstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return settings.endpoint if settings.port else DEFAULT_ENDPOINT


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def client(service: str, endpoint: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` at ``endpoint``.

    Without AWS credentials in the environment it signs with placeholder keys, which a
    server on loopback accepts; configured credentials are used as they are.
    """
    import boto3
    from botocore.config import Config

    # batchyard accepts any signature, so the instance-metadata lookup boto3 would make on a
    # machine without credentials buys nothing and costs a timeout on every command.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
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
