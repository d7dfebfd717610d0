"""Every example of examples/ runs as its README says: ./run.sh against a running server.

The server here runs jobs the way a fresh installation does (as root: each job under a uid
of its own, docs/security.md), not as root like the rest of the suite's servers, so the
examples are checked the way a user meets them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import client_env

from support.server import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXPECTED = {
    "parameter-sweep": ["samples   estimate", "131,072", "closest:"],
    "etl-pipeline": ["daily revenue by region (6 shards, 29,413 orders, 587 rejected):", "total"],
    "nightly-risk-report": [
        "market data feed not ready",
        "1-day VaR 99%",
        "evaluateOnExit rule 1 matched and says RETRY",
    ],
    "render-tiles": ["stitched 8 tiles into", "@@@@"],
}


@pytest.fixture(scope="module")
def examples_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("examples-server"), None)
    saved = os.environ.pop("BATCHYARD_RUN_AS", None)  # the default, not the suite's setting
    try:
        proc.start()
    finally:
        if saved is not None:
            os.environ["BATCHYARD_RUN_AS"] = saved
    yield proc
    proc.shutdown()


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A temporary directory the jobs can reach (pytest's own are private to this user)."""
    path = Path(tempfile.mkdtemp(prefix="batchyard-examples-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name, examples_server, bin_dir, scratch):
    env = client_env(examples_server.endpoint, TMPDIR=str(scratch))
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    proc = subprocess.run(
        ["./run.sh"], cwd=EXAMPLES / name, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr + _failed_jobs(examples_server, env)
    for text in EXPECTED[name]:
        assert text in proc.stdout, (text, proc.stdout)
    again = subprocess.run(
        ["batchyard", "apply", "-f", "stack.yaml"],
        cwd=EXAMPLES / name,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0 and "no changes" in again.stdout, again.stdout + again.stderr


def _failed_jobs(server: ServerProcess, env: dict[str, str]) -> str:
    """What a failed run leaves to read: each FAILED job's `explain` and output, and the end
    of the server's log (a flake seen once left nothing to find its cause by)."""
    batch = server.client()
    out = []
    for queue in batch.describe_job_queues()["jobQueues"]:
        failed = batch.list_jobs(jobQueue=queue["jobQueueName"], jobStatus="FAILED")
        for job in failed["jobSummaryList"]:
            for cmd in (["explain", job["jobId"]], ["logs", job["jobId"]]):
                shown = subprocess.run(
                    ["batchyard", *cmd], env=env, capture_output=True, text=True, timeout=30
                )
                out.append(f"$ batchyard {' '.join(cmd)}\n{shown.stdout}{shown.stderr}")
    return "\n".join(["", *out, "server log (end):", server.log()[-4000:]])
