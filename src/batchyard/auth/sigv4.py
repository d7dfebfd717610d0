"""AWS Signature Version 4, the server's side: parse what a request claims, rebuild its
canonical form, and check the signature with the secret of the key it names.

Written from AWS's specification (the same one botocore, the AWS CLI and every other SDK sign
by), not from a signer library, because the server must verify what any of them sends:

    CanonicalRequest = Method \\n CanonicalURI \\n CanonicalQuery \\n CanonicalHeaders \\n
                       SignedHeaders \\n HexSHA256(payload)
    StringToSign     = "AWS4-HMAC-SHA256" \\n AmzDate \\n Date/Region/Service/aws4_request \\n
                       HexSHA256(CanonicalRequest)
    SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, Date), Region), Service),
                            "aws4_request")
    Signature        = Hex(HMAC(SigningKey, StringToSign))

Both forms are accepted: the ``Authorization`` header, and a presigned URL (``X-Amz-*``
query parameters). Nothing here does I/O: :func:`parse` reads a request's claim,
:func:`check_time` its timestamp, :func:`verify` its signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from batchyard.errors import ExpiredToken, InvalidSignature, MissingAuthentication

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
AMZ_DATE = "%Y%m%dT%H%M%SZ"
_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)
_KEY_ID = re.compile(r"^[A-Za-z0-9+/=_.-]{1,128}$")
_FIX = (
    "sign the request with SigV4 (any AWS SDK or the AWS CLI does, given an access key and "
    "secret from `batchyard credentials create`)"
)


@dataclass(frozen=True, slots=True)
class Request:
    """What the verifier needs of an HTTP request, exactly as it arrived."""

    method: str
    raw_path: str  # percent-encoded, as sent, without the query string
    query: str  # the raw query string
    headers: list[tuple[str, str]]  # names in lower case, in order, repeats kept
    body_sha256: str  # hex SHA-256 of the body as received

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class Claim:
    """Who a request says signed it, and how."""

    access_key_id: str
    amz_date: str  # YYYYMMDDTHHMMSSZ
    date: str  # the scope's YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    presigned: bool = False
    expires: int | None = None  # presigned: seconds after amz_date

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"

    @property
    def time(self) -> datetime:
        return datetime.strptime(self.amz_date, AMZ_DATE).replace(tzinfo=UTC)


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def parse(req: Request) -> Claim | None:
    """The request's claim, or None when it carries no SigV4 signature at all.

    Raises :class:`InvalidSignature` for a signature that is there but malformed, and
    :class:`MissingAuthentication` for another scheme (SigV2, Basic...)."""
    header = req.header("authorization")
    if header is not None:
        return _parse_header(req, header)
    pairs = dict(_query_pairs(req.query)) if "X-Amz-" in req.query else {}
    if "X-Amz-Signature" in pairs or "X-Amz-Credential" in pairs:
        return _parse_query(pairs)
    return None


def claimed_region(headers: Iterable[tuple[bytes, bytes]], query: bytes) -> str | None:
    """The region a request's credential scope names (``Credential=KEY/DATE/REGION/...`` in
    the Authorization header, or ``X-Amz-Credential`` of a presigned URL), read from the raw
    ASGI headers without checking anything, so that a server without authentication acts in
    it too; None for a request that names none."""
    for name, value in headers:
        if name == b"authorization":
            start = value.find(b"Credential=")
            if start < 0:
                return None
            end = value.find(b",", start)
            return _scope_region(value[start + 11 : end if end >= 0 else len(value)].strip())
    if b"X-Amz-Credential=" in query:
        for part in query.split(b"&"):
            if part.startswith(b"X-Amz-Credential="):
                return _scope_region(unquote(part[17:].decode("latin-1")).encode("latin-1"))
    return None


def _scope_region(credential: bytes) -> str | None:
    parts = credential.split(b"/")
    return parts[2].decode("latin-1") if len(parts) == 5 and parts[2] else None


def _credential(text: str) -> tuple[str, str, str, str]:
    parts = text.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise InvalidSignature(
            f"Credential {text!r} is malformed; expected "
            "<access key id>/<YYYYMMDD>/<region>/<service>/aws4_request"
        )
    key, date, region, service, _ = parts
    if not _KEY_ID.match(key):
        raise InvalidSignature(f"the access key id {key!r} is malformed")
    if not re.fullmatch(r"\d{8}", date):
        raise InvalidSignature(f"Credential date {date!r} is malformed; expected YYYYMMDD")
    return key, date, region, service


def _parse_header(req: Request, header: str) -> Claim:
    m = _AUTH.match(header.strip())
    if m is None:
        scheme = header.strip().split(" ", 1)[0] or "an empty Authorization header"
        raise MissingAuthentication(
            f"Authorization scheme {scheme!r} is not supported: {_FIX} ({ALGORITHM})"
        )
    fields: dict[str, str] = {}
    for item in m.group(1).split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    missing = [f for f in ("Credential", "SignedHeaders", "Signature") if f not in fields]
    if missing:
        raise InvalidSignature(
            f"Authorization header requires {', '.join(missing)}; it has "
            f"{', '.join(sorted(fields)) or 'nothing'}"
        )
    key, date, region, service = _credential(fields["Credential"])
    amz_date = req.header("x-amz-date")
    if amz_date is None:
        raw = req.header("date")
        if raw is None:
            raise InvalidSignature(
                "the request has neither an X-Amz-Date nor a Date header; a signature needs "
                "its time"
            )
        try:
            amz_date = parsedate_to_datetime(raw).astimezone(UTC).strftime(AMZ_DATE)
        except (TypeError, ValueError):
            raise InvalidSignature(f"the Date header {raw!r} is not a valid date") from None
    return _claim(
        key, amz_date, date, region, service, fields["SignedHeaders"], fields["Signature"]
    )


def _parse_query(pairs: dict[str, str]) -> Claim:
    missing = [
        p
        for p in (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
        if p not in pairs
    ]
    if missing:
        raise InvalidSignature(f"a presigned URL needs {', '.join(missing)}")
    if pairs["X-Amz-Algorithm"] != ALGORITHM:
        raise InvalidSignature(
            f"X-Amz-Algorithm {pairs['X-Amz-Algorithm']!r} is not supported; use {ALGORITHM}"
        )
    key, date, region, service = _credential(pairs["X-Amz-Credential"])
    expires = pairs.get("X-Amz-Expires", "")
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGN_SECONDS:
        raise InvalidSignature(
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGN_SECONDS}"
        )
    claim = _claim(
        key,
        pairs["X-Amz-Date"],
        date,
        region,
        service,
        pairs["X-Amz-SignedHeaders"],
        pairs["X-Amz-Signature"],
    )
    return replace(claim, presigned=True, expires=int(expires))


def _claim(
    key: str, amz_date: str, date: str, region: str, service: str, signed: str, signature: str
) -> Claim:
    if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date):
        raise InvalidSignature(f"X-Amz-Date {amz_date!r} is malformed; expected YYYYMMDDTHHMMSSZ")
    if amz_date[:8] != date:
        raise InvalidSignature(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: {date!r} != {amz_date[:8]!r}, from {amz_date!r}"
        )
    names = tuple(signed.split(";"))
    if (
        not all(names)
        or list(names) != sorted(set(names))
        or names != tuple(n.lower() for n in names)
    ):
        raise InvalidSignature(
            f"SignedHeaders {signed!r} must be lower-case header names, sorted, separated by ';'"
        )
    if "host" not in names:
        raise InvalidSignature("SignedHeaders must include host")
    if not re.fullmatch(r"[0-9a-f]{64}", signature):
        raise InvalidSignature("the Signature must be 64 lower-case hex digits")
    return Claim(key, amz_date, date, region, service, names, signature)


def check_time(claim: Claim, now: datetime, skew_seconds: int) -> None:
    """AWS's clock rule: the signature's time within ``skew_seconds`` of the server's clock
    (15 minutes); a presigned URL also not past its X-Amz-Expires."""
    when = claim.time
    delta = (now - when).total_seconds()
    stamp, now_s = claim.amz_date, now.strftime(AMZ_DATE)
    if claim.presigned:
        if delta < -skew_seconds:
            raise InvalidSignature(
                f"Signature not yet current: {stamp} is still later than {now_s}; check the "
                "client's clock"
            )
        if delta > (claim.expires or 0):
            raise ExpiredToken(
                f"Request has expired: the presigned URL was signed at {stamp} for "
                f"{claim.expires} s, and it is now {now_s}; presign it again"
            )
        return
    if delta > skew_seconds:
        limit = datetime.fromtimestamp(now.timestamp() - skew_seconds, UTC).strftime(AMZ_DATE)
        raise InvalidSignature(
            f"Signature expired: {stamp} is now earlier than {limit} ({now_s} - "
            f"{skew_seconds // 60} min.); sign the request again, and check the client's clock"
        )
    if delta < -skew_seconds:
        limit = datetime.fromtimestamp(now.timestamp() + skew_seconds, UTC).strftime(AMZ_DATE)
        raise InvalidSignature(
            f"Signature not yet current: {stamp} is still later than {limit} ({now_s} + "
            f"{skew_seconds // 60} min.); check the client's clock"
        )


def canonical_uri(raw_path: str) -> str:
    """Dot segments and repeated slashes removed, then URI-encoded (again: the path arrives
    encoded, and SigV4 for every service but S3 encodes it a second time)."""
    if not raw_path:
        return "/"
    kept: list[str] = []
    for seg in raw_path.split("/"):
        if not seg or seg == ".":
            continue
        if seg == "..":
            if kept:
                kept.pop()
            continue
        kept.append(seg)
    first = "/" if raw_path.startswith("/") else ""
    last = "/" if raw_path.endswith("/") and kept else ""
    return quote(first + "/".join(kept) + last, safe="/~")


def canonical_query(query: str, presigned: bool = False, as_sent: bool = False) -> str:
    """Names and values URI-encoded (RFC 3986), sorted. ``as_sent`` keeps each pair encoded
    as it arrived, as some signers (botocore among them) sign it."""
    if as_sent:
        raw = [p.partition("=") for p in query.split("&") if p]
        pairs = [(k, v) for k, _, v in raw if not (presigned and k == "X-Amz-Signature")]
    else:
        pairs = [
            (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
            for k, v in _query_pairs(query)
            if not (presigned and k == "X-Amz-Signature")
        ]
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_headers(req: Request, names: Iterable[str]) -> str:
    lines = []
    for name in names:
        values = [" ".join(v.split()) for k, v in req.headers if k == name]
        if not values:
            raise InvalidSignature(
                f"SignedHeaders names {name!r}, but the request has no such header"
            )
        lines.append(f"{name}:{','.join(values)}")
    return "\n".join(lines) + "\n"


def canonical_request(
    req: Request, claim: Claim, payload_hash: str, query_as_sent: bool = False
) -> str:
    return "\n".join(
        [
            req.method.upper(),
            canonical_uri(req.raw_path),
            canonical_query(req.query, claim.presigned, query_as_sent),
            canonical_headers(req, claim.signed_headers),
            ";".join(claim.signed_headers),
            payload_hash,
        ]
    )


def string_to_sign(claim: Claim, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{claim.amz_date}\n{claim.scope}\n{digest}"


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(secret: str, claim: Claim, canonical: str) -> str:
    key = signing_key(secret, claim.date, claim.region, claim.service)
    return hmac.new(key, string_to_sign(claim, canonical).encode(), hashlib.sha256).hexdigest()


def payload_hash(req: Request, claim: Claim) -> str:
    """The body's hash as the signer must have used it. A client-sent
    ``X-Amz-Content-SHA256`` must equal the body's real hash: a body changed on the way is
    caught here even if the header was signed."""
    declared = req.header("x-amz-content-sha256")
    if declared is not None and declared != req.body_sha256:
        if declared == UNSIGNED_PAYLOAD and claim.presigned:
            return UNSIGNED_PAYLOAD
        raise InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed: the "
            "body was changed after it was signed"
        )
    return req.body_sha256


def verify(req: Request, claim: Claim, secret: str) -> None:
    """Raise :class:`InvalidSignature` unless ``claim.signature`` signs ``req`` with
    ``secret``."""
    body = payload_hash(req, claim)
    canonical = canonical_request(req, claim, body)
    if hmac.compare_digest(signature(secret, claim, canonical), claim.signature):
        return
    if "%" in req.query:  # signed over the query as it was encoded on the wire
        alt = canonical_request(req, claim, body, query_as_sent=True)
        if alt != canonical and hmac.compare_digest(signature(secret, claim, alt), claim.signature):
            return
    if claim.presigned and req.body_sha256 == EMPTY_SHA256:
        # presigned GETs are commonly signed over UNSIGNED-PAYLOAD
        unsigned = signature(secret, claim, canonical_request(req, claim, UNSIGNED_PAYLOAD))
        if hmac.compare_digest(unsigned, claim.signature):
            return
    raise InvalidSignature(
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method: the secret must be the one "
        f"`batchyard credentials create` printed for {claim.access_key_id}, and the request "
        "must not change after it is signed (body, path, query or signed headers)"
    )


def sign(
    req: Request,
    access_key_id: str,
    secret: str,
    region: str,
    service: str,
    when: datetime,
    signed_headers: Iterable[str] | None = None,
) -> str:
    """The ``Authorization`` header value for ``req`` (which must already carry the
    ``x-amz-date`` header for ``when``); for tests and tools. Signs every header by default."""
    names = sorted({n for n, _ in req.headers} if signed_headers is None else set(signed_headers))
    amz_date = when.astimezone(UTC).strftime(AMZ_DATE)
    claim = Claim(access_key_id, amz_date, amz_date[:8], region, service, tuple(names), "0" * 64)
    canonical = canonical_request(req, claim, req.body_sha256)
    sig = signature(secret, claim, canonical)
    return (
        f"{ALGORITHM} Credential={access_key_id}/{claim.scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={sig}"
    )
