"""The stack file's JSON Schema, derived from botocore's AWS Batch model.

Each kind of a stack is the request of the AWS call that creates it, with AWS's own field
names, so the schema is generated from those input shapes: one ``$defs`` entry per shape,
``additionalProperties: false`` everywhere (a typo is an error, not a silently ignored
field), required members, enums, lengths and ranges. The generated file ships in the package
(``stack.schema.json``) and is what ``batchyard apply --print-schema`` prints; a test checks
it still matches the model. Regenerate it with::

    python -m batchyard.cli.stack.schema > src/batchyard/cli/stack/stack.schema.json
"""

from __future__ import annotations

import functools
import html
import json
import re
from importlib import resources
from typing import Any

SCHEMA_FILE = "stack.schema.json"

# stack key -> (the AWS operation whose request an item is, the member holding its name)
KINDS: dict[str, tuple[str, str]] = {
    "schedulingPolicies": ("CreateSchedulingPolicy", "name"),
    "consumableResources": ("CreateConsumableResource", "consumableResourceName"),
    "computeEnvironments": ("CreateComputeEnvironment", "computeEnvironmentName"),
    "jobQueues": ("CreateJobQueue", "jobQueueName"),
    "jobDefinitions": ("RegisterJobDefinition", "jobDefinitionName"),
}

_DESCRIPTIONS = {
    "schedulingPolicies": "Fair-share scheduling policies (CreateSchedulingPolicy requests).",
    "consumableResources": "Consumable resources (CreateConsumableResource requests).",
    "computeEnvironments": "Compute environments (CreateComputeEnvironment requests). "
    "Without the tag batchyard:provider they run jobs on the server's host.",
    "jobQueues": "Job queues (CreateJobQueue requests); compute environments and the "
    "scheduling policy may be named by name or ARN.",
    "jobDefinitions": "Job definitions (RegisterJobDefinition requests); a changed one is "
    "registered as a new revision.",
}

_NAME = r"^[A-Za-z0-9_-]{1,128}$"  # what the server accepts
_TAG = re.compile(r"<[^>]+>")
_TYPES = {
    "integer": "integer",
    "long": "integer",
    "float": "number",
    "double": "number",
    "boolean": "boolean",
    "string": "string",
    "timestamp": "integer",
}


def _sentence(doc: str | None) -> str | None:
    """The first sentence of a botocore documentation string, as plain text."""
    if not doc:
        return None
    text = " ".join(html.unescape(_TAG.sub("", doc)).split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    first = match.group(1) if match else text
    return first if len(first) <= 300 else first[:297] + "..."


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def ref(self, shape: Any) -> dict[str, Any]:
        if shape.type_name in ("structure", "list", "map") or shape.metadata.get("enum"):
            if shape.name not in self.defs:
                self.defs[shape.name] = {}  # reserve first: shapes may refer to themselves
                self.defs[shape.name] = self.schema(shape)
            return {"$ref": f"#/$defs/{shape.name}"}
        return self.schema(shape)

    def schema(self, shape: Any) -> dict[str, Any]:
        meta = shape.metadata
        kind = shape.type_name
        if kind == "structure":
            props: dict[str, Any] = {}
            for name, member in shape.members.items():
                prop = dict(self.ref(member))
                doc = _sentence(member.documentation)
                if doc:
                    prop["description"] = doc  # 2020-12 allows siblings of $ref
                props[name] = prop
            out: dict[str, Any] = {
                "type": "object",
                "properties": props,
                "additionalProperties": False,
            }
            if shape.required_members:
                out["required"] = list(shape.required_members)
            return out
        if kind == "list":
            out = {"type": "array", "items": self.ref(shape.member)}
            if "min" in meta:
                out["minItems"] = meta["min"]
            if "max" in meta:
                out["maxItems"] = meta["max"]
            return out
        if kind == "map":
            out = {"type": "object", "additionalProperties": self.ref(shape.value)}
            if "min" in meta:
                out["minProperties"] = meta["min"]
            if "max" in meta:
                out["maxProperties"] = meta["max"]
            key = self.schema(shape.key)
            if len(key) > 1:
                out["propertyNames"] = {k: v for k, v in key.items() if k != "type"}
            return out
        out = {"type": _TYPES[kind]}
        if meta.get("enum"):
            out["enum"] = list(meta["enum"])
        if kind == "string":
            if "min" in meta:
                out["minLength"] = meta["min"]
            if "max" in meta:
                out["maxLength"] = meta["max"]
        elif "min" in meta or "max" in meta:
            if "min" in meta:
                out["minimum"] = meta["min"]
            if "max" in meta:
                out["maximum"] = meta["max"]
        return out


def build_schema() -> dict[str, Any]:
    """The stack schema, computed from botocore's model (see the module docstring)."""
    from batchyard.api.model import batch_model

    model = batch_model()
    builder = _Builder()
    props: dict[str, Any] = {}
    for key, (operation, name_field) in KINDS.items():
        shape = model.operation_model(operation).input_shape
        ref = builder.ref(shape)
        item = {"allOf": [ref, {"properties": {name_field: {"pattern": _NAME}}}]}
        props[key] = {"description": _DESCRIPTIONS[key], "type": "array", "items": item}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://batchyard.dev/schemas/stack.schema.json",
        "title": "batchyard stack",
        "description": "AWS Batch resources declared in one file, applied with "
        "`batchyard apply -f FILE`. Every item is the request of the AWS Batch call that "
        "creates it, with AWS's field names.",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
        "$defs": dict(sorted(builder.defs.items())),
    }


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@functools.cache
def load_schema() -> dict[str, Any]:
    """The schema shipped in the package."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


if __name__ == "__main__":
    import sys

    sys.stdout.write(dumps(build_schema()))
