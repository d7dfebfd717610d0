"""Jobs against the control plane and against each other: a job (run, as a root server runs
it, under a uid of its own) cannot read the database, the master key or the config, nor list
the data dir, nor read another running job's environment; its working directory is its own.
A secret reaches the job's environment and nowhere else: not DescribeJobs, ListJobs, the
logs, the events, the audit log, the server's own logs, nor the database in clear."""

from __future__ import annotations

import json
import os
import stat

import pytest
from helpers import client_error, register, setup_queue, wait_for, wait_job
from secure_helpers import needs_isolation, run_cli

pytestmark = needs_isolation


def define(batch, unique, command: list[str], **container) -> str:
    """A job definition whose container has ``container``'s extra fields (secrets...)."""
    name = unique("jd")
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "busybox",
            "command": command,
            "resourceRequirements": [
                {"type": "VCPU", "value": "0.5"},
                {"type": "MEMORY", "value": "64"},
            ],
            **container,
        },
    )
    return name


def lines(secure, job) -> list[str]:
    logs = secure.client("logs")
    stream = job["attempts"][-1]["container"]["logStreamName"]
    events = logs.get_log_events(
        logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True
    )["events"]
    return [e["message"] for e in events]


PROBE = r"""
id -u
ls -ld . | cut -c1-10
stat -c %u .
dir=$1; shift
for f in "$@"; do
  if cat "$f" >/dev/null 2>&1 || ls "$f" >/dev/null 2>&1; then echo "READ $f"; else echo "denied $(basename $f)"; fi
done
if ls "$dir" >/dev/null 2>&1; then echo "LISTED data dir"; else echo "denied listing"; fi
echo scratch > mine && echo wrote-workdir
"""


def test_a_job_cannot_read_the_control_planes_state(secure, unique):
    data = secure.server.data_dir
    (data / "config.toml").write_text('log_level = "info"\n')
    os.chmod(data / "config.toml", 0o600)
    admin = secure.client()
    queue = setup_queue(admin, unique)
    targets = [
        data / n
        for n in ("batchyard.db", "master.key", "config.toml", "server.lock", "local", "logs")
        if (data / n).exists()
    ]
    jd = register(admin, unique, ["sh", "-c", PROBE, "probe", str(data), *map(str, targets)])
    job = wait_job(
        admin, admin.submit_job(jobName="probe", jobQueue=queue, jobDefinition=jd)["jobId"]
    )
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    out = lines(secure, job)
    uid = int(out[0])
    assert uid >= 2_000_000_000, out  # not root, not the server's user: a uid of its own
    assert out[1] == "drwx------" and int(out[2]) == uid, out  # a private working directory
    assert not [x for x in out if x.startswith(("READ", "LISTED"))], out
    expected = {f"denied {t.name}" for t in targets}
    assert {"denied master.key", "denied server.lock"} <= expected
    if secure.server.store == "sqlite":
        assert "denied batchyard.db" in expected
    assert expected <= set(out), (expected - set(out), out)
    assert "denied listing" in out and "wrote-workdir" in out


def test_the_data_dir_is_private_on_disk(secure):
    data = secure.server.data_dir
    assert stat.S_IMODE(data.stat().st_mode) & 0o077 in (0, 0o011)  # at most traversable
    for name in ("master.key", "batchyard.db", "server.lock"):
        path = data / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, name
    assert stat.S_IMODE((data / "logs").stat().st_mode) & 0o077 == 0


def test_jobs_cannot_read_each_others_environment(secure, unique):
    admin = secure.client()
    queue = setup_queue(admin, unique, max_vcpus=2)
    marker = unique("marker")
    holder = define(
        admin,
        unique,
        ["sh", "-c", f": {marker}; echo up; sleep 30"],
        environment=[{"name": "PRIVATE", "value": "the-private-value"}],
    )
    snoop = register(
        admin,
        unique,
        [
            "sh",
            "-c",
            # the marker is put together at run time: it is not in this job's own cmdline
            f"""m='{marker[:4]}'; m="${{m}}{marker[4:]}"
                for p in /proc/[0-9]*; do
                  if grep -q "$m" $p/cmdline 2>/dev/null; then
                    if cat $p/environ 2>/dev/null | tr '\\0' '\\n' | grep PRIVATE; then
                      echo LEAKED; else echo denied; fi
                    kill -0 ${{p#/proc/}} 2>/dev/null && echo SIGNALLED || echo no-signal
                  fi
                done""",
        ],
    )
    held = admin.submit_job(jobName="holder", jobQueue=queue, jobDefinition=holder)["jobId"]
    wait_job(admin, held, until={"RUNNING"})
    wait_for(lambda: "up" in lines(secure, admin.describe_jobs(jobs=[held])["jobs"][0]))
    job = wait_job(
        admin, admin.submit_job(jobName="snoop", jobQueue=queue, jobDefinition=snoop)["jobId"]
    )
    out = lines(secure, job)
    admin.terminate_job(jobId=held, reason="done")
    assert "denied" in out and "no-signal" in out, out
    assert "LEAKED" not in out and "SIGNALLED" not in out


SECRET = "s3cr3t-" + os.urandom(6).hex()


def test_a_secret_reaches_the_job_and_nowhere_else(secure, unique):
    name = unique("db-password")
    done = secure.cli("secrets", "put", name, "--description", "test", input=SECRET)
    assert done.returncode == 0, done.stderr
    listed = secure.cli("secrets", "list", "--output", "json")
    assert name in listed.stdout and SECRET not in listed.stdout
    admin = secure.client()
    queue = setup_queue(admin, unique)
    jd = define(
        admin,
        unique,
        [
            "sh",
            "-c",
            f'[ "$DB_PASSWORD" = "{SECRET[:7]}$REST" ] && echo secret-ok; echo ${{#DB_PASSWORD}}',
        ],
        environment=[{"name": "REST", "value": SECRET[7:]}],
        secrets=[{"name": "DB_PASSWORD", "valueFrom": name}],
    )
    job_id = admin.submit_job(jobName="uses-secret", jobQueue=queue, jobDefinition=jd)["jobId"]
    job = wait_job(admin, job_id)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert lines(secure, job) == ["secret-ok", str(len(SECRET))]
    assert job["container"]["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": name}]

    # everything a client can read about the job, raw
    raw = [
        json.dumps(admin.describe_jobs(jobs=[job_id])),
        json.dumps(admin.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")),
        json.dumps(admin.describe_job_definitions(jobDefinitions=[jd])),
    ]
    for args in (
        ("describe", job_id, "--output", "json"),
        ("explain", job_id, "--output", "json"),
        ("audit", "--limit", "200", "--output", "json"),
        ("logs", job_id),
        ("events", "--output", "json"),
    ):
        done = secure.cli(*args)
        assert done.returncode == 0, (args, done.stderr)
        raw.append(done.stdout + done.stderr)
    assert job_id in raw[-1] or raw[-1].strip(), "the events must be there to look at"
    for text in raw:
        assert SECRET not in text
    # and what the server keeps: its logs, the agent's, the database (encrypted at rest)
    data = secure.server.data_dir
    for path in [secure.server.log_path, data / "local" / "agent.log", *data.glob("batchyard.db*")]:
        if path.exists():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_job_needs_permission_to_use_a_secret(secure, unique):
    name = unique("token")
    assert secure.cli("secrets", "put", name, input="value").returncode == 0
    admin = secure.client()
    queue = setup_queue(admin, unique)
    jd = define(admin, unique, ["true"], secrets=[{"name": "T", "valueFrom": name}])
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "batch:*", "Resource": "*"}],
    }
    key = secure.key(unique("nosecrets"), policy)
    err = client_error(
        secure.client(key=key).submit_job, jobName="x", jobQueue=queue, jobDefinition=jd
    )
    assert err["Code"] == "AccessDeniedException"
    assert (
        f"secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}"
        in err["Message"]
    )


def test_a_deleted_secret_fails_the_job_at_start(secure, unique):
    name = unique("gone")
    assert secure.cli("secrets", "put", name, input="v").returncode == 0
    admin = secure.client()
    queue = setup_queue(admin, unique)
    jd = define(admin, unique, ["true"], secrets=[{"name": "G", "valueFrom": name}])
    assert secure.cli("secrets", "delete", name).returncode == 0
    job = wait_job(admin, admin.submit_job(jobName="x", jobQueue=queue, jobDefinition=jd)["jobId"])
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith("ResourceInitializationError")
    assert name in job["attempts"][-1]["container"]["reason"]


@pytest.mark.parametrize("command", [["/root/.pyenv/shims/python3", "-c", "1"]])
def test_a_command_only_root_can_run_says_so(secure, unique, command):
    if not os.path.exists(command[0]):
        pytest.skip("no root-only interpreter on this machine")
    admin = secure.client()
    queue = setup_queue(admin, unique)
    jd = register(admin, unique, command)
    job = wait_job(admin, admin.submit_job(jobName="x", jobQueue=queue, jobDefinition=jd)["jobId"])
    assert job["status"] == "FAILED"
    assert "cannot be executed by the job's user" in job["attempts"][-1]["container"]["reason"]


def test_a_secret_name_refused_on_the_servers_host_is_one_error_line(secure):
    """``secrets put --local`` runs the server's checks in-process; their refusal is an
    ``error:`` line (exit 2), never a traceback."""
    for name in ["arn:aws:secretsmanager:us-east-1:000000000000:secret:x:password::", "a b"]:
        done = run_cli(
            "secrets",
            "put",
            name,
            "--local",
            "--data-dir",
            str(secure.server.data_dir),
            env={"BATCHYARD_DATABASE_URL": secure.server.database_url}
            if secure.server.database_url
            else {},
            input="v",
        )
        assert done.returncode == 2, done
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done.stderr
