"""What the security commands share: the server's security endpoints (signed), or, with
``--local``, the store of this machine's data dir itself.

``--local`` is the administrator's way in, and how the very first access key is made: it
needs no server and no signature, only the right to read the data dir (its database and
master key), which makes whoever has it the administrator anyway. What it changes is written
to the audit log as ``local:<user>``.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from batchyard.cli import signed

LocalOpt = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Work on this machine's data dir directly (no server, no signature): for the "
        "administrator, and for creating the first access key.",
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="BATCHYARD_DATA_DIR",
        help="With --local: the server's data dir (default: ~/.batchyard).",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="BATCHYARD_CONFIG",
        help="With --local: the server's config file (for its database_url).",
        show_default=False,
    ),
]


class Local:
    """The data dir's store, its master key, and an audit log to account for changes."""

    def __init__(self, data_dir: Path | None, config: Path | None) -> None:
        from batchyard.auth.identity import Identities
        from batchyard.auth.vault import open_vault
        from batchyard.config import load_settings
        from batchyard.service.audit import Audit
        from batchyard.service.secrets import Secrets
        from batchyard.store.db import Store

        os.umask(0o077)  # anything made here is the data dir owner's alone
        self.settings = load_settings(config, data_dir=data_dir)
        self.store = Store(self.settings.sqlalchemy_url)
        self.store.check()
        self.store.migrate()
        vault = open_vault(self.settings, self.store)
        self.identities = Identities(self.store, vault)
        self.secrets = Secrets(self.store, vault, self.settings.account_id)
        self.audit = Audit(self.store, self.settings.audit_retention_days)
        self.who = f"local:{getpass.getuser()}"

    def record(self, action: str, resources: list[str]) -> None:
        from batchyard.service.audit import Record

        self.audit.record(Record(self.who, action, resources, "Success", 200, source="local"))
        self.audit.flush()

    def account(self) -> str:
        return self.settings.account_id

    def close(self) -> None:
        self.audit.close()
        self.store.close()


def remote(endpoint: str | None) -> str:
    from batchyard.cli.client import resolve_endpoint

    return resolve_endpoint(endpoint)


def call(endpoint: str | None, method: str, path: str, **kw: Any) -> Any:
    return signed.call(remote(endpoint), method, f"/batchyard/v1{path}", **kw)


def user_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"
