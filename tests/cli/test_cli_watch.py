"""batchyard watch in a real terminal: tmux runs it, capture-pane reads the screen."""

from __future__ import annotations

import shlex
import sys
import time

from cli_helpers import client_env
from helpers import setup_queue, wait_for, wait_job


def test_watch_shows_queues_running_jobs_arrays_and_failures(
    cli, cli_server, unique, tmux, tmp_path
):
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)
    go = tmp_path / "go"
    hold = f"while [ ! -e {go} ]; do sleep 0.05; done"
    failed = cli(
        "submit", "-q", queue, "--name", "broken", "--vcpus", "0.25", "--", "sh", "-c", "exit 9"
    ).lines[0]
    wait_job(batch, failed)
    single = cli(
        "submit", "-q", queue, "--name", "lonely", "--vcpus", "0.5", "--", "sh", "-c", hold
    ).lines[0]
    array = cli(
        "submit",
        "-q",
        queue,
        "--name",
        "fanout",
        "--array-size",
        "4",
        "--vcpus",
        "0.5",
        "--",
        "sh",
        "-c",
        f'[ "$AWS_BATCH_JOB_ARRAY_INDEX" -lt 2 ] || {{ {hold}; }}',
    ).lines[0]
    wait_for(
        lambda: (
            batch.describe_jobs(jobs=[array])["jobs"][0]["arrayProperties"]["statusSummary"].get(
                "SUCCEEDED"
            )
            == 2
        ),
        what="two children done",
    )
    command = (
        f"env -u COLUMNS -u LINES BATCHYARD_ENDPOINT={cli_server.endpoint} "
        f"{shlex.quote(sys.executable)} -m batchyard watch {queue} --interval 0.5"
    )
    tmux("new-session", "-d", "-x", "160", "-y", "48", "-s", "watch", command)

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "watch")

    text = wait_for(
        lambda: (s := screen()) and "recent failures" in s and s,
        timeout=30,
        what="the watch screen",
    )
    assert f"batchyard watch  {cli_server.endpoint}  queue {queue}" in text
    assert "╭─ queues" in text and queue in text
    assert "RUNNABLE" in text and "RUNNING" in text
    assert "vCPUs IN USE" in text and "1.5 / 2" in text  # lonely 0.5 + two children 0.5 each
    assert "running (3)" in text
    assert single in text and f"{array}:2" in text and f"{array}:3" in text
    assert "array jobs" in text and "2/4 done (2 running)" in text
    assert failed in text and "broken" in text and "Essential container in task exited" in text

    # at 80x24 (tmux's default) the frame fits: ids and statuses whole, every panel shown
    tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", "narrow", command)
    narrow = wait_for(
        lambda: (s := tmux("capture-pane", "-p", "-t", "narrow")) and "recent failures" in s and s,
        timeout=30,
        what="the narrow watch screen",
    )
    lines = narrow.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), narrow
    assert lines[0].startswith(f"batchyard watch  {cli_server.endpoint}  queue {queue}"), narrow
    for job in (single, f"{array}:2", f"{array}:3"):
        row = next(line for line in lines if f" {job} " in line)
        assert " RUNNING " in row, narrow
    assert any(f" {array} " in line and "2/4 done (2 running)" in line for line in lines), narrow
    assert any(f" {failed} " in line and " 9 " in line for line in lines), narrow
    assert any(" ENABLED " in line and " VALID " in line for line in lines), narrow
    assert "…  " not in narrow.replace("… │", ""), "only a row's last column may be cut"
    assert [line for line in lines if line.strip()][-1].startswith("╰"), narrow
    tmux("kill-session", "-t", "narrow")

    # it is live: finishing the jobs shows up without restarting it
    go.touch()
    wait_for(lambda: "nothing is running" in screen(), timeout=30, what="the screen to update")
    assert "array jobs" not in screen()

    # q quits, and the terminal is given back
    tmux("send-keys", "-t", "watch", "q")
    deadline = time.monotonic() + 15
    while "watch" in tmux("list-sessions", "-F", "#{session_name}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "watch" not in tmux("list-sessions", "-F", "#{session_name}"), "q did not quit"


def test_watch_once_prints_one_frame(cli, cli_server, unique):
    queue = setup_queue(cli_server.client("batch"), unique)
    r = cli("watch", queue, "--once")
    assert r.code == 0, r
    assert "queues" in r.stdout and queue in r.stdout and "nothing is running" in r.stdout
    # at 80 columns the tables fit, with the names and statuses whole
    narrow = client_env(cli_server.endpoint, COLUMNS="80")
    for args in (["watch", queue, "--once"], ["status"]):
        r = cli(*args, env=narrow)
        assert r.code == 0, r
        assert all(len(line) <= 80 for line in r.lines), r
        row = next(line for line in r.lines if line.strip("│ ").startswith(queue + " "))
        assert " ENABLED " in row and "…" not in row, r
        assert any(" ENABLED " in line and " VALID " in line for line in r.lines if "ce-" in line)
    r = cli("watch", "no-such-queue", "--once")
    assert r.code == 1 and "does not exist" in r.stderr, r
