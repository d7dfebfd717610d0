"""The security of one server, in one object: who is calling (authentication), may they
(authorization), not too often (throttle), within limits (admission), and the audit trail.

The HTTP edge calls it: :class:`batchyard.auth.middleware.AuthMiddleware` authenticates every
request but ``/healthz`` and the dashboard's login and static files, and authorizes
batchyard's own endpoints; the AWS API and the CloudWatch Logs endpoint authorize each
operation once it is parsed (:meth:`Guard.check`), because only then are its resources known.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from batchyard.api.arns import Arns, PerRegion
from batchyard.auth import sigv4
from batchyard.auth.identity import ANONYMOUS, Identities, Principal
from batchyard.auth.policy import evaluate
from batchyard.auth.targets import Target, Targets, mutating
from batchyard.auth.throttle import Throttle
from batchyard.config import Settings
from batchyard.errors import (
    AccessDenied,
    AuthError,
    BatchyardError,
    Conflict,
    ExpiredToken,
    MissingAuthentication,
    UnrecognizedClient,
)
from batchyard.service.audit import Audit, Record
from batchyard.service.secrets import Secrets
from batchyard.store import security as repo
from batchyard.store.db import Store

log = logging.getLogger("batchyard.auth")
PRINCIPAL = "batchyard.principal"  # the request scope's key for the caller
SESSION_COOKIE = "batchyard_session"
DEFAULT_RATE = 50.0
QUEUE_COUNT_SECONDS = 5.0
_UNRESTRICTED = Principal(ANONYMOUS, unrestricted=True)


def unrestricted(source: str = "", access_key_id: str | None = None) -> Principal:
    return Principal(ANONYMOUS, access_key_id, unrestricted=True, source=source)


class Guard:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        arns: Arns,
        identities: Identities,
        audit: Audit,
        secrets: Secrets,
    ) -> None:
        self.settings = settings
        self.store = store
        self.arns = arns
        self.identities = identities
        self.audit = audit
        self.secrets = secrets
        self.targets = Targets(store, arns)  # in the server's own region
        # a request is authorized in the region it was signed for (its resources' ARNs)
        self._regional = PerRegion(lambda region: Targets(store, Arns(region, arns.account_id)))
        self.required = settings.auth == "required"
        rate = settings.rate_limit
        if rate is None:
            rate = DEFAULT_RATE if self.required else 0.0
        burst = settings.rate_burst or max(1, int(rate * 2))
        self.throttle = Throttle(rate, burst) if rate > 0 else None
        # failed authentications are throttled per client address whatever the rate
        self.failures = Throttle(max(rate, 5.0), max(burst, 10))
        self._session_key = store.secret("session_secret")
        self._queue_counts: dict[str, tuple[float, int]] = {}
        self._queue_lock = threading.Lock()
        if self.required and not any(k["status"] == "Active" for k in identities.list_keys()):
            log.warning(
                "authentication is required and there is no access key yet: create the first "
                "with `batchyard credentials create --local --data-dir %s --name admin --policy "
                "admin.json` (see docs/security.md)",
                settings.data_dir,
            )

    # ---- authentication -------------------------------------------------------------------

    def anonymous(self, source: str, headers: list[tuple[str, str]]) -> Principal:
        """Authentication off: everything is allowed; the claimed key (never checked) is kept
        for the audit log."""
        claimed = None
        for k, v in headers:
            if k == "authorization" and "Credential=" in v:
                claimed = v.split("Credential=", 1)[1].split("/", 1)[0][:128]
        return unrestricted(source, claimed)

    def authenticate(
        self, req: sigv4.Request, source: str, secure: bool, cookie: str | None
    ) -> Principal:
        """The verified caller of ``req``, or an :class:`AuthError` saying what to fix."""
        claim = sigv4.parse(req)
        if claim is None:
            if cookie:
                return self._session_principal(cookie, source, secure)
            raise MissingAuthentication(
                "Missing Authentication Token: this server requires requests signed with "
                "AWS Signature Version 4. Configure an access key and secret from `batchyard "
                "credentials create` (aws configure, or AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY) and any AWS SDK or the AWS CLI signs for you"
            )
        sigv4.check_time(claim, datetime.now(UTC), self.settings.max_clock_skew_seconds)
        record = self.identities.lookup(claim.access_key_id)
        if record is None:
            raise UnrecognizedClient(
                f"The security token included in the request is invalid: access key "
                f"{claim.access_key_id} does not exist on this server; use a key from "
                "`batchyard credentials create` (the AWS keys of a real account do not work here)"
            )
        if record.revoked_at is not None:
            when = datetime.fromtimestamp(record.revoked_at / 1000, UTC).isoformat()
            raise UnrecognizedClient(
                f"The security token included in the request is invalid: access key "
                f"{claim.access_key_id} was revoked at {when}; ask an administrator for a new "
                "one (batchyard credentials create)"
            )
        sigv4.verify(req, claim, record.secret)
        self.audit.used(record.access_key_id)
        return Principal(
            record.user,
            record.access_key_id,
            record.groups,
            record.policies,
            source=source,
            secure=secure,
            context={"aws:RequestedRegion": claim.region},
        )

    # ---- dashboard sessions ---------------------------------------------------------------

    def login(self, access_key_id: str, secret: str, source: str) -> tuple[str, int]:
        """Check a key and its secret (the dashboard's login form); returns a session cookie
        value and its lifetime in seconds."""
        self.failures.take(f"login:{source}")
        record = self.identities.lookup(access_key_id.strip())
        if (
            record is None
            or record.revoked_at is not None
            or not hmac.compare_digest(record.secret.encode(), secret.strip().encode())
        ):
            raise UnrecognizedClient(
                "the access key id or the secret access key is wrong, or the key was revoked"
            )
        seconds = int(self.settings.session_hours * 3600)
        payload = orjson.dumps({"k": record.access_key_id, "e": int(time.time()) + seconds})
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        mac = hmac.new(self._session_key, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}", seconds

    def _session_principal(self, cookie: str, source: str, secure: bool) -> Principal:
        body, _, mac = cookie.partition(".")
        good = hmac.new(self._session_key, body.encode(), hashlib.sha256).hexdigest()
        if not mac or not hmac.compare_digest(good, mac):
            raise MissingAuthentication("the session cookie is not valid; log in again at /ui")
        data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if data["e"] < time.time():
            raise ExpiredToken("the dashboard session has expired; log in again at /ui/login")
        record = self.identities.lookup(data["k"])
        if record is None or record.revoked_at is not None:
            raise UnrecognizedClient(
                f"the session's access key {data['k']} was revoked; log in with another key"
            )
        return Principal(
            record.user,
            record.access_key_id,
            record.groups,
            record.policies,
            source=source,
            secure=secure,
        )

    # ---- rates --------------------------------------------------------------------------

    def take(self, principal: Principal) -> None:
        if self.throttle is None:
            return
        who = (
            f"user {principal.name}"
            if not principal.unrestricted
            else f"client {principal.source or 'unknown'}"
        )
        self.throttle.take(who)

    def refused(self, source: str) -> None:
        """A request that failed to authenticate: slows down whoever guesses."""
        self.failures.take(f"client {source or 'unknown'}")

    # ---- authorization --------------------------------------------------------------------

    def context(self, principal: Principal, extra: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC)
        ctx: dict[str, Any] = {
            "aws:username": principal.name,
            "aws:userid": principal.access_key_id or principal.name,
            "aws:PrincipalArn": principal.arn(self.arns.account_id),
            "aws:PrincipalType": "User",
            "aws:SecureTransport": principal.secure,
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": int(now.timestamp()),
            "batchyard:AccessKeyId": principal.access_key_id,
            "batchyard:Groups": list(principal.groups),
        }
        if principal.source:
            ctx["aws:SourceIp"] = principal.source
        ctx.update(principal.context)
        ctx.update(extra)
        return {k: v for k, v in ctx.items() if v is not None}

    def authorize(self, principal: Principal, target: Target) -> None:
        """:class:`AccessDenied` unless the principal's policies allow every check."""
        if principal.unrestricted:
            return
        ctx = self.context(principal, target.context)
        for check in target.checks:
            decision = evaluate(principal.policies, check.action, check.resources, ctx)
            if not decision.allowed:
                raise AccessDenied(decision.explain(principal.arn(self.arns.account_id)))

    def admit(self, target: Target) -> None:
        """SubmitJob's limit: the unfinished jobs of its queue (counted in the store at most
        every few seconds, and always before refusing)."""
        if self._admitted(target):
            return
        assert target.queue is not None
        name, limit = target.queue, self.settings.max_jobs_per_queue
        at = time.monotonic()
        with self.store.read() as conn:
            count = repo.unfinished_jobs(conn, name)
        if count + target.adds > limit:
            raise Conflict(
                f"job queue {name!r} holds {count} unfinished jobs; this submission would add "
                f"{target.adds} and the limit is {limit} (setting max_jobs_per_queue). Wait for "
                "jobs to finish, or use another queue"
            )
        with self._queue_lock:  # counted until the next look at the store
            self._queue_counts[name] = (at, count + target.adds)

    def _admitted(self, target: Target) -> bool:
        """Admitted by the count remembered from the store, if it is fresh and leaves room
        (False: :meth:`admit` counts again)."""
        if target.queue is None:
            return True
        name, limit = target.queue, self.settings.max_jobs_per_queue
        with self._queue_lock:
            at, count = self._queue_counts.get(name, (0.0, -1))
            if count < 0 or time.monotonic() - at > QUEUE_COUNT_SECONDS:
                return False
            if count + target.adds > limit:
                return False
            self._queue_counts[name] = (at, count + target.adds)
        return True

    def targets_in(self, region: str | None) -> Targets:
        """The targets of requests signed for ``region`` (None: unsigned, the server's)."""
        if region is None or region == self.arns.region:
            return self.targets
        return self._regional.get(region)

    def check(
        self,
        principal: Principal | None,
        api: str,
        op: str,
        req: dict[str, Any],
        region: str | None = None,
    ) -> Target:
        """Blocking (store reads): authorize one parsed API operation, in the region the
        request was signed for; returns its target."""
        targets = self.targets_in(region)
        if principal is None or principal.unrestricted:
            target = targets.light(api, op, req)
        else:
            target = targets.logs(op, req) if api == "logs" else targets.batch(op, req)
            self.authorize(principal, target)
        if op == "SubmitJob":
            self.admit(target)
        return target

    def check_at_once(
        self,
        principal: Principal | None,
        api: str,
        op: str,
        req: dict[str, Any],
        region: str | None = None,
    ) -> Target | None:
        """:meth:`check` where it needs nothing from the store (authentication off, the
        queue's job count fresh), so that it may run on the event loop; None: call
        :meth:`check` on a worker thread."""
        if principal is not None and not principal.unrestricted:
            return None
        target = self.targets_in(region).light(api, op, req)
        if op == "SubmitJob" and not self._admitted(target):
            return None
        return target

    # ---- the audit log --------------------------------------------------------------------

    def outcome(
        self,
        principal: Principal | None,
        operation: str | None,
        target: Target | None,
        error: BatchyardError | None = None,
    ) -> None:
        """After an AWS API call: audit it if it changes something, or was refused."""
        if operation is None:
            return
        changing = target.mutating if target is not None else mutating(operation)
        if not changing and not isinstance(error, AuthError):
            return
        api = "logs" if target is not None and target.action.startswith("logs:") else "batch"
        action = target.action if target is not None else f"{api}:{operation}"
        self.record(principal, action, target.arns if target is not None else [], error)

    def record(
        self,
        principal: Principal | None,
        action: str,
        resources: list[str],
        error: BatchyardError | None = None,
        request_id: str | None = None,
    ) -> None:
        principal = principal or _UNRESTRICTED
        self.audit.record(
            Record(
                principal=principal.name,
                access_key_id=principal.access_key_id,
                action=action,
                resources=resources,
                outcome=error.code if error is not None else "Success",
                status=error.status if error is not None else 200,
                source=principal.source,
                message=error.message if error is not None else None,
                request_id=request_id or str(uuid.uuid4()),
            )
        )

    def refused_signature(
        self, err: AuthError, req: sigv4.Request, source: str, action: str
    ) -> None:
        """An authentication failure, for the audit log (with the key it claimed)."""
        claimed = None
        try:
            claim = sigv4.parse(req)
            claimed = claim.access_key_id if claim else None
        except BatchyardError:
            pass
        self.audit.record(
            Record(
                principal=f"unauthenticated:{claimed or '-'}",
                access_key_id=claimed,
                action=action,
                resources=[],
                outcome=err.code,
                status=err.status,
                source=source,
                message=err.message,
            )
        )

    def audit_route(self, principal: Principal, target: Target, status: int) -> None:
        """A mutating call to one of batchyard's own endpoints, once it answered."""
        outcome = "Success" if status < 400 else f"HTTP {status}"
        self.audit.record(
            Record(
                principal=principal.name,
                access_key_id=principal.access_key_id,
                action=target.action,
                resources=target.arns,
                outcome=outcome,
                status=status,
                source=principal.source,
            )
        )
