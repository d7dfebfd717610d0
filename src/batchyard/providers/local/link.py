"""The server's connection to one agent (see :mod:`batchyard.providers.local.agent`).

Usually that is this server's own agent. After a leader change on a shared PostgreSQL
database it may also be the agent of the server that led before, found through the attempts'
``provider_ref``: the new leader connects to it to learn how its jobs end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchyard.domain.clock import now_ms
from batchyard.providers.base import Events, Exited, Started
from batchyard.providers.exits import exited
from batchyard.providers.local import wire

log = logging.getLogger(__name__)


def kill_orphan(pid: int) -> None:
    """SIGKILL the session of a job whose agent died, if that session still exists (the pid
    leads its own session: it is the job, not a process that reused the number)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if int(fields[3]) == pid:  # the session id
            os.killpg(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


class AgentLink:
    def __init__(
        self, socket_path: Path, events: Events, on_closed: Callable[[AgentLink], None]
    ) -> None:
        self.path = socket_path
        self.events = events
        self.on_closed = on_closed
        self.active: dict[int, int | None] = {}  # attempt id -> pid (once started)
        self.state: asyncio.Future[dict[str, Any]] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def ref(self) -> dict[str, Any]:
        return {"agent": str(self.path)}

    def started_ref(self, item: dict[str, Any]) -> dict[str, Any]:
        """What an attempt's start records: its pid, its agent, who it runs as."""
        ref = {"pid": item["pid"], **self.ref}
        if item.get("ran_as"):
            ref["ran_as"] = item["ran_as"]
        return ref

    async def connect(self) -> None:
        """Connect and say hello; raises OSError if nobody listens."""
        self._reader, self._writer = await asyncio.open_unix_connection(
            str(self.path), limit=1 << 26
        )
        self.state = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._read_loop(), name=f"agent-link {self.path}")
        self.send({"op": "hello", "version": wire.VERSION})

    def send(self, message: dict[str, Any]) -> None:
        if self._writer is None or self._writer.is_closing():
            raise ConnectionError(f"the agent at {self.path} is not connected")
        self._writer.write(wire.encode(message))

    async def drain(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                self._dispatch(wire.decode(line))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("connection to the agent at %s failed", self.path)
        if not self._closing:
            self._lost()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "state":
            if self.state is not None and not self.state.done():
                self.state.set_result(msg)
        elif op == "started":
            items = []
            for i in msg["items"]:
                self.active[i["id"]] = i["pid"]
                items.append(Started(i["id"], i["at"], self.started_ref(i)))
            self.events.started(items)
        elif op == "exited":
            self.events.exited([exited(i) for i in msg["items"]])

    def _lost(self) -> None:
        """The agent died under us: the exit statuses of its jobs are gone with it. Kill what
        it left running (a retry must not run beside a survivor) and report them lost."""
        lost = sorted(self.active.items())
        if lost:
            log.error(
                "the agent at %s went away; %d running attempts are lost", self.path, len(lost)
            )
        self.active.clear()
        for _, pid in lost:
            if pid:
                kill_orphan(pid)
        if lost:
            self.events.exited(
                [
                    Exited(
                        attempt_id=a,
                        at=now_ms(),
                        exit_code=None,
                        reason="batchyard's local agent stopped while the job ran; its exit "
                        "status is unknown",
                    )
                    for a, _ in lost
                ]
            )
        self.on_closed(self)

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
