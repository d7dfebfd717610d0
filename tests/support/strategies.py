"""Hypothesis strategies that build wire values from botocore shapes: every value they draw
is one the model accepts (types, enums, lengths, ranges, required members)."""

from __future__ import annotations

import functools
import string
from typing import Any

from botocore.model import Shape
from hypothesis import strategies as st

from batchyard.api.model import batch_model

_BOUNDS = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
# printable text, and some non-ASCII, but never U+0000 (which the server refuses)
_TEXT = st.characters(codec="utf-8", exclude_characters="\x00", exclude_categories=["Cs"])
_MAX_DEPTH = 6


def _text(shape: Shape) -> st.SearchStrategy[str]:
    enum = shape.metadata.get("enum")
    if enum:
        return st.sampled_from(enum)
    lo = shape.metadata.get("min", 0)
    hi = min(shape.metadata.get("max", lo + 12), lo + 12)
    return st.text(_TEXT, min_size=lo, max_size=hi)


@functools.cache
def wire_values(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of ``shape`` as a client sends them (camelCase structure members)."""
    kind, meta = shape.type_name, shape.metadata
    if kind == "structure":
        required = {n: wire_values(shape.members[n], depth + 1) for n in shape.required_members}
        optional = {}
        if depth < _MAX_DEPTH:
            optional = {
                n: wire_values(m, depth + 1)
                for n, m in shape.members.items()
                if n not in required and not m.serialization.get("location")
            }
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "list":
        lo = meta.get("min", 0)
        hi = lo if depth >= _MAX_DEPTH else min(meta.get("max", lo + 3), lo + 3)
        return st.lists(wire_values(shape.member, depth + 1), min_size=lo, max_size=hi)
    if kind == "map":
        lo = 0  # the model's min on maps is not AWS's rule: {} is accepted
        hi = min(meta.get("max", 3), 3)
        keys = st.text(string.ascii_letters + ":-_", min_size=1, max_size=20)
        if shape.key.metadata.get("enum"):
            keys = st.sampled_from(shape.key.metadata["enum"])
        return st.dictionaries(keys, wire_values(shape.value, depth + 1), min_size=lo, max_size=hi)
    if kind == "string":
        return _text(shape)
    if kind in _BOUNDS:
        lo, hi = _BOUNDS[kind]
        return st.integers(meta.get("min", lo), meta.get("max", hi))
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"no strategy for {shape.name} ({kind})")


def operation_shapes() -> list[tuple[str, Shape]]:
    """Every input and output shape of the AWS Batch model, named for test ids."""
    model = batch_model()
    shapes = []
    for name in model.operation_names:
        op = model.operation_model(name)
        for shape in (op.input_shape, op.output_shape):
            if shape is not None:
                shapes.append((f"{name}.{shape.name}", shape))
    return shapes
