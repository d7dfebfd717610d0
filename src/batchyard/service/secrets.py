"""The secret store: named values, encrypted at rest, that jobs receive as environment
variables through their job definition's ``secrets`` (``{"name": "DB_PASSWORD", "valueFrom":
"db-password"}``), as AWS Batch jobs receive Secrets Manager values.

A value is only ever decrypted for a job's launch (in the scheduler, into the environment the
agent gives the process). It is never returned by the API, never stored in a job, and never
written to a log: DescribeJobs shows the reference (``valueFrom``), like AWS does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from batchyard.auth.vault import Vault
from batchyard.domain.clock import now_ms
from batchyard.errors import InvalidRequest, NotFound
from batchyard.store import security as repo
from batchyard.store.db import Store

MAX_VALUE_BYTES = 64 * 1024  # Secrets Manager's limit
_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# what valueFrom may say: the name itself, or an ARN AWS jobs would use for it
_SM_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]*:\d*:secret:(.+)$")
_SSM_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:[a-z0-9-]*:\d*:parameter/?(.+)$")


class SecretUnavailable(Exception):
    """A job's secret cannot be resolved at launch; the attempt fails with this reason."""


@dataclass(frozen=True, slots=True)
class SecretRef:
    env: str  # the variable the job gets
    name: str  # the secret it comes from


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidRequest(
            f"secret name {name!r} is not valid: 1 to 512 of letters, digits and /_+=.@-"
        )
    return name


def reference(value_from: str) -> str:
    """``valueFrom`` -> the secret's name (a name, a Secrets Manager ARN or an SSM parameter
    ARN naming it)."""
    for rx in (_SM_ARN, _SSM_ARN):
        m = rx.match(value_from)
        if m:
            return m.group(1)
    return value_from


def refs(container: dict[str, Any] | None, field: str = "secrets") -> list[SecretRef]:
    """The secrets a resolved container asks for (snake_case, as stored)."""
    out = []
    for i, s in enumerate((container or {}).get("secrets") or []):
        env, value_from = s.get("name") or "", s.get("value_from") or ""
        if not _ENV_NAME.match(env):
            raise InvalidRequest(
                f"{field}[{i}].name {env!r} is not a valid environment variable name"
            )
        if env.startswith("AWS_BATCH"):
            raise InvalidRequest(
                f"{field}[{i}].name {env!r}: names starting with AWS_BATCH are reserved"
            )
        if not value_from:
            raise InvalidRequest(f"{field}[{i}].valueFrom is required")
        out.append(SecretRef(env, reference(value_from)))
    return out


class Secrets:
    def __init__(self, store: Store, vault: Vault) -> None:
        self.store = store
        self.vault = vault

    def put(self, name: str, value: str, description: str | None = None) -> int:
        """Create or replace a secret; returns its version (1, 2, ...)."""
        check_name(name)
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise InvalidRequest(f"a secret's value may be at most {MAX_VALUE_BYTES} bytes")
        if "\x00" in value:
            raise InvalidRequest("a secret's value cannot contain NUL (it becomes a variable)")
        with self.store.write() as conn:
            return repo.put_secret(conn, name, self.vault.encrypt(value), description, now_ms())

    def list(self) -> list[dict[str, Any]]:
        """Names and metadata; never values."""
        with self.store.read() as conn:
            return repo.secrets(conn)

    def delete(self, name: str) -> None:
        with self.store.write() as conn:
            if not repo.delete_secret(conn, name):
                raise NotFound(f"secret {name!r} does not exist (see `batchyard secrets list`)")

    def missing(self, names: list[str]) -> list[str]:
        with self.store.read() as conn:
            found = repo.secret_values(conn, names)
        return sorted(set(names) - set(found))

    def resolve(self, wanted: list[SecretRef]) -> dict[str, str]:
        """Variable name -> clear value, for a launch; :class:`SecretUnavailable` names what
        is missing."""
        if not wanted:
            return {}
        with self.store.read() as conn:
            stored = repo.secret_values(conn, [w.name for w in wanted])
        missing = sorted({w.name for w in wanted} - set(stored))
        if missing:
            raise SecretUnavailable(
                "ResourceInitializationError: unable to pull secrets: "
                f"{', '.join(repr(m) for m in missing)} not found in batchyard's secret store "
                "(batchyard secrets put NAME)"
            )
        return {w.env: self.vault.decrypt(stored[w.name]) for w in wanted}
