"""Which routes are open, and what batchyard's own endpoints ask permission for.

The AWS API and the CloudWatch Logs endpoint are authorized per operation at the edge (their
IAM actions are ``batch:<Operation>`` and ``logs:<Operation>``). Every other route — the
``/batchyard/v1`` endpoints, the dashboard, ``/metrics`` — is authorized here, before it runs,
by the first rule of :data:`RULES` whose pattern matches; a route with no rule of its own
needs ``batchyard:Read`` (GET, HEAD) or ``batchyard:Write`` (anything else) on ``*``, so that
an endpoint added later is never open by accident. A rule marked ``inside`` belongs to an
endpoint that authorizes itself (it needs the request's body to know its resources).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from batchyard.auth.policy import ANY, Resource
from batchyard.auth.targets import Check, Target
from batchyard.config import Settings

if TYPE_CHECKING:
    from batchyard.auth.guard import Guard

OPEN = {"/healthz", "/favicon.ico", "/ui/login", "/ui/logout"}
OPEN_PREFIXES = ("/ui/static/",)
# the dashboard and batchyard's own endpoints take a browser session as well as a signature
SESSION_PREFIXES = ("/ui", "/batchyard/")
OWN_PREFIXES = ("/batchyard/", "/ui", "/metrics")


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: re.Pattern[str]
    methods: frozenset[str]
    action: str
    job_group: str | None = None  # the path's group naming a job: the resource is that job
    inside: bool = False
    kind: str | None = None  # the path's group "name" names a resource of this kind

    def target(self, guard: Guard, method: str, path: str) -> Target:
        m = self.pattern.match(path)
        resources = [ANY]
        if self.job_group and m is not None:
            resources = guard.targets.jobs([unquote(m.group(self.job_group))], "jobId")
        elif self.kind and m is not None:
            resources = [Resource(guard.targets.arn(self.kind, unquote(m.group("name"))))]
        return Target([Check(self.action, resources)], mutating=method not in ("GET", "HEAD"))


def _rule(pattern: str, methods: str, action: str, **kw: object) -> Rule:
    return Rule(re.compile(pattern), frozenset(methods.split()), action, **kw)  # type: ignore[arg-type]


V1 = r"^/batchyard/v1"
RULES: list[Rule] = [
    _rule(V1 + r"/status$", "GET HEAD", "batchyard:GetStatus"),
    _rule(
        V1 + r"/jobs/(?P<job>[^/]+)/(explain|history)$",
        "GET HEAD",
        "batch:DescribeJobs",
        job_group="job",
    ),
    _rule(V1 + r"/events(/.*)?$", "GET HEAD", "batchyard:GetEvents"),
    _rule(V1 + r"/webhooks(/.*)?$", "GET HEAD", "batchyard:GetWebhooks"),
    _rule(V1 + r"/usage(/.*)?$", "GET HEAD", "batchyard:GetUsage"),
    # security endpoints (api/security.py) decide with the request's body
    _rule(
        V1 + r"/(credentials|policies|policy|secrets|audit|whoami|users)(/.*)?$",
        "GET HEAD POST PUT DELETE",
        "",
        inside=True,
    ),
    _rule(r"^/metrics$", "GET HEAD", "batchyard:GetMetrics"),
    # the dashboard: its actions and a job's pages as the AWS operations they are; the
    # other pages and streams show every queue
    _rule(r"^/ui/jobs/(?P<job>[^/]+)/terminate$", "POST", "batch:TerminateJob", job_group="job"),
    _rule(r"^/ui/jobs/(?P<job>[^/]+)/cancel$", "POST", "batch:CancelJob", job_group="job"),
    _rule(
        r"^/ui/(jobs|fragments/job)/(?P<job>[^/]+)(/log)?$",
        "GET HEAD",
        "batch:DescribeJobs",
        job_group="job",
    ),
    _rule(r"^/ui/queues/(?P<name>[^/]+)/state$", "POST", "batch:UpdateJobQueue", kind="job-queue"),
    _rule(
        r"^/ui/compute-environments/(?P<name>[^/]+)/state$",
        "POST",
        "batch:UpdateComputeEnvironment",
        kind="compute-environment",
    ),
    _rule(r"^/(ui(/.*)?)?$", "GET HEAD", "batchyard:ViewDashboard"),
    _rule(r"^/ui(/.*)?$", "POST PUT DELETE PATCH", "batchyard:OperateDashboard"),
]


def exempt(path: str, settings: Settings) -> bool:
    if path in OPEN or path.startswith(OPEN_PREFIXES):
        return True
    return path == "/metrics" and not settings.auth_metrics


def sessions_allowed(path: str) -> bool:
    return path.startswith(SESSION_PREFIXES) or path == "/"


def wants_login(method: str, path: str, headers: list[tuple[str, str]]) -> bool:
    """A browser asking for a dashboard page: send it to the login page, not a JSON error."""
    if method != "GET" or not (path == "/" or path == "/ui" or path.startswith("/ui/")):
        return False
    accept = next((v for k, v in headers if k == "accept"), "")
    return "text/html" in accept


def rule(method: str, path: str) -> Rule | None:
    """The rule for one of batchyard's own routes; None for the AWS API."""
    if not (path.startswith(OWN_PREFIXES) or (path == "/" and method in ("GET", "HEAD"))):
        return None
    for r in RULES:
        if r.pattern.match(path) and method in r.methods:
            return r
    verb = "batchyard:Read" if method in ("GET", "HEAD", "OPTIONS") else "batchyard:Write"
    return Rule(re.compile(".*"), frozenset({method}), verb)


@functools.cache
def _router() -> Callable[[str, str], str]:
    from batchyard.api.model import batch_model
    from batchyard.api.protocol import Router

    router = Router(batch_model())

    def find(method: str, raw_path: str) -> str:
        try:
            op, _ = router.match(method, raw_path)
        except Exception:
            return ""
        return f"batch:{op.name}"

    return find


def operation(method: str, raw_path: bytes, headers: list[tuple[str, str]]) -> str:
    """The IAM action a request would perform, for the audit log of a refused one."""
    path = raw_path.decode("latin-1")
    target = next((v for k, v in headers if k == "x-amz-target"), "")
    if target.startswith("Logs_") and path == "/":
        return "logs:" + target.rsplit(".", 1)[-1]
    r = rule(method, path)
    if r is not None:
        return r.action or f"{method} {path}"
    return _router()(method, path) or f"{method} {path}"
