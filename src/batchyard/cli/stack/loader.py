"""Reading a stack file: YAML with the line and column of every value kept, then the JSON
Schema, so each problem is reported at its place in the file (``stack.yaml:12:7: ...``).

Nothing here talks to a server: a file that fails here never changes anything.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from batchyard.cli.stack.schema import KINDS, load_schema

Path_ = tuple[str | int, ...]
MAX_ERRORS = 20


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the file, where it is."""

    line: int  # 1-based; 0 when unknown
    column: int
    path: str  # jobQueues[0].priority
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}:{self.column}" if self.line else source
        return f"{where}: {self.path + ': ' if self.path else ''}{self.message}"


class StackError(Exception):
    """The stack file cannot be applied; ``problems`` says what is wrong and where."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        shown = [p.render(self.source) for p in self.problems[:MAX_ERRORS]]
        more = len(self.problems) - MAX_ERRORS
        if more > 0:
            shown.append(f"... and {more} more")
        return "\n".join(shown)


@dataclass(slots=True)
class Stack:
    """A parsed, schema-valid stack: the items of each kind, and where each value was."""

    source: str
    data: dict[str, list[dict[str, Any]]]
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def items(self, kind: str) -> list[dict[str, Any]]:
        return self.data.get(kind) or []

    def where(self, path: Path_) -> tuple[int, int]:
        """The (line, column) of the value at ``path``, or of its nearest ancestor."""
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (0, 0))

    def problem(self, path: Path_, message: str) -> Problem:
        line, col = self.where(path)
        return Problem(line, col, dotted(path), message)


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Reader:
    """Turns composed YAML nodes into plain values, recording each value's position."""

    def __init__(self) -> None:
        self.loader = yaml.SafeLoader("")
        self.marks: dict[Path_, tuple[int, int]] = {}
        self.problems: list[Problem] = []

    def value(self, node: yaml.Node, path: Path_) -> Any:
        self.marks[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # merge keys (<<: *anchor)
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    line, col = _mark(key_node)
                    self.problems.append(
                        Problem(line, col, dotted(path), f"key {key!r} is not a string")
                    )
                    key = str(key)
                if key in out:
                    line, col = _mark(key_node)
                    self.problems.append(
                        Problem(line, col, dotted(path), f"{key!r} is given twice")
                    )
                out[key] = self.value(value_node, (*path, key))
                self.marks[(*path, key, "<key>")] = _mark(key_node)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(n, (*path, i)) for i, n in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


def parse(text: str, source: str) -> tuple[Any, dict[Path_, tuple[int, int]]]:
    """YAML text -> (value, marks); a syntax error is a :class:`StackError` with its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = " ".join(x for x in (e.context, e.problem) if x) or str(e)
        raise StackError(source, [Problem(line, col, "", f"not valid YAML: {what}")]) from None
    except yaml.YAMLError as e:
        raise StackError(source, [Problem(0, 0, "", f"not valid YAML: {e}")]) from None
    if node is None:
        return {}, {}
    reader = _Reader()
    try:
        value = reader.value(node, ())
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise StackError(source, [Problem(line, col, "", f"not valid YAML: {e.problem}")]) from None
    if reader.problems:
        raise StackError(source, reader.problems)
    return value, reader.marks


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value:g})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


_EXPECTED = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
}


def _schema_problem(stack: Stack, err: Any) -> Problem:
    path: Path_ = tuple(err.absolute_path)
    kind = err.validator
    if kind == "additionalProperties":
        allowed = sorted((err.schema.get("properties") or {}).keys())
        extra = [k for k in err.instance if k not in allowed]
        key = extra[0] if extra else ""
        hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        line, col = stack.where((*path, key, "<key>")) if key else stack.where(path)
        message = f"unknown field {key!r}" + (
            f" (did you mean {hint[0]!r}?)" if hint else f"; allowed: {', '.join(allowed)}"
        )
        return Problem(line, col, dotted(path), message)
    if kind == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return stack.problem(path, f"missing required field {missing!r}")
    if kind == "type":
        expected = err.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        want = " or ".join(_EXPECTED.get(n, n) for n in names)
        quote = ""
        if "string" in names and isinstance(err.instance, int | float | bool):
            shown = str(err.instance).lower() if isinstance(err.instance, bool) else err.instance
            quote = f'; quote it: "{shown}"'
        return stack.problem(path, f"expected {want}, got {_type_name(err.instance)}{quote}")
    if kind == "enum":
        choices = ", ".join(str(c) for c in err.validator_value)
        options = [str(c) for c in err.validator_value]
        same = [c for c in options if c.lower() == str(err.instance).lower()]
        hint = same or difflib.get_close_matches(str(err.instance), options, 1)
        did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
        return stack.problem(path, f"{err.instance!r} is not one of {choices}{did_you_mean}")
    if kind == "pattern" and path and path[-1] in {n for _, n in KINDS.values()}:
        return stack.problem(
            path, f"{err.instance!r} is not a valid name: use 1 to 128 letters, digits, - and _"
        )
    return stack.problem(path, err.message)


def validate(value: Any, marks: dict[Path_, tuple[int, int]], source: str) -> Stack:
    """Check a parsed file against the published schema; a :class:`Stack` if it passes."""
    import jsonschema

    if not isinstance(value, dict):
        line, col = marks.get((), (0, 0))
        raise StackError(
            source,
            [
                Problem(
                    line,
                    col,
                    "",
                    f"a stack is a mapping with the keys {', '.join(KINDS)}; got "
                    f"{_type_name(value)}",
                )
            ],
        )
    stack = Stack(source, value, marks)
    validator = jsonschema.Draft202012Validator(load_schema())
    problems: list[Problem] = []
    for err in _flatten(validator.iter_errors(value)):
        p = _schema_problem(stack, err)
        if p not in problems:
            problems.append(p)
    if problems:
        raise StackError(source, sorted(problems, key=lambda p: (p.line, p.column)))
    for kind in KINDS:
        if stack.data.get(kind) is None:
            stack.data[kind] = []
    return stack


def _flatten(errors: Any) -> Any:
    """allOf wraps our name patterns: report the underlying errors, not the wrapper."""
    for err in errors:
        if err.validator in ("allOf", "anyOf", "oneOf") and err.context:
            yield from _flatten(err.context)
        else:
            yield err


def load(path: Path | str) -> Stack:
    """Read and validate a stack file (``-`` is standard input)."""
    import sys

    if str(path) == "-":
        text, source = sys.stdin.read(), "<stdin>"
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StackError(source, [Problem(0, 0, "", "no such file")]) from None
        except (OSError, UnicodeDecodeError) as e:
            raise StackError(source, [Problem(0, 0, "", f"cannot read it: {e}")]) from None
    value, marks = parse(text, source)
    return validate(value if value is not None else {}, marks, source)


def from_data(data: dict[str, Any], source: str = "<built-in stack>") -> Stack:
    """A stack built in code (the quickstart's), checked like a file."""
    return validate(data, {}, source)
