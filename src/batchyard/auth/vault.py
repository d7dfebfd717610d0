"""The master key: a Fernet key in a file (0600) that encrypts what must be kept but never
shown: access keys' secrets (the server needs them to verify signatures, as AWS does) and the
values of the secret store.

The key lives outside the database on purpose: a copy of the database (a backup, a dump, a
PostgreSQL replica) holds only ciphertext. Servers sharing one PostgreSQL database must share
the key file. The database keeps a check value, so a server started with the wrong key
refuses to start instead of answering every request with a signature error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.exc import IntegrityError

from batchyard.config import ConfigError, Settings

if TYPE_CHECKING:
    from batchyard.store.db import Store

log = logging.getLogger(__name__)
CHECK_KEY = "master_key_check"
_CHECK_TEXT = "batchyard master key"


class Vault:
    def __init__(self, key: bytes, path: Path | None = None) -> None:
        self.path = path
        self._fernet = Fernet(key)

    @classmethod
    def open(cls, path: Path, create: bool = True) -> Vault:
        """The key in ``path``, created (0600, exclusively) when missing and ``create``."""
        try:
            data = path.read_bytes().strip()
        except FileNotFoundError:
            if not create:
                raise ConfigError(
                    f"the master key {path} does not exist; start the server once (it creates "
                    "it), or copy it from the server that created the database"
                ) from None
            data = Fernet.generate_key()
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use theirs
                return cls.open(path, create=False)
            with os.fdopen(fd, "wb") as f:
                f.write(data + b"\n")
                f.flush()
                os.fsync(f.fileno())
            log.info("created the master key %s", path)
        except PermissionError:
            raise ConfigError(
                f"cannot read the master key {path}: run as the user that owns the data dir"
            ) from None
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            with contextlib.suppress(OSError):
                os.chmod(path, 0o600)
                log.warning("the master key %s was readable by others; now 0600", path)
        try:
            return cls(data, path)
        except ValueError:
            raise ConfigError(f"the master key {path} is not a Fernet key") from None

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The clear text; :class:`ConfigError` when this key did not encrypt it."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            where = f" ({self.path})" if self.path else ""
            raise ConfigError(
                f"a stored secret cannot be decrypted with this master key{where}: the "
                "database was encrypted with another key; use that server's master.key"
            ) from None

    def check(self, stored: str | None) -> str | None:
        """Compare with the database's check value; returns a new one to store when none was."""
        if stored is None:
            return self.encrypt(_CHECK_TEXT)
        if self.decrypt(stored) != _CHECK_TEXT:  # pragma: no cover - Fernet authenticates
            raise ConfigError("the master key does not match the database")
        return None


def open_vault(settings: Settings, store: Store) -> Vault:
    """The server's master key (``master_key_file``, else ``<data dir>/master.key``),
    checked against (or, the first time, recorded in) the database."""
    from sqlalchemy import select

    from batchyard.store import tables

    vault = Vault.open(settings.master_key_file or settings.data_dir / "master.key")
    row = tables.settings
    with store.read() as conn:
        stored = conn.execute(select(row.c.value).where(row.c.key == CHECK_KEY)).scalar()
    try:
        fresh = vault.check(stored)
    except ConfigError:
        raise ConfigError(
            f"the master key {vault.path} is not the one this database's secrets were "
            "encrypted with; use the master.key of the server that created them (servers "
            "sharing a database need the same key, see master_key_file)"
        ) from None
    if fresh is not None:
        with contextlib.suppress(IntegrityError), store.write() as conn:
            conn.execute(row.insert().values(key=CHECK_KEY, value=fresh))
        with store.read() as conn:  # another server may have recorded its key first
            vault.check(conn.execute(select(row.c.value).where(row.c.key == CHECK_KEY)).scalar())
    return vault
