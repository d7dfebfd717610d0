"""IAM-style policies: parse a policy document, and decide a request against a set of them.

A pure module (no I/O), evaluated the way AWS IAM evaluates identity-based policies:

1. a statement *applies* to a request when its Action (or NotAction) matches the action, its
   Resource (or NotResource) matches the resource, and every Condition holds;
2. if any applying statement says ``Deny``, the request is denied (**explicit deny always
   wins**, whatever allows it elsewhere);
3. otherwise it is allowed only if some applying statement says ``Allow``;
4. otherwise it is denied (**default deny**).

A request may name several resources (SubmitJob names a job queue and a job definition):
every one of them must be allowed, and an explicit deny on any of them denies the request.
A resource may be known by several names (:class:`Resource` ``aliases``): a job is also
named by its job queue's ARN, so ``"Resource": "arn:aws:batch:*:*:job-queue/team-a-*"``
covers the jobs in those queues. A pattern matches the resource when it matches any name.

Wildcards: ``*`` (any characters, ``/`` and ``:`` included) and ``?`` (one), in actions
(case-insensitive) and resources (case-sensitive). Policy variables (``${aws:username}``,
``${*}``, ``${?}``, ``${$}``) are substituted in Resource and in condition values when the
policy's Version is ``2012-10-17``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from batchyard.errors import InvalidRequest

VERSIONS = ("2012-10-17", "2008-10-17")
MAX_POLICY_BYTES = 64 * 1024
ALLOW, DENY = "Allow", "Deny"
EXPLICIT_DENY, IMPLICIT_DENY, ALLOWED = "explicitDeny", "implicitDeny", "allowed"

_STRING_OPS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
}
_NUMERIC_OPS = {
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
}
_DATE_OPS = {
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
}
_ARN_OPS = {"ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"}
_OTHER_OPS = {"Bool", "IpAddress", "NotIpAddress", "Null"}
OPERATORS = _STRING_OPS | _NUMERIC_OPS | _DATE_OPS | _ARN_OPS | _OTHER_OPS
# the negated operators, and the positive operator each is the negation of
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NotIpAddress": "IpAddress",
}
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class PolicyError(InvalidRequest):
    """A policy document is malformed; the message names the policy and the element."""


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str  # e.g. StringLike (without qualifier or IfExists)
    key: str  # lower case
    values: tuple[str, ...]
    qualifier: str | None = None  # ForAnyValue / ForAllValues
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class Statement:
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] | None = None
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None
    policy: str = ""
    index: int = 0
    variables: bool = True  # Version 2012-10-17: ${...} substituted

    def describe(self) -> str:
        sid = f" {self.sid!r}" if self.sid else ""
        return f"policy {self.policy!r}, statement {self.index}{sid}"


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    statements: tuple[Statement, ...]
    version: str = "2012-10-17"
    document: str = ""  # the JSON text as given


@dataclass(frozen=True, slots=True)
class Resource:
    arn: str
    aliases: tuple[str, ...] = ()  # other names of the same resource (a job: its queue)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.arn, *self.aliases)


ANY = Resource("*")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    kind: str  # allowed, explicitDeny or implicitDeny
    action: str
    resource: str  # the resource that was denied (or the first one, when allowed)
    statements: tuple[Statement, ...] = field(default=())  # the deny, or the allows used

    def explain(self, principal: str) -> str:
        """AWS's AccessDeniedException sentence, with the statement that decided it."""
        if self.allowed:
            used = "; ".join(s.describe() for s in self.statements)
            return f"{principal} may perform {self.action} on {self.resource} ({used})"
        head = (
            f"User: {principal} is not authorized to perform: {self.action} on resource: "
            f"{self.resource}"
        )
        if self.kind == EXPLICIT_DENY:
            return (
                f"{head} with an explicit deny in an identity-based policy "
                f"({self.statements[0].describe()})"
            )
        return f"{head} because no identity-based policy allows the {self.action} action"


# ---- parsing ------------------------------------------------------------------------------


def parse_policy(document: str | Mapping[str, Any], name: str) -> Policy:
    """Read and check a policy document; :class:`PolicyError` names what is wrong."""
    text = document if isinstance(document, str) else json.dumps(document)
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise PolicyError(f"policy {name!r} is larger than {MAX_POLICY_BYTES} bytes")
    if isinstance(document, str):
        try:
            doc = json.loads(document)
        except ValueError as e:
            raise PolicyError(f"policy {name!r} is not valid JSON: {e}") from None
    else:
        doc = dict(document)
    if not isinstance(doc, dict):
        raise PolicyError(f"policy {name!r} must be a JSON object with a Statement")
    unknown = set(doc) - {"Version", "Statement", "Id"}
    if unknown:
        raise PolicyError(
            f"policy {name!r} has unknown element(s) {', '.join(sorted(unknown))}; a policy "
            "has Version, Id and Statement"
        )
    version = doc.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise PolicyError(f"policy {name!r}: Version must be one of {', '.join(VERSIONS)}")
    raw = doc.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f"policy {name!r} needs a Statement: an object or a non-empty list")
    statements = tuple(
        _statement(s, name, i, version == "2012-10-17") for i, s in enumerate(raw, start=1)
    )
    return Policy(name, statements, version, text)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyError(f"{where} must be a string or a non-empty list of strings")


def _statement(raw: Any, policy: str, index: int, variables: bool) -> Statement:
    where = f"policy {policy!r}, Statement {index}"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be an object")
    unknown = set(raw) - {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
    if unknown & {"Principal", "NotPrincipal"}:
        raise PolicyError(
            f"{where}: Principal has no place here; these are identity-based policies, "
            "attached to the users, groups and access keys they apply to"
        )
    if unknown:
        raise PolicyError(f"{where} has unknown element(s) {', '.join(sorted(unknown))}")
    effect = raw.get("Effect")
    if effect not in (ALLOW, DENY):
        raise PolicyError(f"{where}: Effect must be Allow or Deny")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError(f"{where} needs exactly one of Action and NotAction")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise PolicyError(f"{where} needs exactly one of Resource and NotResource")
    key = "Action" if "Action" in raw else "NotAction"
    actions = _strings(raw[key], f"{where}: {key}")
    for a in actions:
        if a != "*" and not re.fullmatch(r"[A-Za-z0-9-]+:[A-Za-z0-9*?]+", a):
            raise PolicyError(
                f"{where}: {key} {a!r} is not an action; write service:Name, e.g. "
                "batch:SubmitJob, batch:Describe* or *"
            )
    rkey = "Resource" if "Resource" in raw else "NotResource"
    resources = _strings(raw[rkey], f"{where}: {rkey}")
    for r in resources:
        if r != "*" and not r.startswith("arn:"):
            raise PolicyError(
                f"{where}: {rkey} {r!r} is not an ARN pattern; write * or arn:aws:batch:"
                "<region>:<account>:<type>/<name> (wildcards allowed)"
            )
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{where}: Sid must be a string")
    return Statement(
        effect=effect,
        actions=actions if key == "Action" else (),
        not_actions=actions if key == "NotAction" else None,
        resources=resources if rkey == "Resource" else (),
        not_resources=resources if rkey == "NotResource" else None,
        conditions=_conditions(raw.get("Condition"), where),
        sid=sid,
        policy=policy,
        index=index,
        variables=variables,
    )


def _conditions(raw: Any, where: str) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: Condition must be an object of operator -> {{key: values}}")
    out = []
    for op_text, block in raw.items():
        qualifier = None
        op = op_text
        if ":" in op:
            qualifier, op = op.split(":", 1)
            if qualifier not in ("ForAnyValue", "ForAllValues"):
                raise PolicyError(
                    f"{where}: condition qualifier {qualifier!r} must be ForAnyValue or "
                    "ForAllValues"
                )
        if_exists = op.endswith("IfExists") and op != "IfExists"
        base = op[: -len("IfExists")] if if_exists else op
        if base not in OPERATORS or (if_exists and base == "Null"):
            raise PolicyError(
                f"{where}: {op_text!r} is not a condition operator batchyard knows "
                f"({', '.join(sorted(OPERATORS))}, with IfExists or ForAnyValue:/ForAllValues:)"
            )
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"{where}: Condition {op_text} must map condition keys to values")
        for key, values in block.items():
            if isinstance(values, str | bool | int | float):
                values = [values]
            if not isinstance(values, list) or not values:
                raise PolicyError(f"{where}: Condition {op_text} {key}: values must be a list")
            texts = tuple(_text(v) for v in values)
            _check_values(base, texts, f"{where}: Condition {op_text} {key}")
            out.append(Condition(base, key.lower(), texts, qualifier, if_exists))
    return tuple(out)


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str | int | float):
        return str(v)
    raise PolicyError(f"condition value {v!r} must be a string, number or boolean")


def _check_values(op: str, values: tuple[str, ...], where: str) -> None:
    for v in values:
        try:
            if op in _NUMERIC_OPS:
                float(v)
            elif op in _DATE_OPS:
                _date(v)
            elif op in ("IpAddress", "NotIpAddress"):
                ipaddress.ip_network(v, strict=False)
            elif op in ("Bool", "Null") and v.lower() not in ("true", "false"):
                raise ValueError
        except ValueError:
            raise PolicyError(f"{where}: {v!r} is not a valid value for {op}") from None


def _date(v: str) -> float:
    if re.fullmatch(r"-?\d+(\.\d+)?", v):
        return float(v)
    text = v.replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


# ---- matching -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.S | (re.I if ignore_case else 0))


def glob_match(pattern: str, text: str, ignore_case: bool = False) -> bool:
    if pattern == "*":
        return True
    return _glob(pattern, ignore_case).fullmatch(text) is not None


def _substitute(pattern: str, context: Mapping[str, Any]) -> str | None:
    """Policy variables replaced from the context; None when one cannot be resolved (the
    element then matches nothing, as in IAM)."""
    if "${" not in pattern:
        return pattern
    missing = False

    def repl(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(1).strip()
        if name in ("*", "?", "$"):
            return "\x00" + name  # literal, protected from glob
        value = context.get(name.lower())
        if value is None or isinstance(value, list):
            missing = True
            return ""
        return _text(value)

    out = _VARIABLE.sub(repl, pattern)
    return None if missing else out


def _literal_glob(pattern: str, text: str) -> bool:
    """Glob match where ``\\x00*`` / ``\\x00?`` / ``\\x00$`` stand for literal characters."""
    if "\x00" not in pattern:
        return glob_match(pattern, text)
    rx = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\x00":
            rx.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        rx.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(rx), text, re.S) is not None


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(glob_match(p, action, ignore_case=True) for p in patterns)


def _resource_matches(
    patterns: Iterable[str], resource: Resource, context: Mapping[str, Any], variables: bool
) -> bool:
    for p in patterns:
        if p == "*":
            return True
        pattern = _substitute(p, context) if variables else p
        if pattern is None:
            continue
        if any(_literal_glob(pattern, name) for name in resource.names):
            return True
    return False


def statement_applies(
    st: Statement, action: str, resource: Resource, context: Mapping[str, Any]
) -> bool:
    if st.not_actions is not None:
        if _action_matches(st.not_actions, action):
            return False
    elif not _action_matches(st.actions, action):
        return False
    if st.not_resources is not None:
        if _resource_matches(st.not_resources, resource, context, st.variables):
            return False
    elif not _resource_matches(st.resources, resource, context, st.variables):
        return False
    return all(condition_holds(c, context, st.variables) for c in st.conditions)


# ---- conditions ---------------------------------------------------------------------------


def condition_holds(c: Condition, context: Mapping[str, Any], variables: bool = True) -> bool:
    present = c.key in context and context[c.key] is not None
    if c.operator == "Null":
        want_absent = c.values[0].lower() == "true"
        value = context.get(c.key)
        absent = not present or value == [] or value == ""
        return absent == want_absent
    negated = c.operator in _NEGATED
    positive = _NEGATED.get(c.operator, c.operator)
    if not present:
        if c.if_exists:
            return True
        if c.qualifier == "ForAllValues":
            return True
        if c.qualifier == "ForAnyValue":
            return False
        return negated
    raw = context[c.key]
    values = [_text(v) for v in raw] if isinstance(raw, list) else [_text(raw)]
    expected = []
    for x in c.values:
        v = _substitute(x, context) if variables else x
        if v is not None:  # a variable that cannot be resolved matches nothing
            expected.append(v)

    def one(v: str) -> bool:
        hit = any(_compare(positive, v, e) for e in expected)
        return not hit if negated else hit

    if c.qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if c.qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    if negated:  # no value may match
        return not any(_compare(positive, v, e) for v in values for e in expected)
    return any(one(v) for v in values)


def _compare(op: str, actual: str, expected: str) -> bool:
    try:
        if op in ("StringLike", "ArnLike", "ArnEquals"):  # IAM: both Arn operators glob
            return _literal_glob(expected, actual)
        expected = expected.replace("\x00", "")  # ${*} and friends: plain characters here
        if op == "StringEquals":
            return actual == expected
        if op in ("StringEqualsIgnoreCase", "Bool"):
            return actual.lower() == expected.lower()
        if op in _NUMERIC_OPS:
            return _ordered(op[len("Numeric") :], float(actual), float(expected))
        if op in _DATE_OPS:
            return _ordered(op[len("Date") :], _date(actual), _date(expected))
        if op == "IpAddress":
            return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False
    return False


def _ordered(kind: str, a: float, b: float) -> bool:
    return {
        "Equals": a == b,
        "LessThan": a < b,
        "LessThanEquals": a <= b,
        "GreaterThan": a > b,
        "GreaterThanEquals": a >= b,
    }[kind]


# ---- the decision -------------------------------------------------------------------------


def evaluate(
    policies: Sequence[Policy],
    action: str,
    resources: Sequence[Resource] = (ANY,),
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """Decide ``action`` on every one of ``resources`` (see the module's docstring)."""
    ctx = {k.lower(): v for k, v in (context or {}).items()}
    statements = [s for p in policies for s in p.statements]
    resources = list(resources) or [ANY]
    allows: list[Statement] = []
    denied: Resource | None = None
    for resource in resources:
        allow = None
        for st in statements:
            if not statement_applies(st, action, resource, ctx):
                continue
            if st.effect == DENY:
                return Decision(False, EXPLICIT_DENY, action, resource.arn, (st,))
            allow = allow or st
        if allow is None:
            denied = denied or resource
        else:
            allows.append(allow)
    if denied is not None:
        return Decision(False, IMPLICIT_DENY, action, denied.arn)
    return Decision(True, ALLOWED, action, resources[0].arn, tuple(allows))
