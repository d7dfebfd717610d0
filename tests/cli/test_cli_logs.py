"""batchyard logs: whole output, attempts, array children, and --follow while the job runs."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

from cli_helpers import client_env
from helpers import all_log_events, setup_queue, wait_job

from batchyard.providers.logframe import MAX_EVENT_BYTES


def test_follow_prints_lines_while_the_job_still_runs(cli, cli_server, unique, tmp_path):
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)
    go = tmp_path / "go"
    script = f"echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second; echo third"
    job_id = cli("submit", "-q", queue, "--vcpus", "0.5", "--", "sh", "-c", script).lines[0]
    follower = subprocess.Popen(
        [sys.executable, "-m", "batchyard", "logs", "--follow", job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=client_env(cli_server.endpoint),
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "first\n"
        # the line arrived while the job is still running (it waits for the file)
        assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNING"
        assert follower.poll() is None, "--follow keeps going while the job runs"
        go.touch()
        rest, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert rest == "second\nthird\n"
    assert err.splitlines()[-1] == f"── SUCCEEDED {job_id} (exit code 0) ──"
    assert wait_job(batch, job_id)["status"] == "SUCCEEDED"


def test_follow_waits_for_the_start_and_follows_retries(cli, cli_server, unique, tmp_path):
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)
    go = tmp_path / "go"
    blocker = cli(
        "submit",
        "-q",
        queue,
        "--vcpus",
        "2",
        "--",
        "sh",
        "-c",
        f"while [ ! -e {go} ]; do sleep 0.05; done",
    ).lines[0]
    wait_job(batch, blocker, until={"RUNNING"})
    script = 'echo "attempt $AWS_BATCH_JOB_ATTEMPT"; [ "$AWS_BATCH_JOB_ATTEMPT" = 2 ]'
    job_id = cli(
        "submit", "-q", queue, "--vcpus", "2", "--retries", "1", "--", "sh", "-c", script
    ).lines[0]
    follower = subprocess.Popen(
        [sys.executable, "-m", "batchyard", "logs", "--follow", job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=client_env(cli_server.endpoint),
    )
    assert follower.stderr is not None
    assert follower.stderr.readline().startswith(f"waiting for {job_id} to start (it is RUNNABLE)")
    go.touch()
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert out == "attempt 1\nattempt 2\n"
    assert "── attempt 2 ──" in err
    assert err.splitlines()[-1] == f"── SUCCEEDED {job_id} (exit code 0, after 2 attempts) ──"
    assert cli("logs", job_id, "--attempt", "1").stdout == "attempt 1\n"
    assert cli("logs", job_id).stdout == "attempt 2\n"
    stamped = cli("logs", job_id, "--timestamps").stdout
    assert stamped.startswith(time.strftime("%Y-")) and stamped.endswith("  attempt 2\n")
    r = cli("logs", job_id, "--attempt", "3")
    assert r.code == 1 and "there is no attempt 3" in r.stderr, r


def test_array_children_and_errors(cli, cli_server, unique):
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)
    parent = cli(
        "submit",
        "-q",
        queue,
        "--array-size",
        "2",
        "--vcpus",
        "0.25",
        "--wait",
        "--",
        "sh",
        "-c",
        "echo I am $AWS_BATCH_JOB_ARRAY_INDEX",
    ).lines[0]
    assert cli("logs", f"{parent}:1").stdout == "I am 1\n"
    r = cli("logs", parent)
    assert r.code == 2 and f"batchyard logs {parent}:0" in r.stderr, r
    r = cli("logs", "no-such-job")
    assert r.code == 1 and "does not exist" in r.stderr, r
    stuck = cli("submit", "-q", queue, "--vcpus", "64", "--", "true").lines[0]
    r = cli("logs", stuck)
    assert r.code == 1 and "has not run yet" in r.stderr and "--follow" in r.stderr, r
    cli("cancel", stuck)


def test_follow_of_a_failed_job_says_how_it_ended_and_exits_1(cli, cli_server, unique):
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)
    job_id = cli("submit", "-q", queue, "--vcpus", "0.25", "--", "sh", "-c", "echo bye; exit 4")
    job_id = job_id.lines[0]
    r = cli("logs", "--follow", job_id)
    assert r.code == 1, r
    assert r.stdout == "bye\n", r
    closing = r.stderr.splitlines()[-1]
    assert closing.startswith(f"── FAILED {job_id} (exit code 4, ") and closing.endswith(" ──"), r
    assert wait_job(batch, job_id)["statusReason"] in closing

    # following the attempt itself says the same of the attempt
    r = cli("logs", "--follow", job_id, "--attempt", "1")
    assert r.code == 1 and r.stdout == "bye\n", r

    # a job that ended without running: its reason, exit 1
    stuck = cli("submit", "-q", queue, "--vcpus", "64", "--", "true").lines[0]
    cli("cancel", stuck, "--reason", "not today")
    r = cli("logs", "--follow", stuck)
    assert r.code == 1, r
    assert r.stderr.splitlines()[-1] == f"── FAILED {stuck} without running: not today ──", r


# A job's one line of 3,100,093 bytes (no newline inside), written in 100,003-byte pieces: the
# size that once lost 344 KB of output. The content is a hash chain, so a lost, doubled or
# misplaced piece changes the digest.
LONG_LINE = """
import hashlib, os, sys
n = int(sys.argv[1])
data = b"".join(hashlib.sha256(b"%d" % i).hexdigest().encode() for i in range(n // 64 + 1))
data = data[:n] + b"\\n"
for i in range(0, len(data), 100_003):
    os.write(1, data[i : i + 100_003])
os.write(1, b"the end\\n")
"""


def test_a_multi_megabyte_line_reaches_the_log_whole(cli, cli_server, unique):
    size = 3_100_093
    line = b"".join(hashlib.sha256(b"%d" % i).hexdigest().encode() for i in range(size // 64 + 1))
    line = line[:size]
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)
    job_id = cli(
        "submit", "-q", queue, "--vcpus", "0.5", "--", sys.executable, "-c", LONG_LINE, str(size)
    ).lines[0]
    job = wait_job(batch, job_id)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    # GetLogEvents, page by page: the line as consecutive events of at most an event's size
    stream = job["attempts"][0]["container"]["logStreamName"]
    messages = [e["message"] for e in all_log_events(cli_server, stream)]
    assert messages[-1] == "the end"
    pieces = [m.encode() for m in messages[:-1]]
    assert [len(p) for p in pieces] == [MAX_EVENT_BYTES] * 11 + [size - 11 * MAX_EVENT_BYTES]
    whole = b"".join(pieces)
    assert len(whole) == size
    assert hashlib.sha256(whole).hexdigest() == hashlib.sha256(line).hexdigest()
    # batchyard logs prints each event as a line: the same bytes, in the same order
    out = cli("logs", job_id)
    assert out.code == 0, out
    printed = out.stdout.splitlines()
    assert printed[-1] == "the end"
    assert (
        hashlib.sha256("".join(printed[:-1]).encode()).hexdigest()
        == hashlib.sha256(line).hexdigest()
    )
