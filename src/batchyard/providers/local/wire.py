"""The agent's protocol: one JSON object per line over a Unix socket.

server → agent: ``hello``, ``launch`` {items}, ``kill`` {items: id, grace}, ``ack`` {ids}
agent → server: ``state`` {running, exited}, ``started`` {items}, ``exited`` {items}
"""

from __future__ import annotations

from typing import Any

import orjson

VERSION = 1
SOCKET = "agent.sock"
PID_FILE = "agent.pid"
LOCK_FILE = "agent.lock"  # held (flock) by the one agent of a data dir
LOG_FILE = "agent.log"


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    return orjson.loads(line)
