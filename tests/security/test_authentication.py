"""Authentication against a real server that requires it: real clients with valid keys get
in; a wrong secret, a changed body, a stale timestamp, a revoked or unknown key, or no
signature at all each get AWS's error code, 403, and a message that says what to fix."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from helpers import client_error
from secure_helpers import Key, run_cli

from batchyard.auth import sigv4


def signed_request(secure, key: Key, method: str, path: str, body: bytes, headers=None):
    """A request signed by botocore, ready to send (or to tamper with first)."""
    url = secure.endpoint + path
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(key.access_key_id, key.secret), "batch", "us-east-1").add_auth(req)
    return url, dict(req.headers.items())


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["__type"], body["message"]


def test_boto3_with_a_valid_key(secure, unique):
    batch = secure.client()
    name = unique("ce")
    batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": 1, "minvCpus": 0},
    )
    found = batch.describe_compute_environments(computeEnvironments=[name])
    assert [c["computeEnvironmentName"] for c in found["computeEnvironments"]] == [name]
    assert secure.client("logs").describe_log_groups()["logGroups"]


def test_the_aws_cli_with_a_valid_key(secure, tmp_path):
    env = {
        **os.environ,
        **secure.admin.env,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    done = subprocess.run(
        ["aws", "batch", "describe-job-queues", "--endpoint-url", secure.endpoint],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "jobQueues" in json.loads(done.stdout)
    bad = subprocess.run(
        ["aws", "batch", "describe-job-queues", "--endpoint-url", secure.endpoint],
        capture_output=True,
        text=True,
        env={**env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"},
        timeout=60,
    )
    assert bad.returncode != 0
    assert "InvalidSignatureException" in bad.stderr


def test_a_wrong_secret(secure):
    wrong = Key(secure.admin.access_key_id, "not-the-secret", "admin")
    err = client_error(secure.client(key=wrong).describe_job_queues)
    assert (err["Status"], err["Code"]) == (403, "InvalidSignatureException")
    assert "Secret Access Key" in err["Message"]


def test_an_unknown_key(secure):
    err = client_error(
        secure.client(key=Key("BYAKNOSUCHKEY0000000", "x", "?")).describe_jobs, jobs=["a"]
    )
    assert (err["Status"], err["Code"]) == (403, "UnrecognizedClientException")
    assert "does not exist on this server" in err["Message"]


def test_a_tampered_body(secure):
    body = b'{"jobs": ["a"]}'
    url, headers = signed_request(
        secure, secure.admin, "POST", "/v1/describejobs", body, {"Content-Type": "application/json"}
    )
    assert httpx.post(url, content=body, headers=headers).status_code == 200
    status, code, message = error_of(httpx.post(url, content=b'{"jobs": ["b"]}', headers=headers))
    assert (status, code) == (403, "InvalidSignatureException")
    assert "must not change after it is signed" in message


def test_a_stale_timestamp(secure):
    old = datetime.now(UTC) - timedelta(minutes=20)
    amz = old.strftime(sigv4.AMZ_DATE)
    host = secure.endpoint.split("://", 1)[1]
    headers = [("host", host), ("x-amz-date", amz), ("content-type", "application/json")]
    body = b"{}"
    req = sigv4.Request(
        "POST", "/v1/describejobqueues", "", headers, hashlib.sha256(body).hexdigest()
    )
    auth = sigv4.sign(
        req, secure.admin.access_key_id, secure.admin.secret, "us-east-1", "batch", old
    )
    response = httpx.post(
        secure.endpoint + "/v1/describejobqueues",
        content=body,
        headers={"x-amz-date": amz, "content-type": "application/json", "authorization": auth},
    )
    status, code, message = error_of(response)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("Signature expired")


def test_a_revoked_key_is_refused_at_once(secure):
    key = secure.key(
        "revokee",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "batch:Describe*", "Resource": "*"}],
        },
    )
    batch = secure.client(key=key)
    batch.describe_job_queues()
    done = secure.cli("credentials", "revoke", key.access_key_id)
    assert done.returncode == 0, done.stderr
    err = client_error(batch.describe_job_queues)
    assert (err["Status"], err["Code"]) == (403, "UnrecognizedClientException")
    assert "revoked" in err["Message"]
    listed = json.loads(secure.cli("credentials", "list", "--output", "json").stdout)
    mine = [k for k in listed["accessKeys"] if k["accessKeyId"] == key.access_key_id]
    assert mine[0]["status"] == "Revoked"


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/describejobqueues", {}),
        ("POST", "/", {"X-Amz-Target": "Logs_20140328.DescribeLogGroups"}),
        ("GET", "/batchyard/v1/status", {}),
        ("GET", "/batchyard/v1/credentials", {}),
        ("GET", "/metrics", {}),
        ("GET", "/batchyard/v1/events", {}),
        ("GET", "/ui", {}),
        ("GET", "/", {}),
    ],
)
def test_unsigned_requests_get_nothing(secure, method, path, headers):
    response = httpx.request(
        method, secure.endpoint + path, headers={"content-type": "application/json", **headers}
    )
    status, code, message = error_of(response)
    assert (status, code) == (403, "MissingAuthenticationTokenException")
    assert "batchyard credentials create" in message


def test_what_stays_open(secure):
    assert httpx.get(secure.endpoint + "/healthz").status_code == 200
    login = httpx.get(secure.endpoint + "/ui/login")
    assert login.status_code == 200 and "Access key id" in login.text
    page = httpx.get(secure.endpoint + "/ui/jobs", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")


def test_the_batchyard_cli_signs_its_own_calls(secure):
    done = secure.cli("status", "--output", "json")
    assert done.returncode == 0, done.stderr
    unsigned = run_cli(
        "status",
        env={
            "BATCHYARD_ENDPOINT": secure.endpoint,
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
        },
    )
    assert unsigned.returncode == 1
    assert (
        "Missing Authentication Token" in unsigned.stderr
        or "InvalidSignature" in unsigned.stderr
        or ("UnrecognizedClient" in unsigned.stderr or "security token" in unsigned.stderr)
    )


def test_a_dashboard_session(secure):
    with httpx.Client(base_url=secure.endpoint) as web:
        bad = web.post(
            "/ui/login",
            data={"access_key_id": secure.admin.access_key_id, "secret_access_key": "no"},
        )
        assert bad.status_code == 403
        ok = web.post(
            "/ui/login",
            data={
                "access_key_id": secure.admin.access_key_id,
                "secret_access_key": secure.admin.secret,
                "next": "/batchyard/v1/whoami",
            },
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/batchyard/v1/whoami"
        cookie = ok.cookies.get("batchyard_session")
        assert cookie and "httponly" in ok.headers["set-cookie"].lower()
        me = web.get("/batchyard/v1/whoami")
        assert me.status_code == 200 and me.json()["user"] == "admin"
        # a session is for the dashboard and batchyard's endpoints, never the AWS API
        aws = web.post("/v1/describejobqueues", json={})
        assert aws.status_code == 403
        web.get("/ui/logout")
        assert web.get("/batchyard/v1/whoami").status_code == 403


def test_refuses_to_listen_beyond_loopback_without_authentication(tmp_path):
    done = run_cli("server", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path / "d"))
    assert done.returncode == 3
    assert "refusing to listen on '0.0.0.0' without authentication" in done.stderr
    assert "--auth required" in done.stderr
