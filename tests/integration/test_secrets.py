"""Secret references as AWS Batch job definitions write them: a name, a Secrets Manager ARN
(full, with the 6-character suffix AWS adds, or partial; ``:json-key:version-stage:version-id``
selectors), a Systems Manager parameter's name or ARN (hierarchical ``/a/b`` too). Each is put
with ``batchyard secrets put`` and read back from a job's log; a reference that cannot resolve
fails the attempt with a reason that says why (and never shows a value)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import log_lines, register, setup_queue, wait_job

SM = "arn:aws:secretsmanager:us-east-1:000000000000:secret:"
SSM = "arn:aws:ssm:us-east-1:000000000000:parameter/"
CREDS = {"username": "app", "password": "pw-" + os.urandom(4).hex(), "port": 5432}


def secrets_cli(server, *args: str, value: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    env.update(BATCHYARD_ENDPOINT=server.endpoint, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "batchyard", "secrets", *args],
        input=value,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def put(server, name: str, value: str) -> str:
    done = secrets_cli(server, "put", name, value=value)
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_with(server, unique, secrets: dict[str, str]) -> dict:
    batch = server.client()
    queue = setup_queue(batch, unique)
    names = " ".join(secrets)
    script = f'for v in {names}; do eval "echo $v=\\${{$v}}"; done'
    refs = [{"name": k, "valueFrom": v} for k, v in secrets.items()]
    jd = register(batch, unique, ["sh", "-c", script], container={"secrets": refs})
    submitted = batch.submit_job(jobName="secrets", jobQueue=queue, jobDefinition=jd)
    return wait_job(batch, submitted["jobId"])


def test_every_aws_form_of_a_reference_reaches_the_job(server, unique):
    plain, creds, param = unique("plain"), unique("db-creds"), unique("param")
    tree = f"/{unique('team')}/db/password"
    put(server, plain, "v-plain")
    put(server, creds, json.dumps(CREDS))
    assert f"stored secret {tree} " in put(server, tree, "v-tree")  # a hierarchical name
    assert f"stored secret {param} " in put(server, f"{SSM}{param}", "v-param")  # by its ARN
    job = run_with(
        server,
        unique,
        {
            "PLAIN": plain,
            "SM_PARTIAL": f"{SM}{plain}",
            "SM_FULL": f"{SM}{plain}-AbCdEf",  # the suffix AWS adds to a secret's ARN
            "SM_OTHER_REGION": f"{SM.replace('us-east-1', 'eu-west-1')}{plain}",
            "SM_KEY": f"{SM}{creds}-Xy12Zw:password::",
            "SM_KEY_CURRENT": f"{SM}{creds}:username:AWSCURRENT:",
            "SM_KEY_NUMBER": f"{SM}{creds}:port::",
            "SM_WHOLE": f"{SM}{creds}:::",
            "SSM_NAME": tree,
            "SSM_TREE_ARN": f"{SSM}{tree[1:]}",
            "SSM_ARN": f"{SSM}{param}",
            "SSM_PLAIN": param,
        },
    )
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert log_lines(server, job) == [
        "PLAIN=v-plain",
        "SM_PARTIAL=v-plain",
        "SM_FULL=v-plain",
        "SM_OTHER_REGION=v-plain",
        f"SM_KEY={CREDS['password']}",
        "SM_KEY_CURRENT=app",
        "SM_KEY_NUMBER=5432",
        f"SM_WHOLE={json.dumps(CREDS)}",
        "SSM_NAME=v-tree",
        "SSM_TREE_ARN=v-tree",
        "SSM_ARN=v-param",
        "SSM_PLAIN=v-param",
    ]


def test_a_reference_that_cannot_resolve_fails_the_attempt_with_the_reason(server, unique):
    plain, creds = unique("plain"), unique("db-creds")
    put(server, plain, "not json")
    put(server, creds, json.dumps(CREDS))
    job = run_with(
        server,
        unique,
        {
            "PREVIOUS": f"{SM}{creds}:password:AWSPREVIOUS:",
            "VERSION": f"{SM}{creds}:::9d4cb84b-ad69-40c0-a0ab-cead3example",
            "NOT_JSON": f"{SM}{plain}:password::",
            "NO_KEY": f"{SM}{creds}:token::",
            "ACCOUNT": f"{SM.replace('000000000000', '111111111111')}{creds}",
            "LABEL": f"{SSM}{plain}:3",
            "SHORT": f"{SM}{creds}:password",
            "GONE": f"{SM}{unique('gone')}",
        },
    )
    assert job["status"] == "FAILED"
    reason = job["attempts"][-1]["container"]["reason"]
    assert job["statusReason"].startswith("ResourceInitializationError: unable to pull secrets")
    for expected in (
        "PREVIOUS: ",
        "version stage 'AWSPREVIOUS'",
        "keeps only the current version",
        "VERSION: ",
        "version id '9d4cb84b-ad69-40c0-a0ab-cead3example'",
        f"NOT_JSON: '{SM}{plain}:password::' selects JSON key 'password', but the value of "
        f"secret '{plain}' is not a JSON object",
        f"NO_KEY: the JSON value of secret '{creds}' has no key 'token' (keys are",
        "belongs to account 111111111111, but this server is account 000000000000",
        f"selects a version or label of parameter '{plain}'",
        "SHORT: ",
        "exactly :JSON-KEY:VERSION-STAGE:VERSION-ID",
        "not found in batchyard's secret store (batchyard secrets put NAME)",
    ):
        assert expected in reason, (expected, reason)
    for value in (*map(str, CREDS.values()), "not json", "'port'", "'username'"):
        assert value not in reason  # nothing of a value, not even its other keys


def test_secrets_put_takes_the_names_aws_has(server, unique):
    name = unique("p")
    assert f"stored secret /{name}/x " in put(server, f"{SSM}{name}/x", "v")
    assert f"stored secret {name} " in put(server, f"{SM}{name}", "v")
    listed = json.loads(secrets_cli(server, "list", "--output", "json").stdout)["secrets"]
    assert {f"/{name}/x", name} <= {s["name"] for s in listed}
    refused = secrets_cli(server, "put", f"{SM}{name}:password::", value="v")
    assert refused.returncode != 0 and "name the secret itself" in refused.stderr, refused.stderr
    done = secrets_cli(server, "delete", f"{SSM}{name}/x")
    assert done.returncode == 0 and f"deleted secret /{name}/x" in done.stdout, done.stderr
