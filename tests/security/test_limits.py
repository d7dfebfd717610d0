"""Limits against abuse: a per-principal request rate (TooManyRequestsException, 429, which
boto3's retries ride out), the request body size (413), and the unfinished jobs a queue may
hold."""

from __future__ import annotations

import time

import httpx
import pytest
from botocore.exceptions import ClientError
from helpers import client_error, register, setup_queue
from secure_helpers import ADMIN_POLICY


def test_the_throttle_answers_429_and_boto3_retries_recover(store, new_secure):
    if store != "sqlite":
        pytest.skip("the throttle lives in the server, whatever the store")
    secure = new_secure(rate_limit=1, rate_burst=2)
    key = secure.key("busy", ADMIN_POLICY)  # its own bucket (the admin's is spent here)
    eager = secure.client(key=key)
    codes = []
    for _ in range(10):
        try:
            eager.describe_job_queues()
            codes.append(200)
        except ClientError as e:
            codes.append(e.response["ResponseMetadata"]["HTTPStatusCode"])
            assert e.response["Error"]["Code"] == "TooManyRequestsException"
            assert "Rate exceeded" in e.response["Error"]["Message"]
    assert 429 in codes and codes[0] == 200
    time.sleep(1.5)
    patient = secure.client(key=key, retries={"mode": "standard", "max_attempts": 10})
    start = time.monotonic()
    for _ in range(5):  # more than the burst: only the retries get these through
        patient.describe_job_queues()
    assert time.monotonic() - start > 1.5
    # another principal has a bucket of its own
    secure.client().describe_job_queues()


def test_request_bodies_have_a_limit(new_secure, store):
    if store != "sqlite":
        pytest.skip("the body limit lives in the server, whatever the store")
    secure = new_secure(max_request_bytes=2048)
    response = httpx.post(
        secure.endpoint + "/v1/describejobs",
        content=b'{"jobs": ["' + b"a" * 4096 + b'"]}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "limit is 2048" in response.json()["message"]


def test_a_queue_holds_at_most_max_jobs_per_queue(new_secure, unique):
    secure = new_secure(max_jobs_per_queue=5)
    batch = secure.client()
    queue = setup_queue(batch, unique, max_vcpus=1)
    batch.update_compute_environment(computeEnvironment=_ce_of(batch, queue), state="DISABLED")
    jd = register(batch, unique, ["true"])
    batch.submit_job(jobName="array", jobQueue=queue, jobDefinition=jd, arrayProperties={"size": 3})
    batch.submit_job(jobName="one", jobQueue=queue, jobDefinition=jd)  # 5 with the parent
    err = client_error(batch.submit_job, jobName="six", jobQueue=queue, jobDefinition=jd)
    assert err["Code"] == "ClientException"
    assert "holds 5 unfinished jobs" in err["Message"] and "max_jobs_per_queue" in err["Message"]


def _ce_of(batch, queue: str) -> str:
    found = batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]
    return found["computeEnvironmentOrder"][0]["computeEnvironment"]
