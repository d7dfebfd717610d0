"""Helpers of the CLI tests (a module of its own: ``conftest`` is not importable by name
when several test directories have one)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Result:
    args: list[str]
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def __str__(self) -> str:
        return (
            f"batchyard {' '.join(self.args)} -> exit {self.code}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


def client_env(endpoint: str | None, **extra: str) -> dict[str, str]:
    """The environment the CLI runs with: the server's address, wide plain output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    if endpoint:
        env["BATCHYARD_ENDPOINT"] = endpoint
    env["COLUMNS"] = "200"
    env.pop("FORCE_COLOR", None)
    env.update(extra)
    return env
