"""Rows to domain objects: a dataclass's fields read by name from a result row."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_row(cls: type[T], row: Any, **converted: Any) -> T:
    """``cls`` built from ``row``'s columns of the same names; ``converted`` gives the values
    that need more than reading (enums, booleans SQLite stores as integers)."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return cls(**{n: getattr(row, n) for n in names if n not in converted}, **converted)
