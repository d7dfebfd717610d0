"""A lean client for batchyard's AWS Batch REST-JSON API: one keep-alive ``http.client``
connection, no signing (the server accepts unsigned requests on loopback), no botocore.

The benchmark uses it where the client's own cost would blur the server's figures: boto3
spends about a millisecond of CPU per call building, signing and parsing, which on a
2-core machine is taken from the server being measured. Setup uses boto3 (realistic and
validated); the timed loops use this.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


class ApiError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class Wire:
    def __init__(self, endpoint: str, timeout: float = 120.0) -> None:
        u = urlsplit(endpoint)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.timeout = timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def close(self) -> None:
        self.conn.close()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # a keep-alive connection the server closed: reconnect once
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt:
                    raise
        if resp.status >= 300:
            raise ApiError(resp.status, payload)
        return json.loads(payload) if payload else None

    # ---- the few operations the timed loops need --------------------------------------

    def submit(
        self,
        name: str,
        queue: str,
        definition: str,
        array_size: int | None = None,
        **extra: Any,
    ) -> str:
        body: dict[str, Any] = {"jobName": name, "jobQueue": queue, "jobDefinition": definition}
        if array_size is not None:
            body["arrayProperties"] = {"size": array_size}
        body.update(extra)
        return self.request("POST", "/v1/submitjob", body)["jobId"]

    def describe(self, job_ids: list[str]) -> list[dict[str, Any]]:
        return self.request("POST", "/v1/describejobs", {"jobs": job_ids})["jobs"]

    def status(self, job_id: str) -> str:
        return self.describe([job_id])[0]["status"]

    def list_jobs(self, **params: Any) -> dict[str, Any]:
        return self.request("POST", "/v1/listjobs", params)

    def history(self, job_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/batchyard/v1/jobs/{job_id}/history")["transitions"]

    def update_ce(self, name: str, **params: Any) -> None:
        self.request("POST", "/v1/updatecomputeenvironment", {"computeEnvironment": name, **params})


def transition_at(history: list[dict[str, Any]], to: str) -> int | None:
    """Epoch ms of the first transition into ``to`` in a job's history (None if absent)."""
    for h in history:
        if h["to"] == to:
            return h["at"]
    return None
