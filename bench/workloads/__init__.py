"""The workloads. Each module has NAME, TITLE, PER_STORE, ``run(ctx[, store]) -> dict`` and
``markdown(result) -> list[str]`` (result: {store: dict} when PER_STORE)."""

from workloads import api, ceiling, latency, ray, resources, scale, slurm, throughput

ALL = {m.NAME: m for m in (ceiling, throughput, latency, api, resources, scale, slurm, ray)}
