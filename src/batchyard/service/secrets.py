"""The secret store: named values, encrypted at rest, that jobs receive as environment
variables through their job definition's ``secrets`` (``{"name": "DB_PASSWORD", "valueFrom":
"db-password"}``), as AWS Batch jobs receive Secrets Manager secrets and Systems Manager
parameters.

``valueFrom`` takes the forms AWS documents ("Specifying sensitive data" in the AWS Batch
user guide), all naming a secret of this one store:

- a name: ``db-password``, or a parameter's ``/team/db/password``;
- a Secrets Manager ARN, ``arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME``, with the
  6-character suffix AWS adds to a secret's ARN (``NAME-AbCdEf``: the secret named exactly so
  if there is one, else ``NAME``) or without it, optionally followed by
  ``:JSON-KEY:VERSION-STAGE:VERSION-ID`` (parts may be empty): a JSON key selects one key of
  a JSON object value; the version stage may only be ``AWSCURRENT`` and the version id must
  stay empty, since the store keeps one version of each secret;
- a Systems Manager parameter ARN, ``arn:aws:ssm:REGION:ACCOUNT:parameter/NAME``, where a
  hierarchical name ``/a/b`` is written ``parameter/a/b``.

Any region is accepted in these ARNs (one store serves every region name, as the API does);
the account must be the server's. A reference that cannot resolve fails the job's attempt at
its start, with the reason (as a missing secret does on AWS), never at registration.

A value is only ever decrypted for a job's launch (in the scheduler, into the environment the
agent gives the process). It is never returned by the API, never stored in a job, and never
written to a log: DescribeJobs shows the reference (``valueFrom``), like AWS does.
"""

from __future__ import annotations

import builtins  # builtins.list in annotations: a method below is named list
import re
from dataclasses import dataclass
from typing import Any

import orjson

from batchyard.auth.vault import Vault
from batchyard.domain.clock import now_ms
from batchyard.errors import InvalidRequest, NotFound
from batchyard.store import security as repo
from batchyard.store.db import Store

MAX_VALUE_BYTES = 64 * 1024  # Secrets Manager's limit
_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# what valueFrom may say besides a name: the ARNs AWS jobs would use for it
_SM_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]*:(\d*):secret:(.+)$")
_SSM_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:[a-z0-9-]*:(\d*):parameter/(.+)$")
_SUFFIXED = re.compile(r"^(.+)-[A-Za-z0-9]{6}$")  # AWS's suffix of a secret's ARN
_FIX = "batchyard secrets put NAME"


class SecretUnavailable(Exception):
    """A job's secret cannot be resolved at launch; the attempt fails with this reason."""


@dataclass(frozen=True, slots=True)
class SecretRef:
    env: str  # the variable the job gets
    name: str  # the secret it comes from
    value_from: str = ""  # as the job definition says it
    unsuffixed: str | None = None  # ``name`` without AWS's ARN suffix, if it has one
    json_key: str | None = None  # the key of a JSON object value to give instead
    account: str | None = None  # the account of an ARN
    problem: str | None = None  # why it can never resolve, whatever the store holds

    @property
    def names(self) -> list[str]:
        """The store's names it may mean, in the order they are tried."""
        return [n for n in (self.name, self.unsuffixed) if n]


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidRequest(
            f"secret name {name!r} is not valid: 1 to 512 of letters, digits and /_+=.@- "
            "(or a Secrets Manager secret ARN or Systems Manager parameter ARN naming one)"
        )
    return name


def _parameter(name: str) -> str:
    """A parameter ARN's name part -> the parameter's name (``a/b`` is ``/a/b``, as AWS writes
    a hierarchical name's ARN without its leading slash)."""
    return f"/{name}" if "/" in name and not name.startswith("/") else name


def store_name(text: str) -> str:
    """What ``batchyard secrets put`` may be given -> the store's name: a name, or a Secrets
    Manager / Systems Manager ARN of one (without selectors)."""
    sm, ssm = _SM_ARN.match(text), _SSM_ARN.match(text)
    if sm:
        if ":" in sm.group(2):
            raise InvalidRequest(
                f"{text!r} selects a JSON key or version of a secret; name the secret itself "
                "(...:secret:NAME)"
            )
        return check_name(sm.group(2))
    if ssm:
        return check_name(_parameter(ssm.group(2)))
    return check_name(text)


def reference(env: str, value_from: str) -> SecretRef:
    """``valueFrom`` -> what it names, or why it names nothing (see the module's docstring)."""
    sm, ssm = _SM_ARN.match(value_from), _SSM_ARN.match(value_from)
    if sm:
        return _secrets_manager(env, value_from, sm.group(1), sm.group(2))
    if ssm:
        name = _parameter(ssm.group(2))
        problem = None
        if ":" in name:
            problem = (
                f"{value_from!r} selects a version or label of parameter "
                f"{name.split(':', 1)[0]!r}, but batchyard keeps one version of each secret "
                "(name the parameter without ':VERSION')"
            )
        return SecretRef(env, name, value_from, account=ssm.group(1) or None, problem=problem)
    problem = None
    if not _NAME.match(value_from):
        problem = (
            f"valueFrom {value_from!r} is neither a secret name (letters, digits and "
            "/_+=.@-), nor a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:"
            "ACCOUNT:secret:NAME[:JSON-KEY:VERSION-STAGE:VERSION-ID]), nor a Systems Manager "
            "parameter ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)"
        )
    return SecretRef(env, value_from, value_from, problem=problem)


def _secrets_manager(env: str, value_from: str, account: str, rest: str) -> SecretRef:
    parts = rest.split(":")
    if len(parts) not in (1, 4):
        return SecretRef(
            env,
            parts[0],
            value_from,
            problem=f"{value_from!r} is not a Secrets Manager reference: after secret:NAME "
            "come either nothing or exactly :JSON-KEY:VERSION-STAGE:VERSION-ID (each may be "
            "empty, as in secret:NAME:password::)",
        )
    name, key, stage, version = [*parts, "", "", ""][:4]
    problem = None
    if stage not in ("", "AWSCURRENT"):
        problem = (
            f"{value_from!r} asks for version stage {stage!r} of secret {name!r}, but "
            "batchyard keeps only the current version of a secret (give AWSCURRENT or leave "
            "the stage empty)"
        )
    elif version:
        problem = (
            f"{value_from!r} asks for version id {version!r} of secret {name!r}, but "
            "batchyard keeps only the current version of a secret (leave the version id empty)"
        )
    suffixed = _SUFFIXED.match(name)
    return SecretRef(
        env,
        name,
        value_from,
        unsuffixed=suffixed.group(1) if suffixed else None,
        json_key=key or None,
        account=account or None,
        problem=problem,
    )


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
        out.append(reference(env, value_from))
    return out


def _select(value: str, ref: SecretRef, name: str) -> str:
    """The value of ``ref.json_key`` in a JSON object value (a string as it is, anything else
    as JSON); the messages never show the value."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise SecretUnavailable(
            f"{ref.env}: {ref.value_from!r} selects JSON key {ref.json_key!r}, but the value "
            f"of secret {name!r} is not a JSON object (store it as one, e.g. "
            f'{{"{ref.json_key}": "..."}}, or drop the key from valueFrom)'
        )
    if ref.json_key not in data:  # its keys are part of the value: not listed
        raise SecretUnavailable(
            f"{ref.env}: the JSON value of secret {name!r} has no key {ref.json_key!r} (keys "
            "are case-sensitive; `batchyard secrets put` it again with that key)"
        )
    found = data[ref.json_key]
    return found if isinstance(found, str) else orjson.dumps(found).decode()


class Secrets:
    def __init__(self, store: Store, vault: Vault, account_id: str | None = None) -> None:
        self.store = store
        self.vault = vault
        self.account_id = account_id  # an ARN of another account names nothing here

    def put(self, name: str, value: str, description: str | None = None) -> int:
        """Create or replace a secret (``name`` may be an ARN naming it, see
        :func:`store_name`); returns its version (1, 2, ...)."""
        name = store_name(name)
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
        name = store_name(name)
        with self.store.write() as conn:
            if not repo.delete_secret(conn, name):
                raise NotFound(f"secret {name!r} does not exist (see `batchyard secrets list`)")

    def resolve(self, wanted: builtins.list[SecretRef]) -> dict[str, str]:
        """Variable name -> clear value, for a launch; :class:`SecretUnavailable` says what
        cannot be resolved and why (every reference at once)."""
        if not wanted:
            return {}
        with self.store.read() as conn:
            stored = repo.secret_values(conn, [n for w in wanted for n in w.names])
        out: dict[str, str] = {}
        problems: list[str] = []
        for w in wanted:
            problem = w.problem
            if problem is None and w.account and self.account_id and w.account != self.account_id:
                problem = (
                    f"{w.value_from!r} belongs to account {w.account}, but this server is "
                    f"account {self.account_id}"
                )
            if problem is not None:
                problems.append(f"{w.env}: {problem}")
                continue
            name = next((n for n in w.names if n in stored), None)
            if name is None:
                tried = " nor ".join(repr(n) for n in w.names)
                problems.append(f"{w.env}: {tried} not found in batchyard's secret store ({_FIX})")
                continue
            value = self.vault.decrypt(stored[name])
            try:
                out[w.env] = value if w.json_key is None else _select(value, w, name)
            except SecretUnavailable as e:
                problems.append(str(e))
        if problems:
            raise SecretUnavailable(
                "ResourceInitializationError: unable to pull secrets: " + "; ".join(problems)
            )
        return out
