"""botocore's service models, loaded once: the specification of the wire format."""

from __future__ import annotations

import functools

import botocore.session
from botocore.model import ServiceModel


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.cache
def batch_model() -> ServiceModel:
    """The AWS Batch REST-JSON model (``batch/2016-08-10``)."""
    return _session().get_service_model("batch")


@functools.cache
def logs_model() -> ServiceModel:
    """The CloudWatch Logs JSON-1.1 model, for the log endpoints."""
    return _session().get_service_model("logs")
