"""``computeResources.instanceTypes`` as AWS checks them: each one an EC2 instance type
(botocore's EC2 model holds the list), an instance family (``c5``, ``m6g``: the part before the
``.``), or one of AWS Batch's aliases. AWS refuses anything else, so a typo is caught here
rather than after a move to AWS."""

from __future__ import annotations

import difflib
import functools
from typing import Any

from batchyard.api.model import ec2_instance_types
from batchyard.errors import InvalidRequest

ALIASES = ("optimal", "default_x86_64", "default_arm64")


@functools.cache
def _known() -> frozenset[str]:
    types = ec2_instance_types()
    return frozenset(types) | {t.split(".", 1)[0] for t in types} | frozenset(ALIASES)


def check(compute_resources: dict[str, Any] | None) -> None:
    """Refuse the instance types AWS would refuse, suggesting close matches."""
    given = (compute_resources or {}).get("instance_types")
    if not given:
        return
    known = _known()
    problems = []
    for i, value in enumerate(given):
        if value in known:
            continue
        problem = (
            f"computeResources.instanceTypes[{i}]: {value!r} is not an EC2 instance type or family"
        )
        close = difflib.get_close_matches(value.lower(), sorted(known), n=3, cutoff=0.7)
        if close:
            problem += f" (did you mean {' or '.join(close)}?)"
        problems.append(problem)
    if problems:
        raise InvalidRequest(
            "; ".join(problems) + ". Give EC2 instance types (such as c5.xlarge), instance "
            f"families (such as c5) or {', '.join(ALIASES)}"
        )
