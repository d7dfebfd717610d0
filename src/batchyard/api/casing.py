"""camelCase wire values ⇄ snake_case domain values, driven by the model's shapes.

Only structure member names are renamed; map keys (tags, parameters) are user data and pass
through unchanged. Because the shape says which is which, the conversion is exact both ways.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.model import Shape

from batchyard.api.defaults import DEFAULTS, RULES, NestedDefault, fresh
from batchyard.errors import ServerError

# Names whose generic form would read badly (maxvCpus -> maxv_cpus).
_SPECIAL = {
    "maxvCpus": "max_vcpus",
    "minvCpus": "min_vcpus",
    "desiredvCpus": "desired_vcpus",
    "unmanagedvCpus": "unmanaged_vcpus",
}
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


@dataclass(frozen=True, slots=True)
class _Output:
    """How to write one structure shape: its members by snake_case name, and what AWS
    answers for the members left out (api/defaults.py), worked out once per shape."""

    names: dict[str, str]
    defaults: tuple[tuple[str, Any], ...]
    rules: tuple[NestedDefault, ...]


_outputs: dict[tuple[int, str], _Output] = {}


def snake(name: str) -> str:
    """``computeEnvironmentOrder`` -> ``compute_environment_order``."""
    special = _SPECIAL.get(name)
    if special is not None:
        return special
    return _CAMEL_HUMP.sub(r"_\1", name).lower()


def to_domain(value: Any, shape: Shape) -> Any:
    """A validated wire value -> the same value with snake_case structure members.

    A member sent as JSON ``null`` is left out, as if it had not been sent (the validator has
    already refused nulls where a value is required).
    """
    t = shape.type_name
    if t == "structure":
        members = shape.members
        return {snake(k): to_domain(v, members[k]) for k, v in value.items() if v is not None}
    if t == "list":
        return [to_domain(v, shape.member) for v in value]
    if t == "map":
        return {k: to_domain(v, shape.value) for k, v in value.items()}
    return value


def _output(shape: Shape) -> _Output:
    # per model (its shape resolver) and shape name: the Batch and Logs models share some names
    key = (id(shape._shape_resolver), shape.name)
    found = _outputs.get(key)
    if found is None:
        members = shape.members
        found = _Output(
            {snake(m): m for m in members},
            tuple((m, DEFAULTS[(shape.name, m)]) for m in members if (shape.name, m) in DEFAULTS),
            RULES.get(shape.name, ()),
        )
        _outputs[key] = found
    return found


def to_wire(value: Any, shape: Shape, path: str = "") -> Any:
    """A snake_case domain value -> its wire form; ``None`` members are left out, unless AWS
    answers them anyway (api/defaults.py): those get AWS's value.

    A member the shape does not have is a bug on our side (we would send AWS clients a field
    AWS never sends), so it raises :class:`ServerError` instead of passing silently.
    """
    t = shape.type_name
    if t == "structure":
        plan = _output(shape)
        names = plan.names
        members = shape.members
        out = {}
        for k, v in value.items():
            if v is None:
                continue
            wire = names.get(k)
            if wire is None:
                raise ServerError(f"response field {path}{k} is not in shape {shape.name}")
            out[wire] = to_wire(v, members[wire], f"{path}{k}.")
        for wire, default in plan.defaults:
            if wire not in out:
                out[wire] = fresh(default)
        for rule in plan.rules:
            inner = out.get(rule.member)
            if (
                inner is not None
                and rule.inner not in inner
                and rule.contains in out.get(rule.when, ())
            ):
                inner[rule.inner] = fresh(rule.value)
        return out
    if t == "list":
        return [to_wire(v, shape.member, path) for v in value]
    if t == "map":
        return {k: to_wire(v, shape.value, path) for k, v in value.items()}
    return value
