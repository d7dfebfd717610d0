"""The README's lines, run as a new user would paste them: in a fresh shell, with no AWS
configuration at all."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import make_ce

README = Path(__file__).parents[2] / "README.md"
DEFAULT_ENDPOINT = "http://127.0.0.1:8130"


def fresh_shell_env(home: Path) -> dict[str, str]:
    """What a new user's shell has: a PATH and an empty home; no AWS_* setting, no config
    or credentials file."""
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}


def readme_line(pattern: str) -> str:
    """The one line of the README matching ``pattern``, exactly as written there."""
    found = [line for line in README.read_text().splitlines() if re.search(pattern, line)]
    assert len(found) == 1, f"README lines matching {pattern!r}: {found}"
    return found[0]


def test_the_readme_aws_cli_line_works_as_pasted_into_a_fresh_shell(cli_server, unique, tmp_path):
    if shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed: pip install -e '.[test]'")
    ce = unique("readme-ce")
    make_ce(cli_server.client("batch"), ce)
    line = readme_line(r"aws batch describe-compute-environments --endpoint-url ")
    assert DEFAULT_ENDPOINT in line
    env = fresh_shell_env(tmp_path / "home")

    def paste(command: str) -> subprocess.CompletedProcess[str]:
        command = command.replace(DEFAULT_ENDPOINT, cli_server.endpoint)
        return subprocess.run(
            ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=60
        )

    # the shell is as fresh as it says: the bare AWS CLI command fails in it
    bare = paste(line[line.index("aws batch") :])
    assert bare.returncode != 0, bare
    assert "region" in bare.stderr or "credentials" in bare.stderr, bare.stderr

    done = paste(line)
    assert done.returncode == 0, done.stderr
    names = [c["computeEnvironmentName"] for c in json.loads(done.stdout)["computeEnvironments"]]
    assert ce in names
