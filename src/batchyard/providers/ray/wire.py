"""The bridge's protocol: one JSON object per line over a socket pair (the server and its Ray
bridge process, one bridge per Ray cluster address).

server → bridge: requests carry an ``id`` and get one reply ``{"id", "ok": true, ...}`` or
``{"id", "ok": false, "error"}``:

- ``check`` {ce, request?}: make sure the compute environment's supervisor exists; answer the
  cluster's live resources ``total``, ``available`` and ``nodes`` (alive ones); ``request``
  (a vCPU count) is passed to Ray's autoscaler.
- ``launch`` {ce, items}: an item of a multi-node job's node also has ``gang`` (the job),
  ``node_index``, ``gang_needs`` (every node's [vcpus, memory_mib, gpus]) and ``main``
- ``terminate`` {ce, ids, grace}; ``ack`` {ce, ids}
- ``scale`` {request}: a vCPU count for Ray's autoscaler (the cluster's compute environments'
  summed desiredvCpus)
- ``forget`` {ce}: remove the (deleted) compute environment's supervisor unless it still runs
  attempts; answers ``removed`` and, when kept, ``why``
- ``state`` {}: every supervisor of the namespace: {ce: {incarnation, running, exits}}

bridge → server, unprompted: ``ready`` {address}, ``started`` {ce, items}, ``exited`` {ce,
items}, ``restarted`` {ce, state} (a supervisor came back empty after a crash).
"""

from __future__ import annotations

from typing import Any

import orjson

VERSION = 1
LOG_DIR = "ray"


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    return orjson.loads(line)
