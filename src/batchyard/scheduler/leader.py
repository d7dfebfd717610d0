"""One scheduler per database.

SQLite: the data dir's lock already makes this server the only one, so it always leads.
PostgreSQL: several servers may share the database and all serve the API; the one holding a
session-level advisory lock schedules. The lock lives on a dedicated connection, which also
LISTENs for wake-ups sent by the others (``NOTIFY batchyard``) after they commit a change.
When the leader dies its connection closes, the lock is released, and the next server
trying takes over within a second. Even two servers that both believed they led could not
start one job twice: every dispatch is a compare-and-set on the job's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from batchyard.store.db import Store

log = logging.getLogger(__name__)

LOCK_KEY = 813_002
CHANNEL = "batchyard"
RETRY_SECONDS = 1.0


class Leadership:
    def __init__(self, store: Store, on_notify: Callable[[str], None]) -> None:
        self.store = store
        self.on_notify = on_notify
        self.leading = store.dialect == "sqlite"
        self._conn: Any = None
        self._listener: asyncio.Task[None] | None = None
        self.lost: asyncio.Event | None = None  # created on the scheduler's loop

    async def acquire(self, stopping: Callable[[], bool]) -> bool:
        """Wait until this server leads (at once on SQLite); False if stopping first."""
        if self.store.dialect == "sqlite":
            return True
        import psycopg

        self.lost = asyncio.Event()
        waited = False
        while not stopping():
            try:
                conn = await psycopg.AsyncConnection.connect(self.store.conninfo(), autocommit=True)
            except psycopg.Error as e:
                log.warning("cannot reach the database for the leader lock: %s", e)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            row = await cur.fetchone()
            if row and row[0]:
                await conn.execute(f"LISTEN {CHANNEL}")
                self._conn = conn
                self.leading = True
                self._listener = asyncio.create_task(self._listen(conn), name="batchyard-listen")
                log.info("this server now leads scheduling%s", " (took over)" if waited else "")
                return True
            await conn.close()
            if not waited:
                log.info("another server leads scheduling; this one serves the API and waits")
                waited = True
            await asyncio.sleep(RETRY_SECONDS)
        return False

    async def _listen(self, conn: Any) -> None:
        try:
            async for note in conn.notifies():
                self.on_notify(note.payload or "jobs")
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.error("lost the leader lock's connection (%s); scheduling stops", e)
        self.leading = False
        if self.lost is not None:
            self.lost.set()
        self.on_notify("leadership")

    async def release(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        self.leading = self.store.dialect == "sqlite"
