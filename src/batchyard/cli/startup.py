"""What ``batchyard server`` and ``batchyard quickstart`` say around starting a server: what
to do when the port is taken, where the dashboard is, and the lines that point the other
commands and the AWS clients at the server, written to work when pasted into a fresh shell.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from batchyard.cli.client import resolve_endpoint

DASHBOARD_PATH = "/ui"  # where the server serves the dashboard (docs/dashboard.md)
PLACEHOLDER_REGION = "us-east-1"


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (bound as the server binds, with
    SO_REUSEADDR, so that connections of a server that just stopped do not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_in_use(settings: Any) -> str | None:
    """The message for a server that cannot listen because its port is taken (None: it is
    free, or any free port was asked for): who holds it, if batchyard, and what to do."""
    if not settings.port or not port_taken(settings.host, settings.port):
        return None
    from batchyard.server import healthy

    elsewhere = "start this one on another port: --port N, or --port 0 for any free port"
    if healthy(settings.endpoint):
        return (
            f"port {settings.port} is in use: a batchyard server already answers at "
            f"{settings.endpoint}. Stop it with `batchyard server stop` (add the --data-dir "
            "it was started with, if any), or use it (export BATCHYARD_ENDPOINT="
            f"{settings.endpoint}), or {elsewhere}"
        )
    return f"port {settings.port} of {settings.host} is in use by another program; {elsewhere}"


def dashboard(endpoint: str) -> str:
    return endpoint + DASHBOARD_PATH


def client_setting(endpoint: str) -> str | None:
    """The line that points the batchyard commands of a shell like this one at ``endpoint``,
    or None when they find it by themselves (through the data dir, or at the default
    address)."""
    try:
        found = resolve_endpoint(None)
    except Exception:  # an unreadable config file: then they will not find it either
        found = None
    return None if found == endpoint else f"export BATCHYARD_ENDPOINT={endpoint}"


def aws_clients(endpoint: str) -> list[str]:
    """An AWS CLI command and a boto3 call for ``endpoint`` that work as pasted here: the
    credentials and region this machine has no configuration for are given inline (a
    server that does not require authentication accepts any keys)."""
    import boto3

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # as the CLI's own clients
    session = boto3.session.Session()
    env: dict[str, str] = {}
    if session.region_name is None:
        env["AWS_DEFAULT_REGION"] = PLACEHOLDER_REGION
    if session.get_credentials() is None:
        env |= {"AWS_ACCESS_KEY_ID": "any", "AWS_SECRET_ACCESS_KEY": "any"}
    python = {
        "AWS_DEFAULT_REGION": "region_name",
        "AWS_ACCESS_KEY_ID": "aws_access_key_id",
        "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    }
    prefix = "".join(f"{k}={v} " for k, v in env.items())
    arguments = "".join(f", {python[k]}='{v}'" for k, v in env.items())
    return [
        f"{prefix}aws batch describe-job-queues --endpoint-url {endpoint}",
        f"boto3.client('batch', endpoint_url='{endpoint}'{arguments})",
    ]
