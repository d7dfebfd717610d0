"""The errors batchyard raises below the HTTP edge, and what each becomes on the wire.

    BatchyardError
    ├── ClientError           the request cannot be done as asked; AWS ``ClientException``, 4xx
    │   ├── InvalidRequest    a value is malformed, out of range or contradicts another (400)
    │   ├── NotFound          a named resource does not exist (400, as AWS Batch answers)
    │   ├── Conflict          the resource exists already, or is in a state that forbids this (400)
    │   ├── NotSupported      an AWS operation or feature batchyard does not implement yet (400)
    │   ├── PayloadTooLarge   the request body is larger than the server accepts (413)
    │   └── UnknownRoute      no operation answers this path or method (404 / 405)
    └── ServerError           our fault, not the caller's; AWS ``ServerException``, 500

Every message is a sentence a person can act on: it names the field or resource and says what
would be accepted. The API edge turns these into AWS-shaped error responses; nothing else
needs to know about HTTP.
"""

from __future__ import annotations


class BatchyardError(Exception):
    """Base of every error batchyard raises on purpose."""

    code = "ServerException"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientError(BatchyardError):
    """The caller asked for something that cannot be done; nothing was changed."""

    code = "ClientException"
    status = 400


class InvalidRequest(ClientError):
    """A parameter is malformed, out of range, or contradicts another parameter."""


class NotFound(ClientError):
    """The request names a resource (queue, compute environment, job...) that does not exist."""


class Conflict(ClientError):
    """The resource already exists, or its current state forbids the operation."""


class NotSupported(ClientError):
    """The operation or feature is part of AWS Batch but not implemented by batchyard yet."""


class PayloadTooLarge(ClientError):
    """The request body exceeds the server's ``max_request_bytes``."""

    status = 413


class UnknownRoute(ClientError):
    """No AWS Batch operation is served at this path with this method."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


class ServerError(BatchyardError):
    """An internal failure; logged with its traceback, reported without one."""
