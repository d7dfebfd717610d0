"""submit, jobs, describe, cancel, terminate: through the real executable."""

from __future__ import annotations

import json
import shlex
import sys

from helpers import make_ce, make_queue, setup_queue, wait_for, wait_job


def test_submit_wait_exit_codes(cli, cli_server, unique):
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)

    ok = cli(
        "submit",
        "-q",
        queue,
        "--wait",
        "--vcpus",
        "0.5",
        "--memory",
        "64",
        "--",
        "sh",
        "-c",
        "echo done",
    )
    assert ok.code == 0, ok
    job_id = ok.lines[0]
    # stdout is the id alone; the job's output, the progress and how it ended go to stderr
    assert ok.stdout == f"{job_id}\n", ok
    assert "done" in ok.stderr.splitlines(), ok
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["status"] == "SUCCEEDED"
    assert f"SUCCEEDED {job_id}" in ok.stderr

    bad = cli(
        "submit",
        "-q",
        queue,
        "--wait",
        "--retries",
        "1",
        "--vcpus",
        "0.5",
        "--",
        "sh",
        "-c",
        'echo "attempt $AWS_BATCH_JOB_ATTEMPT"; exit 4',
    )
    assert bad.code == 1, bad
    job = batch.describe_jobs(jobs=[bad.lines[0]])["jobs"][0]
    assert job["status"] == "FAILED" and len(job["attempts"]) == 2
    assert job["retryStrategy"] == {"attempts": 2, "evaluateOnExit": []}
    # the output of the last attempt, and how it ended
    assert len(bad.lines) == 1, bad
    said = bad.stderr.splitlines()
    assert "attempt 2" in said and "attempt 1" not in said, bad
    assert f"batchyard logs {job['jobId']} --attempt 1" in bad.stderr
    assert (
        f"FAILED {job['jobId']} (exit code 4, " in bad.stderr and "after 2 attempts" in bad.stderr
    )
    assert f"batchyard explain {job['jobId']}" in bad.stderr
    assert f"batchyard logs {job['jobId']}" in bad.stderr

    # the same inline command reuses its job definition; another one gets its own
    again = cli("submit", "-q", queue, "--", "sh", "-c", "echo done")
    other = cli("submit", "-q", queue, "--", "sh", "-c", "echo other")
    # without --wait, too, stdout is the id alone: job=$(batchyard submit ...)
    assert again.stdout == again.lines[0] + "\n" and again.stderr == "", again
    a, b, c = (
        batch.describe_jobs(jobs=[r.lines[0]])["jobs"][0]["jobDefinition"]
        for r in (ok, again, other)
    )
    assert a == b and a != c
    assert a.split("/")[-1].startswith("batchyard-inline-")


def test_readme_first_example_prints_the_id_and_the_output(cli, cli_server, unique):
    """README: ``batchyard submit --queue quickstart --wait -- python3 -c 'print("hello")'``."""
    queue = setup_queue(cli_server.client("batch"), unique)
    r = cli("submit", "--queue", queue, "--wait", "--", "python3", "-c", 'print("hello")')
    assert r.code == 0, r
    assert len(r.lines) == 1 and len(r.lines[0]) == 36, r
    said = r.stderr.splitlines()
    assert said.index("hello") < len(said) - 1 and said[-1].startswith(f"SUCCEEDED {r.lines[0]}")


def test_submit_wait_on_a_terminal_shows_the_output(cli_server, unique, tmux, tmp_path):
    """What a person typing the README's first example sees: the id, the progress, the
    job's output, how it ended."""
    queue = setup_queue(cli_server.client("batch"), unique)
    done = tmp_path / "done"
    command = (
        f"BATCHYARD_ENDPOINT={cli_server.endpoint} {shlex.quote(sys.executable)} -m batchyard "
        f"submit --queue {queue} --wait -- python3 -c 'print(\"hello\")'; touch {done}; sleep 60"
    )
    tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", "submit", command)
    wait_for(done.exists, timeout=60, what="submit --wait to end")
    lines = [line for line in tmux("capture-pane", "-p", "-t", "submit").splitlines() if line]
    job_id = lines[0]
    assert len(job_id) == 36, lines
    assert "SUCCEEDED" in lines[1], lines  # the progress bar, finished
    assert lines[2:] == ["hello", lines[-1]] and lines[-1].startswith(f"SUCCEEDED {job_id}"), lines


def test_submit_options_reach_the_job(cli, cli_server, unique, tmp_path):
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)
    r = cli(
        "submit",
        "-q",
        queue,
        "--name",
        "opts",
        "--param",
        "word=hello",
        "--env",
        "GREETING=hi there",
        "--vcpus",
        "0.25",
        "--memory",
        "32",
        "--timeout",
        "30",
        "--tag",
        "team=cli",
        "--wait",
        "--",
        "sh",
        "-c",
        'echo "$GREETING" Ref::word',
    )
    assert r.code == 0, r
    job = batch.describe_jobs(jobs=[r.lines[0]])["jobs"][0]
    assert job["jobName"] == "opts"
    assert job["parameters"] == {"word": "hello"}
    assert {"name": "GREETING", "value": "hi there"} in job["container"]["environment"]
    reqs = {x["type"]: x["value"] for x in job["container"]["resourceRequirements"]}
    assert reqs == {"VCPU": "0.25", "MEMORY": "32"}
    assert job["timeout"] == {"attemptDurationSeconds": 30}
    assert job["tags"] == {"team": "cli"}
    logs = cli("logs", job["jobId"])
    assert logs.code == 0 and logs.stdout == "hi there hello\n", logs


def test_arrays_dependencies_and_listing(cli, cli_server, unique):
    batch = cli_server.client("batch")
    queue = setup_queue(batch, unique)
    first = cli(
        "submit",
        "-q",
        queue,
        "--name",
        "first",
        "--array-size",
        "3",
        "--vcpus",
        "0.25",
        "--wait",
        "--",
        "sh",
        "-c",
        "echo child $AWS_BATCH_JOB_ARRAY_INDEX",
    )
    assert first.code == 0, first
    parent = first.lines[0]
    # an array prints no output of its own children, only its id
    assert first.lines == [parent], first
    assert f"SUCCEEDED {parent} (all 3 children" in first.stderr
    second = cli(
        "submit",
        "-q",
        queue,
        "--name",
        "second",
        "--array-size",
        "3",
        "--vcpus",
        "0.25",
        "--depends-on",
        f"{parent}:N_TO_N",
        "--",
        "true",
    )
    assert second.code == 0, second
    last = cli(
        "submit",
        "-q",
        queue,
        "--name",
        "last",
        "--depends-on",
        second.lines[0],
        "--depends-on",
        f"{parent}:1",
        "--vcpus",
        "0.25",
        "--",
        "true",
    )
    assert last.code == 0, last
    job = wait_job(batch, last.lines[0])
    assert job["status"] == "SUCCEEDED"
    assert job["dependsOn"] == [{"jobId": second.lines[0]}, {"jobId": f"{parent}:1"}]
    array = batch.describe_jobs(jobs=[second.lines[0]])["jobs"][0]
    assert array["dependsOn"] == [{"jobId": parent, "type": "N_TO_N"}]

    table = cli("jobs", "--queue", queue)
    assert table.code == 0, table
    rows = [line for line in table.lines if parent in line]
    assert len(rows) == 1 and "3/3 done" in rows[0] and "SUCCEEDED" in rows[0], table
    assert table.lines[0].split()[:5] == [
        "JOB",
        "ID",
        "NAME",
        "STATUS",
        "ARRAY",
    ]  # one queue: no QUEUE column
    listed = json.loads(cli("jobs", "--queue", queue, "-o", "json").stdout)
    assert [j["jobName"] for j in listed] == ["last", "second", "first"]
    assert listed[2]["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3
    children = cli("jobs", "--array", parent)
    assert [line.split()[0] for line in children.lines[1:]] == [f"{parent}:{i}" for i in range(3)]
    only = cli("jobs", "--queue", queue, "--status", "succeeded", "--name", "fir*", "-o", "json")
    assert [j["jobName"] for j in json.loads(only.stdout)] == ["first"]

    described = cli("describe", parent, f"{parent}:1")
    assert described.code == 0, described
    assert "3 children: 3/3 done" in described.stdout and "array index  1" in described.stdout
    as_json = json.loads(cli("describe", parent, "-o", "json").stdout)
    assert as_json[0]["jobId"] == parent
    missing = cli("describe", "no-such-job")
    assert missing.code == 1 and "no such job" in missing.stderr


def test_cancel_and_terminate(cli, cli_server, unique):
    batch = cli_server.client("batch")
    ce, queue = unique("ce"), unique("q")
    make_ce(batch, ce, max_vcpus=1)
    make_queue(batch, queue, [ce])
    running = cli("submit", "-q", queue, "--vcpus", "1", "--", "sleep", "600").lines[0]
    waiting = cli("submit", "-q", queue, "--vcpus", "1", "--", "sleep", "600").lines[0]
    wait_job(batch, running, until={"RUNNING"})

    r = cli("cancel", running)
    assert r.code == 1, r
    assert "use `batchyard terminate" in r.stderr
    r = cli("cancel", waiting, "--reason", "not needed")
    assert r.code == 0 and "cancelled" in r.stdout, r
    job = batch.describe_jobs(jobs=[waiting])["jobs"][0]
    assert job["status"] == "FAILED" and job["statusReason"] == "not needed" and job["isCancelled"]

    r = cli("terminate", running, "--wait")
    assert r.code == 0, r
    job = batch.describe_jobs(jobs=[running])["jobs"][0]
    assert job["status"] == "FAILED" and job["isTerminated"]
    r = cli("terminate", running, "no-such-job")
    assert r.code == 1, r
    assert "already FAILED" in r.stdout and "no-such-job: no such job" in r.stderr
    # the API answers success for an unknown id, as AWS does; the CLI still says so
    r = cli("cancel", "no-such-job")
    assert r.code == 1 and "no-such-job: no such job" in r.stderr, r
