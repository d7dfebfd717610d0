"""The CLI's pure parts, without a server: stack parsing and comparing, argument parsing."""

from __future__ import annotations

import pytest
import typer

from batchyard.cli.client import DEFAULT_PORT
from batchyard.cli.jobs import inline_definition, parse_depends_on, parse_pairs
from batchyard.cli.stack.loader import StackError, parse, validate
from batchyard.cli.stack.plan import diff_values, normalize
from batchyard.config import DEFAULT_PORT as SERVER_PORT


def load(text: str):
    value, marks = parse(text, "s.yaml")
    return validate(value, marks, "s.yaml")


def problems(text: str) -> list[str]:
    with pytest.raises(StackError) as e:
        load(text)
    return [p.render("s.yaml") for p in e.value.problems]


def test_values_keep_their_lines():
    stack = load("jobQueues:\n  - jobQueueName: a\n    priority: 3\n")
    assert stack.items("jobQueues") == [{"jobQueueName": "a", "priority": 3}]
    assert stack.where(("jobQueues", 0, "priority")) == (3, 15)
    assert stack.where(("jobQueues", 0)) == (2, 5)
    assert stack.items("computeEnvironments") == []


def test_problems_point_at_their_place():
    assert problems("jobQueues:\n  - jobQueueName: a\n    priority: 1\n    priority: 2\n") == [
        "s.yaml:4:5: jobQueues[0]: 'priority' is given twice"
    ]
    assert problems("jobQueue:\n  - {}\n") == [
        "s.yaml:1:1: unknown field 'jobQueue' (did you mean 'jobQueues'?)"
    ]
    assert problems("jobQueues: [{jobQueueName: a, priority: 1, state: enabled}]\n") == [
        "s.yaml:1:51: jobQueues[0].state: 'enabled' is not one of ENABLED, DISABLED (did you mean 'ENABLED'?)"
    ]
    assert problems("jobQueues: [}\n")[0].startswith("s.yaml:1:13: not valid YAML")
    assert load("").data["jobQueues"] == []


def test_comparing_ignores_what_was_not_given():
    assert normalize({"a": None, "b": [], "c": {"d": None}, "e": 0}) == {"c": {}, "e": 0}
    assert diff_values({"x": 1, "y": []}, {"x": 1}, "") == []
    [change] = diff_values({"c": {"command": ["a"]}}, {"c": {"command": ["b"]}}, "")
    assert (change.path, change.old, change.new) == ("c.command", ["a"], ["b"])


def test_argument_parsing():
    assert parse_pairs(["a=1", "b=x=y", "c="], "--param", "KEY") == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(typer.BadParameter):
        parse_pairs(["novalue"], "--param", "KEY")
    assert parse_depends_on(["j1", "j2:N_TO_N", "j3:7", "SEQUENTIAL", "j4:sequential"]) == [
        {"jobId": "j1"},
        {"jobId": "j2", "type": "N_TO_N"},
        {"jobId": "j3:7"},
        {"type": "SEQUENTIAL"},
        {"jobId": "j4", "type": "SEQUENTIAL"},
    ]
    with pytest.raises(typer.BadParameter):
        parse_depends_on(["j1:ALL"])


def test_inline_definitions_are_named_by_their_command():
    a = inline_definition(["echo", "hi"], None)
    assert a == inline_definition(["echo", "hi"], None)
    assert a["jobDefinitionName"] != inline_definition(["echo", "ho"], None)["jobDefinitionName"]
    assert a["containerProperties"] == {"command": ["echo", "hi"]}


def test_the_cli_default_port_is_the_servers():
    assert DEFAULT_PORT == SERVER_PORT
