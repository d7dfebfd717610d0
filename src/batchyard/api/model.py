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


@functools.cache
def ec2_instance_types() -> tuple[str, ...]:
    """Every EC2 instance type botocore's EC2 model knows (``c5.xlarge``...). The EC2 model is
    large, so it is read only when a request names instance types, and then once."""
    return tuple(_session().get_service_model("ec2").shape_for("InstanceType").enum)
