"""``Ref::name`` parameter substitution in a job's command (AWS Batch's rule).

Each ``Ref::name`` inside a command element is replaced by the parameter's value; the job
definition's ``parameters`` are the defaults and SubmitJob's win. A placeholder with no such
parameter stays as written. The result is an argv list: nothing here goes near a shell, so a
value like ``; rm -rf /`` is one argument, never a command.
"""

from __future__ import annotations

import re

_REF = re.compile(r"Ref::([A-Za-z0-9_-]+)")


def substitute(command: list[str], parameters: dict[str, str]) -> list[str]:
    if not parameters:
        return list(command)

    def value(m: re.Match[str]) -> str:
        return parameters.get(m.group(1), m.group(0))

    return [_REF.sub(value, arg) for arg in command]
