"""Multi-node parallel jobs: which container each node runs.

A multinode job definition groups nodes in ranges (``targetNodes``: ``"N"``, ``"a:b"``,
``"a:"``, ``":b"``); together the ranges must cover every node exactly once. SubmitJob's
``nodeOverrides`` may change the number of nodes and override containers range by range.
"""

from __future__ import annotations

import re
from typing import Any

from batchyard.errors import InvalidRequest

_RANGE = re.compile(r"^(\d*):(\d*)$|^(\d+)$")


def node_range(target: str, num_nodes: int, field: str) -> range:
    m = _RANGE.match(target)
    if m is None:
        raise InvalidRequest(
            f"{field} {target!r} is not a node range; use 'N', 'start:end', 'start:' or ':end'"
        )
    lo, hi = (m.group(3), m.group(3)) if m.group(3) else (m.group(1), m.group(2))
    start = int(lo) if lo else 0
    end = int(hi) if hi else num_nodes - 1
    if not 0 <= start <= end < num_nodes:
        raise InvalidRequest(f"{field} {target!r} is outside nodes 0 to {num_nodes - 1}")
    return range(start, end + 1)


def containers(
    node_properties: dict[str, Any], overrides: dict[str, Any] | None
) -> tuple[int, int, list[tuple[dict[str, Any], dict[str, Any] | None]]]:
    """(number of nodes, main node, per node: (container, container overrides or None))."""
    overrides = overrides or {}
    n = overrides.get("num_nodes") or node_properties["num_nodes"]
    main = node_properties["main_node"]
    if n < 1:
        raise InvalidRequest(f"nodeOverrides.numNodes is {n}; it must be at least 1")
    if not 0 <= main < n:
        raise InvalidRequest(
            f"the main node is {main}, outside the job's {n} nodes; raise nodeOverrides.numNodes"
        )
    per_node: list[dict[str, Any] | None] = [None] * n
    for i, r in enumerate(node_properties["node_range_properties"]):
        where = f"nodeProperties.nodeRangeProperties[{i}].targetNodes"
        for node in node_range(r["target_nodes"], n, where):
            if per_node[node] is not None:
                raise InvalidRequest(f"{where}: node {node} is in more than one range")
            per_node[node] = r.get("container") or {}
    missing = [i for i, c in enumerate(per_node) if c is None]
    if missing:
        raise InvalidRequest(
            f"nodes {missing[:5]} are in no nodeRangeProperties range; the ranges must cover "
            f"all {n} nodes"
        )
    extra: list[dict[str, Any] | None] = [None] * n
    for i, o in enumerate(overrides.get("node_property_overrides") or []):
        where = f"nodeOverrides.nodePropertyOverrides[{i}].targetNodes"
        for node in node_range(o["target_nodes"], n, where):
            extra[node] = o.get("container_overrides")
    return n, main, [(c or {}, e) for c, e in zip(per_node, extra, strict=True)]
