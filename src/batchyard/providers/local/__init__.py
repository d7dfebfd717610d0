"""The ``local`` provider: jobs run as processes on this host, supervised by a small agent
process that outlives the server (see :mod:`batchyard.providers.local.agent`)."""

from batchyard.providers.local.provider import LocalProvider, host_capacity

__all__ = ["LocalProvider", "host_capacity"]
