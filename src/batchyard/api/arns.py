"""ARNs as AWS Batch writes them, and "name or ARN" references as clients send them.

Below the edge resources are known by name (job definitions by name and revision, jobs by
id); ARNs are built from the configured region and account when a response is written, so a
changed region or account never leaves stale identifiers in the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

    def parse(self, text: str, field: str) -> Arn:
        """Read a full ARN; the message names ``field`` and shows the expected form."""
        m = _ARN.fullmatch(text)
        if m is None or m.group(4) not in KINDS:
            raise InvalidRequest(
                f"{field}: {text!r} is not a valid AWS Batch ARN; expected "
                f"{self._prefix}<resource-type>/<name>"
            )
        _, region, account, kind, resource = m.groups()
        if region != self.region or account != self.account_id:
            raise InvalidRequest(
                f"{field}: {text!r} belongs to region {region} and account {account}, but this "
                f"server is region {self.region}, account {self.account_id}"
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
