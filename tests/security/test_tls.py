"""HTTPS with a self-signed certificate (made here, as docs/security.md shows), and the
clients configured to trust it: the AWS CLI's --ca-bundle, boto3's verify=, and AWS_CA_BUNDLE
for the batchyard CLI."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import SSLError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from secure_helpers import run_cli


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    return cert_path, key_path


@pytest.fixture
def tls(store, new_secure, tmp_path, monkeypatch):
    if store != "sqlite":
        pytest.skip("TLS is the same whatever the store: tested once")
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # for the test harness's own health checks
    return new_secure(tls_cert=str(cert), tls_key=str(key)), cert


def test_https_with_the_aws_cli_and_a_ca_bundle(tls, tmp_path):
    secure, cert = tls
    assert secure.endpoint.startswith("https://")
    env = {
        **os.environ,
        **secure.admin.env,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
    }
    env.pop("SSL_CERT_FILE", None)
    env.pop("AWS_CA_BUNDLE", None)
    cmd = ["aws", "batch", "describe-job-queues", "--endpoint-url", secure.endpoint]
    done = subprocess.run(
        [*cmd, "--ca-bundle", str(cert)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"jobQueues": []}
    untrusted = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert untrusted.returncode != 0
    assert "SSL" in untrusted.stderr or "certificate" in untrusted.stderr


def test_https_with_boto3_verify(tls, monkeypatch):
    secure, cert = tls
    monkeypatch.delenv("SSL_CERT_FILE")
    assert secure.client(verify=str(cert)).describe_job_queues()["jobQueues"] == []
    with pytest.raises(SSLError):
        secure.client().describe_job_queues()


def test_https_with_the_batchyard_cli(tls, monkeypatch):
    secure, cert = tls
    monkeypatch.delenv("SSL_CERT_FILE")
    env = {**secure.admin.env, "BATCHYARD_ENDPOINT": secure.endpoint}
    for args in (("status", "--output", "json"), ("jobs", "--output", "json")):
        untrusted = run_cli(*args, env=env)
        assert untrusted.returncode != 0
        done = run_cli(*args, env={**env, "AWS_CA_BUNDLE": str(cert)})
        assert done.returncode == 0, done.stderr
