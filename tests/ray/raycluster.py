"""The Ray tests' cluster and helpers (imported by their conftest and tests)."""

from __future__ import annotations

import gc
import json
import warnings
from typing import Any

from helpers import describe_ce, wait_for

RAY_SETTINGS = {
    "min_attempt_duration_seconds": 1,
    "min_time_limit_seconds": 1,
    "terminate_grace_seconds": 2,
}
# Node loss is noticed by the GCS's health checks: make them quick for the tests.
SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}
OBJECT_STORE = 80 * 2**20  # Ray's minimum is 75 MiB


class RayCluster:
    """``ray.cluster_utils.Cluster``: a head node without CPUs (it holds the supervisors and
    serves Ray Client on 127.0.0.1:10001) and worker nodes of one CPU each, all on 127.0.0.1,
    all stopped at the end."""

    def __init__(self, workers: int = 2) -> None:
        with warnings.catch_warnings():
            # Ray's node start-up leaves a few log files to the garbage collector
            warnings.simplefilter("ignore", ResourceWarning)
            self._start(workers)
            gc.collect()
        self.address = self.cluster.address

    def _start(self, workers: int) -> None:
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 0,
                "object_store_memory": OBJECT_STORE,
                "include_dashboard": False,
                "_system_config": SYSTEM_CONFIG,
                "ray_client_server_port": 10001,
            },
        )
        for _ in range(workers):
            self.add_worker()

    def add_worker(self) -> Any:
        return self.cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)

    def worker(self, node_id: str) -> Any:
        for node in self.cluster.worker_nodes:
            if node.node_id == node_id:
                return node
        raise AssertionError(f"no worker node {node_id}")

    def remove(self, node: Any) -> None:
        """A worker node leaves the cluster (stopped gracefully)."""
        self.cluster.remove_node(node)

    def kill(self, node_id: str) -> None:
        """The node is lost: all its Ray processes are killed at once (SIGKILL)."""
        self.cluster.remove_node(self.worker(node_id), allow_graceful=False)

    def shutdown(self) -> None:
        self.cluster.shutdown()


def ray_server_settings(cluster: RayCluster) -> dict[str, Any]:
    return {**RAY_SETTINGS, "ray_clusters": json.dumps({"test": cluster.address})}


def ray_ce(batch: Any, name: str, max_vcpus: int = 2, address: str = "test") -> None:
    """A managed compute environment on the test cluster; waits until it is VALID."""
    batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": max_vcpus, "minvCpus": 0},
        tags={"batchyard:provider": "ray", "batchyard:ray-address": address},
    )

    def settled() -> dict[str, Any] | None:
        ce = describe_ce(batch, name)
        return ce if ce and ce["status"] in ("VALID", "INVALID") else None

    ce = wait_for(settled, timeout=120, what=f"compute environment {name} to settle")
    assert ce["status"] == "VALID", ce.get("statusReason")
