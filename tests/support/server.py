"""A real batchyard server process on a free loopback port, driven by real clients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from support.shapes import check_response

# Settings that keep the suite fast: AWS's minimums (60 s timeouts, 600 s time limits) would
# make the tests that exercise them take minutes.
FAST = {
    "min_attempt_duration_seconds": 1,
    "min_time_limit_seconds": 1,
    "terminate_grace_seconds": 2,
}

CLIENT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class ServerProcess:
    """``batchyard server`` in a subprocess; ``restart()`` keeps data dir and database."""

    def __init__(self, data_dir: Path, database_url: str | None = None, **settings: Any) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.settings = settings
        self.flags: list[str] = []  # more flags of `batchyard server`
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self.log_path = data_dir / "test-server.log"

    @property
    def store(self) -> str:
        return "postgresql" if self.database_url else "sqlite"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state = self.data_dir / "server.json"
        state.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "batchyard",
            "server",
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
        ]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        cmd += self.flags
        env = {**os.environ, **{f"BATCHYARD_{k.upper()}": str(v) for k, v in self.settings.items()}}
        env.pop("BATCHYARD_CONFIG", None)
        for k, v in self.settings.items():  # None: the server's default, not the suite's
            if v is None:
                env.pop(f"BATCHYARD_{k.upper()}", None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=log, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                info = json.loads(state.read_text())
                if info["pid"] == self.proc.pid:
                    self.endpoint = info["endpoint"]
                    if httpx.get(f"{self.endpoint}/healthz", timeout=2).status_code == 200:
                        return self
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Stop the server and return its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"server ignored signal {sig}:\n{self.log()}") from None
        return self.proc.returncode

    def shutdown(self) -> None:
        """Stop the server and the local agent it started (and with it any job still
        running): nothing of the test outlives it."""
        if self.proc is not None:
            self.stop()
        agent_pid = self.data_dir / "local" / "agent.pid"
        try:
            pid = int(agent_pid.read_text())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """``kill -9``: no shutdown at all."""
        self.stop(signal.SIGKILL)

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def client(
        self, service: str = "batch", check: bool = True, region: str = "us-east-1", **config: Any
    ) -> Any:
        """A boto3 client for this server, configured for ``region``; ``check`` validates every
        response against the model (unknown fields, missing required fields, wrong types fail
        the call)."""
        c = boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(**{"retries": {"max_attempts": 1}, **config}),
        )
        if check:
            c.meta.events.register("after-call", check_response)
        return c

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.endpoint, timeout=30)
