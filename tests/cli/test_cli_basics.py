"""The command line as a whole: help, exit codes, where it finds the server."""

from __future__ import annotations

import subprocess
import sys

from cli_helpers import client_env
from helpers import setup_queue

COMMANDS = [
    "server",
    "quickstart",
    "status",
    "apply",
    "diff",
    "delete",
    "submit",
    "jobs",
    "describe",
    "cancel",
    "terminate",
    "logs",
    "watch",
    "explain",
    "version",
]


def test_every_command_has_help_and_the_exit_codes_are_documented():
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "batchyard", *([name] if name else []), "--help"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=client_env(None),
        )
        for name in ["", *COMMANDS]
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (name, err)
        assert "Usage:" in out, name
    top = subprocess.run(
        [sys.executable, "-m", "batchyard", "--help"],
        capture_output=True,
        text=True,
        env=client_env(None),
    ).stdout
    for phrase in (
        "Exit codes",
        "0 success",
        "1 the operation failed",
        "2 bad usage",
        "3 the server could not be reached",
    ):
        assert phrase in " ".join(top.split()), phrase
    for name in COMMANDS:
        assert name in top


def test_listing_commands_take_output_json(cli):
    for command in ("jobs", "status"):
        assert "--output" in cli(command, "--help").stdout


def test_unreachable_server_exits_3(cli):
    env = client_env("http://127.0.0.1:9")
    for args in (["status"], ["jobs"], ["submit", "-q", "q", "--", "true"], ["explain", "x"]):
        r = cli(*args, env=env)
        assert r.code == 3, r
        assert "cannot reach the batchyard server at http://127.0.0.1:9" in r.stderr, r
        assert "Traceback" not in r.stderr


def test_usage_errors_are_one_error_line_exit_2_and_submit_nothing(cli, unique):
    """docs/cli.md: errors are one line on stderr starting with ``error:``; for a bad command
    line it names the command whose --help tells the usage. (Exit 2, not the 1 of a refused
    SubmitJob to the queue that does not exist: nothing was sent.)"""
    queue = unique("q")
    cases = [
        (["jobs", "--no-such-option"], "No such option: --no-such-option", "jobs"),
        (["jobs", "--nam", "x"], "--name", "jobs"),
        (["logs"], "Missing argument 'JOB'", "logs"),
        (["cancel"], "Missing argument 'JOB...'", "cancel"),
        (["watch", "--interval", "abc"], "Invalid value for '--interval'", "watch"),
        (["no-such-command"], "No such command 'no-such-command'", ""),
        (["server", "stop", "--bogus"], "No such option: --bogus", "server stop"),
        (["submit", "-q", queue, "--param", "novalue", "--", "true"], "'novalue' is not KEY=VALUE", "submit"),
        (["submit", "-q", queue, "--env", "=x", "--", "true"], "--env", "submit"),
        (["submit", "-q", queue, "--depends-on", "abc:BOGUS", "--", "true"], "N_TO_N or SEQUENTIAL", "submit"),
        (["submit", "-q", queue], "give a command after --", "submit"),
        (["submit", "-q", queue, "--vcpus", "0", "--", "true"], "not above 0", "submit"),
        (["submit", "-q", queue, "--array-size", "1", "--", "true"], "--array-size", "submit"),
        (["jobs", "--status", "DONE"], "'DONE' is not one of", "jobs"),
        (["logs", "x", "--attempt", "0"], "--attempt", "logs"),
    ]  # fmt: skip
    for args, message, command in cases:
        r = cli(*args)
        assert r.code == 2, r
        assert r.stdout == "", r
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("error: "), r
        assert message in r.stderr, r
        assert f"(see {' '.join(['batchyard', command]).strip()} --help)" in r.stderr, r


def test_request_refused_exits_1_with_the_servers_message(cli, cli_server, unique):
    r = cli("submit", "-q", "no-such-queue-anywhere", "--", "true")
    assert r.code == 1, r
    assert "no-such-queue-anywhere" in r.stderr and "does not exist" in r.stderr
    # a typo gets the names it may have meant
    queue = setup_queue(cli_server.client("batch"), unique)
    typo = queue[:1] + queue[2] + queue[1] + queue[3:]
    r = cli("submit", "-q", typo, "--", "true")
    assert r.code == 1, r
    assert f"job queue '{typo}' does not exist; did you mean '{queue}'" in r.stderr, r
    r = cli("jobs", "--queue", queue.upper())
    assert r.code == 1 and f"did you mean '{queue}'" in r.stderr, r


def test_endpoint_found_through_the_data_dir(cli, cli_server):
    """Without --endpoint or BATCHYARD_ENDPOINT the CLI finds the server of the data dir."""
    env = client_env(None, BATCHYARD_DATA_DIR=str(cli_server.data_dir))
    r = cli("status", "--output", "json", env=env)
    assert r.code == 0, r
    import json

    assert json.loads(r.stdout)["endpoint"] == cli_server.endpoint
    r = cli("version", env=env)
    assert r.code == 0 and r.stdout.strip()
