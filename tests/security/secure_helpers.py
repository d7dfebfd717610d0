"""What the security tests share: real clients signing with real keys (boto3, the AWS CLI,
the batchyard CLI), and the first key made the way an operator makes it
(``batchyard credentials create --local``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from support.identity import JOB_USER, ROOT, needs_isolation  # noqa: F401 - re-exported
from support.server import ServerProcess
from support.shapes import check_response

ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
# jobs as the unprivileged default a root server uses: a uid of their own per attempt
ISOLATED = {"run_as": "batchyard-jobs", "isolate_jobs": "true"} if ROOT and JOB_USER else {}
SECURE = {"auth": "required", "rate_limit": 1000, **ISOLATED}


@dataclass
class Key:
    access_key_id: str
    secret: str
    user: str

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret}


def run_cli(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "batchyard", *args],
        capture_output=True,
        text=True,
        input=input,
        env=full,
        timeout=timeout,
    )


@dataclass
class Secure:
    server: ServerProcess
    admin: Key

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def client(
        self,
        service: str = "batch",
        key: Key | None = None,
        check: bool = True,
        region: str = "us-east-1",
        **config: Any,
    ) -> Any:
        key = key or self.admin
        verify = config.pop("verify", None)
        c = boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret,
            config=Config(**{"retries": {"max_attempts": 1}, **config}),
            verify=verify,
        )
        if check:
            c.meta.events.register("after-call", check_response)
        return c

    def cli(
        self, *args: str, key: Key | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**(key or self.admin).env, "BATCHYARD_ENDPOINT": self.endpoint}
        return run_cli(*args, env=env, input=input)

    def local(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``batchyard <args> --local`` on the server's data dir (the administrator's way)."""
        env = {}
        if self.server.database_url:
            env["BATCHYARD_DATABASE_URL"] = self.server.database_url
        return run_cli(*args, "--local", "--data-dir", str(self.server.data_dir), env=env)

    def key(
        self, user: str, policy: dict[str, Any] | None = None, groups: tuple[str, ...] = ()
    ) -> Key:
        """A new access key, made through the API with the administrator's key."""
        args = ["credentials", "create", "--name", user, "--output", "json"]
        if policy is not None:
            path = self.server.data_dir.parent / f"policy-{user}-{os.urandom(4).hex()}.json"
            path.write_text(json.dumps(policy))
            args += ["--policy", str(path)]
        for g in groups:
            args += ["--group", g]
        done = self.cli(*args)
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        return Key(found["accessKeyId"], found["secretAccessKey"], user)


def bootstrap(server: ServerProcess) -> Key:
    """The first key, as an operator makes it: on the server's host, from its data dir."""
    policy = server.data_dir.parent / f"admin-{os.urandom(4).hex()}.json"
    policy.write_text(json.dumps(ADMIN_POLICY))
    env = {"BATCHYARD_DATABASE_URL": server.database_url} if server.database_url else {}
    done = run_cli(
        "credentials",
        "create",
        "--local",
        "--data-dir",
        str(server.data_dir),
        "--name",
        "admin",
        "--policy",
        str(policy),
        "--output",
        "json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    return Key(found["accessKeyId"], found["secretAccessKey"], "admin")
