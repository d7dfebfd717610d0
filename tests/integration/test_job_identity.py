"""Who a job ran as, where a person looks: a root server's jobs run as unprivileged uids in
group batchyard-jobs (docs/security.md, Jobs). Its start-up line says so; a job that fails
writing into a directory only root may write (as ``mktemp -d`` makes one) is described and
explained with the uid and group it ran as and the command that grants access, which then
works. Through the real ``batchyard`` CLI and batchyard's explain endpoint."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest
from helpers import register, setup_queue, wait_job

from support.identity import needs_isolation


def cli(server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    env.update(BATCHYARD_ENDPOINT=server.endpoint, COLUMNS="200")
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "batchyard", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def failed_explained(server, unique, command: str) -> dict:
    """Run ``sh -c command``, which fails; its explain document."""
    batch = server.client()
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", command])
    job_id = batch.submit_job(jobName="fails", jobQueue=queue, jobDefinition=jd)["jobId"]
    assert wait_job(batch, job_id)["status"] == "FAILED"
    return json.loads(cli(server, "explain", job_id, "--output", "json").stdout)


def flat(text: str) -> str:
    return " ".join(text.translate({ord(c): " " for c in "│╭╮╰╯"}).split())


@pytest.fixture
def private_dir() -> Iterator[str]:
    """A directory as ``mktemp -d`` makes it for root: 0700, root's own."""
    path = tempfile.mkdtemp(prefix="batchyard-private-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@needs_isolation
def test_a_job_refused_a_permission_says_who_it_ran_as_and_the_fix(new_server, unique, private_dir):
    server = new_server(run_as=None)  # a root server's default: per-attempt uids
    log = server.log_path.read_text()
    assert "jobs run as unprivileged uids of their own (2000000000 + n, no home), in group " in log
    assert "group batchyard-jobs, not as root: they cannot read root's home" in log
    assert "chgrp batchyard-jobs DIR && chmod g+rwX DIR" in log and "docs/security.md" in log

    batch = server.client()
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", f"echo result > {private_dir}/out.txt"])
    job_id = batch.submit_job(jobName="writes", jobQueue=queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "FAILED" and job["attempts"][0]["container"]["exitCode"] == 2

    doc = json.loads(cli(server, "explain", job_id, "--output", "json").stdout)
    ran_as = doc["attempts"][0]["ranAs"]
    uid = ran_as["uid"]
    assert uid >= 2_000_000_000 and ran_as["group"] == "batchyard-jobs"
    assert ran_as["gid"] == pwd.getpwnam("batchyard-jobs").pw_gid and not ran_as.get("user")
    who = f"uid {uid}, group batchyard-jobs"
    assert doc["ranAs"] == who
    hint = doc["permission"]
    assert hint["attempt"] == 1 and hint["path"] == private_dir
    assert "Permission denied" in hint["line"] and f"{private_dir}/out.txt" in hint["line"]
    fix = f"chgrp batchyard-jobs {private_dir} && chmod g+rwX {private_dir}"
    assert fix in hint["fix"] and 'run_as = "NAME"' in hint["fix"]

    for command in ("describe", "explain"):
        done = cli(server, command, job_id)
        assert done.returncode == 0, done.stderr
        out = flat(done.stdout)
        assert f"ran as {who}" in out, out
        assert f"attempt 1 ran as {who} and failed on a permission" in out, out
        assert fix in out and "docs/security.md" in out

    # the fix works: the same job, after granting the group access, succeeds
    subprocess.run(["sh", "-c", fix], check=True)
    again = batch.submit_job(jobName="writes", jobQueue=queue, jobDefinition=jd)["jobId"]
    assert wait_job(batch, again)["status"] == "SUCCEEDED"
    with open(f"{private_dir}/out.txt") as f:
        assert f.read() == "result\n"
    ok = json.loads(cli(server, "explain", again, "--output", "json").stdout)
    assert ok["permission"] is None and ok["ranAs"].endswith("group batchyard-jobs")


@needs_isolation
def test_a_job_of_a_named_user_is_shown_with_its_name(new_server, unique):
    nobody = pwd.getpwnam("nobody")
    server = new_server(run_as="nobody")
    assert f"jobs run as user nobody (uid {nobody.pw_uid})" in server.log_path.read_text()
    doc = failed_explained(server, unique, "exit 3")
    group = doc["attempts"][0]["ranAs"]["group"]
    assert doc["ranAs"] == f"user nobody (uid {nobody.pw_uid}), group {group}"


def test_a_server_whose_jobs_run_as_itself_says_nothing_of_it(server, unique):
    """The suite's servers run jobs as their own user: no such start-up line, and a job's
    failure is not blamed on its identity."""
    assert " listening on " in server.log_path.read_text()
    assert "jobs run as unprivileged" not in server.log_path.read_text()
    doc = failed_explained(server, unique, "echo 'x: Permission denied' >&2; exit 1")
    me = doc["attempts"][0]["ranAs"]
    assert me["uid"] == os.geteuid() and me["user"] == pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:  # root is never refused for who it is
        assert doc["permission"] is None
