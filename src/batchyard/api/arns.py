"""ARNs as AWS Batch writes them, and "name or ARN" references as clients send them.

Below the edge resources are known by name (job definitions by name and revision, jobs by
id); ARNs are built when a response is written, from the region the request was signed for
(the server's ``region`` when it was not signed) and the configured account, so a changed
region or account never leaves stale identifiers in the store. One server's resources are
visible under every region name (docs/api-compatibility.md, "Regions and accounts").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from batchyard.errors import InvalidRequest

KINDS = (
    "compute-environment",
    "job-queue",
    "job-definition",
    "scheduling-policy",
    "consumable-resource",
    "job",
    "service-environment",
    "quota-share",
)
_ARN = re.compile(r"arn:(aws[a-z-]*):batch:([a-z0-9-]+):([0-9]{12}):([a-z-]+)/(.+)")
# what a request's credential scope may name as its region: what an ARN can carry
REGION = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62})")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Arn:
    kind: str
    resource: str  # the part after "kind/": a name, "name:revision" or a job id


class Arns:
    """Builds and reads ARNs for one region and account."""

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self._prefix = f"arn:aws:batch:{region}:{account_id}:"

    def arn(self, kind: str, resource: str) -> str:
        return f"{self._prefix}{kind}/{resource}"

    def of(self, service: str, resource: str) -> str:
        """The ARN of another service's resource in this region and account."""
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"

    def parse(self, text: str, field: str) -> Arn:
        """Read a full ARN; the message names ``field`` and shows the expected form."""
        m = _ARN.fullmatch(text)
        if m is None or m.group(4) not in KINDS:
            raise InvalidRequest(
                f"{field}: {text!r} is not a valid AWS Batch ARN; expected "
                f"{self._prefix}<resource-type>/<name>"
            )
        _, region, account, kind, resource = m.groups()
        if account != self.account_id:
            raise InvalidRequest(
                f"{field}: {text!r} belongs to account {account}, but this server is account "
                f"{self.account_id} (its ARNs are {self._prefix}<resource-type>/<name>)"
            )
        if region != self.region:  # as on AWS: another region's resource is not found here
            raise InvalidRequest(
                f"{field}: {text!r} belongs to region {region}, but this request is for region "
                f"{self.region} (the region its client is configured for), where it is not "
                f"found; give the name, an ARN of {self.region}, or use a client configured "
                f"for {region}"
            )
        return Arn(kind, resource)

    def ref(self, text: str, kind: str, field: str) -> str:
        """A name-or-ARN reference to a ``kind`` resource -> the resource part (the name)."""
        if not text.startswith("arn:"):
            return text
        arn = self.parse(text, field)
        if arn.kind != kind:
            raise InvalidRequest(f"{field}: {text!r} is a {arn.kind} ARN, expected a {kind} ARN")
        return arn.resource


class PerRegion(Generic[T]):
    """One ``T`` per region a request may name, made once and kept (up to ``limit`` regions,
    so that made-up region names cannot grow it without end; beyond it each is made anew)."""

    def __init__(self, make: Callable[[str], T], limit: int = 64) -> None:
        self._make = make
        self._limit = limit
        self._made: dict[str, T] = {}

    def get(self, region: str) -> T:
        found = self._made.get(region)
        if found is None:
            found = self._make(region)
            if len(self._made) < self._limit:
                self._made[region] = found
        return found


def check_region(region: str) -> str:
    """A request's region as its credential scope names it; refused unless an ARN can
    carry it (AWS refuses a scope that names no region it has)."""
    if not REGION.fullmatch(region):
        raise InvalidRequest(
            f"the request is signed for region {region!r}, which is not a region name: "
            "lower-case letters, digits and hyphens, such as us-east-1 (set the client's "
            "region, e.g. AWS_DEFAULT_REGION or region_name)"
        )
    return region
