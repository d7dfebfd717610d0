"""The ``ray`` provider: compute environments backed by Ray clusters (extra ``[ray]``).

Nothing here imports Ray: the server talks to each cluster through a bridge process, so the
core package works without it and the server starts as fast with it.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING

from batchyard.providers.ray.provider import RECHECK_SECONDS, RayProvider

if TYPE_CHECKING:
    from batchyard.config import Settings
    from batchyard.store.db import Store

__all__ = ["RayProvider", "ray_provider"]


def ray_provider(settings: Settings, store: Store) -> RayProvider | None:
    """The provider for this server, or None when Ray is not installed. Its Ray namespace is
    the ``ray_namespace`` setting, or one derived from the store, so that servers sharing a
    database share their supervisors and other deployments on the same cluster never see
    them.

    A compute environment's capacity is read again every ``ray_recheck_seconds`` (15 s; the
    variable ``BATCHYARD_RAY_RECHECK_SECONDS`` while the settings have no such field), so that
    it follows nodes joining and leaving the cluster."""
    if importlib.util.find_spec("ray") is None:
        return None
    recheck = getattr(settings, "ray_recheck_seconds", None) or os.environ.get(
        "BATCHYARD_RAY_RECHECK_SECONDS"
    )
    namespace = getattr(settings, "ray_namespace", None) or (
        "batchyard-" + store.secret("ray_namespace").hex()[:12]
    )
    return RayProvider(
        settings.data_dir / "ray",
        namespace=namespace,
        clusters=getattr(settings, "ray_clusters", None) or {},
        log_limit_bytes=settings.log_limit_bytes,
        recheck_seconds=float(recheck) if recheck else RECHECK_SECONDS,
    )
