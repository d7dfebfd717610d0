"""Who may call: users, their access keys, groups, and the policies attached to each.

A *user* (a name) owns access keys and belongs to groups; a policy attaches to a user, a
group, or one access key. A request signed with a key is decided against the policies of the
key, its user and the user's groups together (explicit deny wins, default deny).

Access key secrets are generated here, returned once, and stored encrypted under the master
key (:mod:`batchyard.auth.vault`); a revoked key is refused from the next request on, by every
server sharing the database (nothing is cached).
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from batchyard.auth.policy import Policy, parse_policy
from batchyard.auth.vault import Vault
from batchyard.domain.clock import now_ms
from batchyard.errors import InvalidRequest, NotFound
from batchyard.store import security as repo
from batchyard.store.db import Store

KEY_PREFIX = "BYAK"
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,64}$")
_POLICY_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,128}$")
KINDS = ("user", "group", "key")
ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, as authentication established it."""

    name: str  # the user; "anonymous" when authentication is off
    access_key_id: str | None = None
    groups: tuple[str, ...] = ()
    policies: tuple[Policy, ...] = ()
    unrestricted: bool = False  # authentication off: nothing is checked
    source: str = ""  # the client's address
    secure: bool = False  # arrived over TLS
    context: dict[str, Any] = field(default_factory=dict)

    def arn(self, account_id: str) -> str:
        return f"arn:aws:iam::{account_id}:user/{self.name}"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    access_key_id: str
    user: str
    secret: str
    revoked_at: int | None
    groups: tuple[str, ...]
    policies: tuple[Policy, ...]


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidRequest(
            f"{what} {name!r} is not valid: 1 to 64 of letters, digits and _+=,.@-"
        )
    return name


def _policy_name(name: str) -> str:
    if not _POLICY_NAME.match(name or ""):
        raise InvalidRequest(
            f"policy name {name!r} is not valid: 1 to 128 of letters, digits and _+=,.@-"
        )
    return name


def new_access_key_id() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_B32) for _ in range(16))


@functools.lru_cache(maxsize=1024)
def _parsed(document: str, label: str) -> Policy:
    return parse_policy(document, label)


def _to_policies(rows: list[dict[str, Any]]) -> tuple[Policy, ...]:
    return tuple(
        _parsed(r["document"], f"{r['owner_kind']}/{r['owner']}/{r['name']}") for r in rows
    )


class Identities:
    def __init__(self, store: Store, vault: Vault) -> None:
        self.store = store
        self.vault = vault

    # ---- authentication -------------------------------------------------------------------

    def lookup(self, access_key_id: str) -> KeyRecord | None:
        """The key, its owner's groups and every policy that applies (one read)."""
        with self.store.read() as conn:
            row = repo.key(conn, access_key_id)
            if row is None:
                return None
            owner = repo.user(conn, row["user_name"]) or {"groups": []}
            groups = tuple(owner["groups"] or ())
            rows = repo.policies_of(conn, row["user_name"], list(groups), access_key_id)
        return KeyRecord(
            access_key_id,
            row["user_name"],
            self.vault.decrypt(row["secret"]),
            row["revoked_at"],
            groups,
            _to_policies(rows),
        )

    def principal_of_user(self, name: str) -> Principal:
        """The user with its own and its groups' policies (no key's): for simulations."""
        with self.store.read() as conn:
            found = repo.user(conn, name)
            if found is None:
                raise NotFound(f"user {name!r} does not exist (see `batchyard credentials list`)")
            groups = tuple(found["groups"] or ())
            rows = repo.policies_of(conn, name, list(groups), None)
        return Principal(name, None, groups, _to_policies(rows))

    def principal_of_key(self, access_key_id: str) -> Principal:
        record = self.lookup(access_key_id)
        if record is None:
            raise NotFound(f"access key {access_key_id!r} does not exist")
        return Principal(record.user, access_key_id, record.groups, record.policies)

    # ---- management -----------------------------------------------------------------------

    def create_key(
        self,
        user: str,
        policy: str | dict[str, Any] | None = None,
        policy_name: str = "default",
        groups: list[str] | None = None,
        description: str | None = None,
    ) -> tuple[str, str]:
        """A new access key for ``user`` (created if new): returns (id, secret). The secret is
        shown this once; ``policy`` attaches to the key itself."""
        check_name(user, "user name")
        for g in groups or []:
            check_name(g, "group name")
        text = None
        if policy is not None:
            text = policy if isinstance(policy, str) else json.dumps(policy)
            parse_policy(text, _policy_name(policy_name))  # refuse a bad one before creating
        access_key_id = new_access_key_id()
        secret = secrets.token_urlsafe(30)
        now = now_ms()
        with self.store.write() as conn:
            found = repo.ensure_user(conn, user, now)
            if groups:
                repo.set_groups(conn, user, list(found["groups"] or []) + groups)
            repo.insert_key(
                conn,
                access_key_id=access_key_id,
                user_name=user,
                secret=self.vault.encrypt(secret),
                description=description,
                created_at=now,
            )
            if text is not None:
                repo.put_policy(conn, "key", access_key_id, policy_name, text, now)
        return access_key_id, secret

    def list_keys(self, user: str | None = None) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            keys = repo.keys(conn, user)
            users = {u["name"]: u for u in repo.users(conn)}
            attached = repo.policies(conn, "key")
        by_key: dict[str, list[str]] = {}
        for p in attached:
            by_key.setdefault(p["owner"], []).append(p["name"])
        return [
            {
                "access_key_id": k["access_key_id"],
                "user": k["user_name"],
                "groups": list((users.get(k["user_name"]) or {}).get("groups") or []),
                "status": "Revoked" if k["revoked_at"] else "Active",
                "created_at": k["created_at"],
                "revoked_at": k["revoked_at"],
                "last_used_at": k["last_used_at"],
                "description": k["description"],
                "policies": by_key.get(k["access_key_id"], []),
            }
            for k in keys
        ]

    def revoke(self, access_key_id: str | None = None, user: str | None = None) -> list[str]:
        """Revoke one key, or every key of a user; returns the ids revoked now."""
        if (access_key_id is None) == (user is None):
            raise InvalidRequest("name either one access key id or a user, not both")
        with self.store.write() as conn:
            if access_key_id is not None:
                if repo.key(conn, access_key_id) is None:
                    raise NotFound(f"access key {access_key_id!r} does not exist")
                ids = [access_key_id]
            else:
                ids = [k["access_key_id"] for k in repo.keys(conn, user)]
                if not ids:
                    raise NotFound(f"user {user!r} has no access keys")
            return repo.revoke(conn, ids, now_ms())

    def put_policy(self, kind: str, owner: str, name: str, document: str | dict[str, Any]) -> bool:
        if kind not in KINDS:
            raise InvalidRequest(f"a policy attaches to a {', '.join(KINDS)}, not {kind!r}")
        text = document if isinstance(document, str) else json.dumps(document)
        parse_policy(text, _policy_name(name))
        with self.store.write() as conn:
            if kind == "key" and repo.key(conn, owner) is None:
                raise NotFound(f"access key {owner!r} does not exist")
            if kind == "user":
                repo.ensure_user(conn, check_name(owner, "user name"), now_ms())
            if kind == "group":
                check_name(owner, "group name")
            return repo.put_policy(conn, kind, owner, name, text, now_ms())

    def delete_policy(self, kind: str, owner: str, name: str) -> None:
        with self.store.write() as conn:
            if not repo.delete_policy(conn, kind, owner, name):
                raise NotFound(f"{kind} {owner!r} has no policy {name!r}")

    def list_policies(
        self, kind: str | None = None, owner: str | None = None
    ) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return repo.policies(conn, kind, owner)

    def set_groups(self, user: str, groups: list[str]) -> None:
        for g in groups:
            check_name(g, "group name")
        with self.store.write() as conn:
            repo.ensure_user(conn, check_name(user, "user name"), now_ms())
            repo.set_groups(conn, user, groups)

    def users(self) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return repo.users(conn)
