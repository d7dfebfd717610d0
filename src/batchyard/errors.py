"""The errors batchyard raises below the HTTP edge, and what each becomes on the wire.

    BatchyardError
    ├── ClientError           the request cannot be done as asked; AWS ``ClientException``, 4xx
    │   ├── InvalidRequest    a value is malformed, out of range or contradicts another (400)
    │   ├── NotFound          a named resource does not exist (400, as AWS Batch answers)
    │   ├── Conflict          the resource exists already, or is in a state that forbids this (400)
    │   ├── NotSupported      an AWS operation or feature batchyard does not implement yet (400)
    │   ├── PayloadTooLarge   the request body is larger than the server accepts (413)
    │   └── UnknownRoute      no operation answers this path or method (404 / 405)
    ├── AuthError             who is calling, and may they? (403, AWS's own codes)
    │   ├── MissingAuthentication  no signature at all (MissingAuthenticationTokenException)
    │   ├── UnrecognizedClient     unknown or revoked access key (UnrecognizedClientException)
    │   ├── InvalidSignature       a signature that does not match, is malformed or expired
    │   ├── ExpiredToken           an expired dashboard session or presigned URL
    │   └── AccessDenied           no policy allows the action on the resource, or one
    │                              denies it (AccessDeniedException)
    ├── Throttled             too many requests from one principal (TooManyRequestsException,
    │                         429; AWS SDKs retry it with backoff)
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

    @classmethod
    def over(cls, limit: int, size: int | None = None) -> PayloadTooLarge:
        """The refusal of a body of ``size`` bytes, or (``None``) of one found too large while
        reading it; it names the setting, so the operator knows what to raise."""
        scale = f"{limit / 1048576:g} MiB" if limit >= 1048576 else f"{limit / 1024:g} KiB"
        setting = (
            f"({scale}), set by the server's max_request_bytes (environment variable "
            "BATCHYARD_MAX_REQUEST_BYTES, or max_request_bytes in its config file)"
        )
        if size is None:
            return cls(f"the request body exceeds the limit of {limit} bytes {setting}")
        return cls(f"the request body is {size} bytes; the limit is {limit} bytes {setting}")


class UnknownRoute(ClientError):
    """No AWS Batch operation is served at this path with this method."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


class AuthError(BatchyardError):
    """The request is not authenticated, or its principal may not do what it asks (403)."""

    code = "AccessDeniedException"
    status = 403


class MissingAuthentication(AuthError):
    """The request carries no signature; sign it with an access key (any AWS SDK does)."""

    code = "MissingAuthenticationTokenException"


class UnrecognizedClient(AuthError):
    """The access key is unknown to this server, or was revoked."""

    code = "UnrecognizedClientException"


class InvalidSignature(AuthError):
    """The signature does not match the request (wrong secret, a changed body or header),
    is malformed, or its timestamp is more than 15 minutes away from the server's clock."""

    code = "InvalidSignatureException"


class ExpiredToken(AuthError):
    """A dashboard session or a presigned URL has expired; log in or sign again."""

    code = "ExpiredTokenException"


class AccessDenied(AuthError):
    """Authenticated, but no policy allows the action on the resource, or one denies it."""

    code = "AccessDeniedException"


class Throttled(BatchyardError):
    """The principal sent more requests than its rate allows; retry after a pause."""

    code = "TooManyRequestsException"
    status = 429


class ServerError(BatchyardError):
    """An internal failure; logged with its traceback, reported without one."""
