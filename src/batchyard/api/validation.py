"""Request validation against the model's input shapes: exactly as strict as AWS, no stricter.

The model states more than AWS enforces (AWS accepts ``tags: {}`` although the map's ``min``
is 1), so a constraint is checked only where AWS is known to refuse it or, where AWS's rule is
unknown, where botocore's own client-side validator (botocore/validate.py) refuses it:
required members, types, ``min`` on strings, lists and numbers. On top of that: enum values
(the API reference's "Valid Values"; a value the server does not know has no meaning to
give), AWS's tag restrictions (the only ``max`` lengths AWS documents as enforced), numeric
ranges (the 32/64-bit widths AWS's deserializer has, and ``max`` where the model's prose states
it), and no U+0000 (PostgreSQL cannot store it). Members the shape does not have, as a newer
SDK sends, are dropped and logged, as AWS ignores them. docs/api-compatibility.md lists the
rules and their sources; each failure names the field, what was sent and what is accepted.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from typing import Any

from botocore.model import Shape

from batchyard.errors import InvalidRequest

log = logging.getLogger("batchyard.api")

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_MAX_REPORTED = 10
# Enums AWS documents as case-insensitive ("The values aren't case sensitive").
_CASE_INSENSITIVE = frozenset({"RetryAction"})
# AWS's tag restrictions (Batch User Guide, "Tag restrictions"): at most 50 tags, keys of 1 to
# 128 characters, values of up to 256. No other ``max`` of the model is known to be enforced,
# and botocore's client checks none.
_MAX_ENFORCED = frozenset({"TagrisTagsMap", "TagKey", "TagValue"})


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."


class _Validator:
    def __init__(self, every_limit: bool) -> None:
        self.every_limit = every_limit
        self.errors: list[str] = []
        self.ignored: list[str] = []  # paths of the unknown members dropped

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path or 'request'}: {message}")

    def check(self, value: Any, shape: Shape, path: str) -> None:
        t = shape.type_name
        check = getattr(self, f"_check_{t}", None)
        if check is None:  # document, blob...: accept any JSON value
            return
        check(value, shape, path)

    def _check_structure(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {_kind(value)}")
            return
        members = shape.members
        for name in shape.required_members:
            if value.get(name) is None:
                self.fail(_join(path, name), "required parameter is missing")
        for name, v in list(value.items()):
            member = members.get(name)
            if member is None:
                # AWS ignores a member it does not know (a newer SDK's); so does batchyard
                del value[name]
                self.ignored.append(_join(path, name))
            elif v is not None:
                self.check(v, member, _join(path, name))

    def _check_list(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {_kind(value)}")
            return
        self._size(len(value), shape, path, "items")
        for i, item in enumerate(value):
            if item is None:
                self.fail(f"{path}[{i}]", "null is not allowed in a list")
            else:
                self.check(item, shape.member, f"{path}[{i}]")
            if len(self.errors) >= _MAX_REPORTED:
                return

    def _check_map(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, f"expected an object of key-value pairs, got {_kind(value)}")
            return
        # no ``min``: AWS accepts an empty map (``tags: {}``), and so does botocore's client
        self._size(len(value), shape, path, "entries", lower=False)
        for k, v in value.items():
            self.check(k, shape.key, f"{path} key {_show(k)}")
            if v is None:
                self.fail(f"{path}.{k}", "null is not allowed as a value")
            else:
                self.check(v, shape.value, f"{path}.{k}")

    def _check_string(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {_kind(value)} {_show(value)}")
            return
        if "\x00" in value:
            # PostgreSQL cannot store U+0000 in text or JSON, and no AWS value needs it.
            self.fail(path, "contains a NUL character (\\u0000), which is not allowed")
            return
        enum = shape.metadata.get("enum")
        if shape.name in _CASE_INSENSITIVE:
            value = value.upper()
        if enum and value not in enum:
            self.fail(path, f"invalid value {_show(value)}; valid values are: {', '.join(enum)}")
            return
        self._size(len(value), shape, path, "characters")

    def _check_integer(self, value: Any, shape: Shape, path: str) -> None:
        self._whole(value, shape, path, _INT32)

    def _check_long(self, value: Any, shape: Shape, path: str) -> None:
        self._whole(value, shape, path, _INT64)

    def _whole(self, value: Any, shape: Shape, path: str, bounds: tuple[int, int]) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {_kind(value)} {_show(value)}")
            return
        lo = shape.metadata.get("min", bounds[0])
        hi = shape.metadata.get("max", bounds[1])
        if not lo <= value <= hi:
            self.fail(path, f"{value} is out of range; it must be between {lo} and {hi}")

    def _check_float(self, value: Any, shape: Shape, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"expected a number, got {_kind(value)} {_show(value)}")

    _check_double = _check_float

    def _check_boolean(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {_kind(value)} {_show(value)}")

    def _size(self, size: int, shape: Shape, path: str, unit: str, lower: bool = True) -> None:
        lo = shape.metadata.get("min") if lower or self.every_limit else None
        hi = shape.metadata.get("max") if self.every_limit or shape.name in _MAX_ENFORCED else None
        if lo is not None and size < lo:
            self.fail(path, f"has {size} {unit}; at least {lo} required")
        if hi is not None and size > hi:
            self.fail(path, f"has {size} {unit}; at most {hi} allowed")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_INDEX = re.compile(r"\[\d+\]")
_LOGGED_MAX = 1024


class _Once:
    """Remembers the most recent ``_LOGGED_MAX`` keys, so each distinct unknown member is
    logged once without a busy client flooding the log or growing memory without bound."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def known(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._seen

    def first(self, key: tuple[str, str]) -> bool:
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = None
            if len(self._seen) > _LOGGED_MAX:
                self._seen.popitem(last=False)
            return True


_once = _Once()


def _warn_ignored(operation: str, paths: list[str]) -> None:
    """One warning per new (operation, member), at most ``_MAX_REPORTED`` a request; the
    rest are counted, and named by a later request that sends them."""
    new: list[str] = []
    more = 0
    for raw in dict.fromkeys(_INDEX.sub("[]", p) for p in paths):
        path = raw.encode("unicode_escape").decode("ascii")
        path = path if len(path) <= 200 else path[:197] + "..."
        if len(new) >= _MAX_REPORTED:
            more += not _once.known((operation, path))
        elif _once.first((operation, path)):
            new.append(path)
    for path in new:
        log.warning(
            "%s: ignored the member %s, which this server's model of the operation does not "
            "have (AWS ignores unknown members too; a newer SDK may send it). Logged once per "
            "operation and member.",
            operation,
            path,
        )
    if more:
        log.warning(
            "%s: ignored %d more unknown members in one request (not logged one by one)",
            operation,
            more,
        )


def validate(params: Any, shape: Shape | None, operation: str, every_limit: bool = False) -> None:
    """Raise :class:`InvalidRequest` listing every way ``params`` breaks ``shape``.

    ``every_limit`` enforces every ``min`` and ``max`` the model states, for a service that
    validates its own model (CloudWatch Logs answers "1 validation error detected" for them);
    AWS Batch does not, so by default only the limits it is known to apply are checked.
    Members ``shape`` does not have are removed from ``params`` (in place) and logged.
    """
    if shape is None:
        return
    v = _Validator(every_limit)
    v.check(params, shape, "")
    if v.ignored:
        _warn_ignored(operation, v.ignored)
    if v.errors:
        shown = v.errors[:_MAX_REPORTED]
        more = len(v.errors) - len(shown)
        tail = f" (and {more} more)" if more > 0 else ""
        raise InvalidRequest(f"Invalid {operation} request: " + "; ".join(shown) + tail)
