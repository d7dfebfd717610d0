"""The README's list of operations is true: every operation it does not name as unsupported
is served, and every one it names answers that it is not supported.

The server is asked, not its handler table: each operation of the model is sent an empty
request, which an unsupported operation answers with "not supported" before validating it,
and which no implemented operation accepts as a change (a create, update or delete needs the
members it lacks; a read with no required member just reads).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchyard.api.model import batch_model

README = Path(__file__).resolve().parents[2] / "README.md"
NOT_SUPPORTED = "is part of the AWS Batch API but batchyard does not support it yet"


def _readme_unsupported() -> set[str]:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| not supported")]
    assert len(rows) == 1, "the README's table has one row of unsupported operations"
    operations_cell = rows[0].split("|")[1]
    return set(re.findall(r"`([A-Z][A-Za-z]+)`", operations_cell))


def _answers_not_supported(server, name: str) -> bool:
    op = batch_model().operation_model(name)
    path = re.sub(r"\{[^}]+\}", "x", op.http["requestUri"].split("?", 1)[0])
    with server.http() as http:
        r = http.request(op.http["method"], path, content=b"{}")
    assert r.status_code < 500, (name, r.status_code, r.text)
    return r.status_code == 400 and NOT_SUPPORTED in r.json().get("message", "")


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_readme_names_exactly_the_unsupported_operations(server):
    named = _readme_unsupported()
    operations = set(batch_model().operation_names)
    assert named <= operations, f"the README names operations the model lacks: {named - operations}"
    answered = {name for name in sorted(operations) if _answers_not_supported(server, name)}
    assert answered == named, (
        f"implemented though the README says not: {sorted(named - answered)}; "
        f"not supported though the README implies it is: {sorted(answered - named)}"
    )
