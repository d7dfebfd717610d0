"""How a multi-node job's placement group is chosen (pure functions of the supervisor's
module, checked against brute force; no cluster needed)."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def remote() -> Any:
    """Imported here: it imports Ray, and the default run (which deselects these tests)
    collects this module also without the extra [ray]."""
    from batchyard.providers.ray import remote

    return remote


GiB = 2**30


def node(cpus: float, gib: float = 8, gpus: int = 0) -> dict[str, float]:
    found = {"CPU": float(cpus), "memory": gib * GiB, "GPU": float(gpus)}
    return {k: v for k, v in found.items() if v}


def _fits(b: dict[str, float], n: dict[str, float]) -> bool:
    return all(n.get(k, 0.0) + 1e-9 >= v for k, v in b.items())


def brute_spread(bundles: list[dict[str, float]], nodes: list[dict[str, float]]) -> bool:
    return any(
        all(_fits(b, nodes[i]) for b, i in zip(bundles, chosen, strict=True))
        for chosen in itertools.permutations(range(len(nodes)), len(bundles))
    )


def brute_pack(bundles: list[dict[str, float]], nodes: list[dict[str, float]]) -> bool:
    kinds = ("CPU", "memory", "GPU")
    for where in itertools.product(range(len(nodes)), repeat=len(bundles)):
        used = [dict.fromkeys(kinds, 0.0) for _ in nodes]
        for b, i in zip(bundles, where, strict=True):
            for k, v in b.items():
                used[i][k] += v
        if all(_fits(u, n) for u, n in zip(used, nodes, strict=True)):
            return True
    return False


def test_bundles_ask_for_exactly_what_the_node_asks(remote):
    assert remote.bundle(0.5, 64, 0) == {"CPU": 0.5, "memory": 64.0 * 2**20}
    assert remote.bundle(2, 1024, 1) == {"CPU": 2.0, "memory": 1024.0 * 2**20, "GPU": 1.0}
    assert remote.bundle(0, 0, 0) == {"CPU": 0.0001}  # Ray refuses an empty bundle


def test_strict_spread_when_distinct_nodes_can_hold_every_node(remote):
    head, worker = node(0), node(1)
    one = remote.bundle(1, 128, 0)
    assert remote.choose_strategy([one] * 2, [head, worker, worker]) == "STRICT_SPREAD"
    # the head has no CPU: three alive nodes, but only two for a job's nodes
    half = remote.bundle(0.5, 128, 0)
    assert remote.choose_strategy([half] * 3, [head, worker, worker]) == "SPREAD"
    assert remote.choose_strategy([remote.bundle(0.6, 128, 0)] * 3, [head, worker, worker]) is None
    # a matching, not a greedy choice: the big bundle needs the big node
    big = remote.bundle(2, 128, 0)
    assert remote.choose_strategy([one, one, big], [node(2), node(1), node(1)]) == "STRICT_SPREAD"
    gpu = remote.bundle(1, 128, 1)
    assert remote.choose_strategy([gpu, gpu], [node(4), node(4, gpus=1)]) is None


def test_the_reason_says_what_does_not_fit_where(remote):
    why = remote.cannot_place([(0.6, 128, 0)] * 3, [node(0), node(1), node(1)])
    assert why == (
        "CannotStartContainerError: the Ray cluster cannot place all 3 nodes of the multi-node "
        "job (3 × 0.6 vCPUs, 128 MiB) on its 3 alive nodes (CPUs per node: 0, 1, 1), neither "
        "each on a node of its own (STRICT_SPREAD) nor sharing nodes (SPREAD)"
    )


def test_matching_and_packing_agree_with_brute_force(remote):
    rng = random.Random(7)
    for _ in range(400):
        nodes = [node(rng.choice([0, 1, 2, 4]), rng.choice([1, 4]), rng.choice([0, 0, 1])) for _ in range(rng.randint(1, 4))]  # fmt: skip
        bundles = [remote.bundle(rng.choice([0.5, 1, 1.5, 2]), rng.choice([256, 2048]), rng.choice([0, 0, 1])) for _ in range(rng.randint(1, 4))]  # fmt: skip
        assert remote.spread_fits(bundles, nodes) == brute_spread(bundles, nodes)
        assert remote.pack_fits(bundles, nodes) == brute_pack(bundles, nodes)


def test_large_gangs_are_decided_quickly(remote):
    nodes = [node(2)] * 400 + [node(0)]
    assert remote.spread_fits([remote.bundle(1, 128, 0)] * 400, nodes)
    assert not remote.spread_fits([remote.bundle(1, 128, 0)] * 401, nodes)
    mixed = [remote.bundle(1, 128, 0), remote.bundle(2, 128, 0)] * 200
    assert remote.spread_fits(mixed, nodes)
    assert remote.pack_fits([remote.bundle(1, 128, 0)] * 800, nodes) is True
    assert remote.pack_fits([remote.bundle(1, 128, 0)] * 801, nodes) is False
