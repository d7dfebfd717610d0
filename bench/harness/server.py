"""A fresh batchyard server for one measurement: its own data dir (and database), started as
``python -m batchyard server --port 0``, stopped with SIGTERM together with its local agent,
its data dir removed. Nothing outlives :meth:`BenchServer.stop`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from harness.wire import Wire

CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            p = psutil.Process(pid)
            if p.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


class BenchServer:
    def __init__(
        self,
        root: Path,
        database_url: str | None = None,
        keep: bool = False,
        **settings: Any,
    ) -> None:
        self.root = root
        self.database_url = database_url
        # xargs and Slurm run the benchmark's commands as root: so does batchyard, unless a
        # workload asks for the isolation a root server gives jobs by default (run_as=None)
        if os.geteuid() == 0:
            settings.setdefault("run_as", "root")
        self.settings = {k: v for k, v in settings.items() if v is not None}
        self.keep = keep
        self.data_dir = Path(tempfile.mkdtemp(prefix="server-", dir=root))
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self.log_path = self.data_dir / "bench-server.log"
        self.stop_seconds: float | None = None
        self._boto: dict[str, Any] = {}

    @property
    def store(self) -> str:
        return "postgresql" if self.database_url else "sqlite"

    # ---- life cycle --------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> BenchServer:
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
        env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
        env.update({f"BATCHYARD_{k.upper()}": str(v) for k, v in self.settings.items()})
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=log,
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        state = self.data_dir / "server.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                info = json.loads(state.read_text())
                if info["pid"] == self.proc.pid:
                    with urllib.request.urlopen(f"{info['endpoint']}/healthz", timeout=2) as r:
                        if r.status == 200:
                            self.endpoint = info["endpoint"]
                            return self
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not become healthy in {timeout:.0f} s:\n{self.log()}")

    def agent_pid(self) -> int | None:
        try:
            return int((self.data_dir / "local" / "agent.pid").read_text())
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 120.0) -> None:
        """SIGTERM the server, wait, then the agent (which would linger ~30 s). Records how
        long the server took to stop. Kills (and says so in the log) what does not stop."""
        started = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._note(f"the server did not stop within {timeout:.0f} s of SIGTERM; killed")
                self.proc.kill()
                self.proc.wait()
        self.stop_seconds = time.monotonic() - started
        pid = self.agent_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                if not _wait_gone(pid, 20):
                    self._note(f"the agent {pid} did not stop within 20 s of SIGTERM; killed")
                    os.kill(pid, signal.SIGKILL)
                    _wait_gone(pid, 5)
        for c in self._boto.values():
            with contextlib.suppress(Exception):
                c.close()
        if not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _note(self, line: str) -> None:
        with contextlib.suppress(OSError), open(self.log_path, "a") as f:
            f.write(f"[bench] {line}\n")
        print(f"    warning: {line}", file=sys.stderr)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def errors_in_log(self) -> list[str]:
        """Lines of the server log at ERROR or above, and tracebacks (the suite reports them)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [
            ln
            for ln in text.splitlines()
            if " ERROR " in ln or " CRITICAL " in ln or ln.startswith("Traceback")
        ][:20]

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            # say why, in the run's error message: the server's data dir is removed on stop
            for line in self.exceptions_in_log()[-2:]:
                exc.add_note(f"server log ({self.store}): {line}")
        self.stop()

    def exceptions_in_log(self) -> list[str]:
        """The last line of each traceback in the server log (``SomeError: message``)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", ln)]

    # ---- measuring -----------------------------------------------------------------------

    def process(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def rss_mib(self) -> float:
        return self.process().memory_info().rss / 2**20

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by the server and by its agent."""
        out = {"server": sum(self.process().cpu_times()[:2])}
        pid = self.agent_pid()
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                out["agent"] = sum(psutil.Process(pid).cpu_times()[:2])
        return out

    def sqlite_bytes(self) -> int | None:
        if self.database_url:
            return None
        return sum(p.stat().st_size for p in self.data_dir.glob("batchyard.db*"))

    # ---- clients and set-up ------------------------------------------------------------

    def client(self, service: str = "batch") -> Any:
        if service not in self._boto:
            import boto3
            from botocore.config import Config

            self._boto[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name="us-east-1",
                config=Config(retries={"max_attempts": 1}, read_timeout=300),
                **CREDENTIALS,
            )
        return self._boto[service]

    def wire(self) -> Wire:
        return Wire(self.endpoint)

    def setup(
        self,
        name: str = "bench",
        command: list[str] | None = None,
        vcpus: str = "1",
        memory: str = "32",
        max_vcpus: int | None = None,
        ce_state: str = "ENABLED",
    ) -> dict[str, str]:
        """A compute environment (maxvCpus = the host's cores), a queue and a job definition;
        returns their names."""
        batch = self.client()
        ce, queue, jd = f"{name}-ce", f"{name}-q", f"{name}-jd"
        batch.create_compute_environment(
            computeEnvironmentName=ce,
            type="MANAGED",
            state=ce_state,
            computeResources={
                "type": "EC2",
                "maxvCpus": max_vcpus or os.cpu_count() or 2,
                "minvCpus": 0,
            },
        )
        self._wait(
            lambda: (
                batch.describe_compute_environments(computeEnvironments=[ce])[
                    "computeEnvironments"
                ][0]["status"]
                == "VALID"
            ),
            f"{ce} VALID",
        )
        batch.create_job_queue(
            jobQueueName=queue,
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
        )
        self._wait(
            lambda: (
                batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["status"] == "VALID"
            ),
            f"{queue} VALID",
        )
        batch.register_job_definition(
            jobDefinitionName=jd,
            type="container",
            containerProperties={
                "image": "busybox",
                "command": command or ["true"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": vcpus},
                    {"type": "MEMORY", "value": memory},
                ],
            },
        )
        return {"ce": ce, "queue": queue, "definition": jd}

    @staticmethod
    def _wait(predicate: Any, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.02)


def wait_job(wire: Wire, job_id: str, timeout: float, interval: float = 0.05) -> dict[str, Any]:
    """Poll DescribeJobs until the job is SUCCEEDED or FAILED; returns its description with
    ``_observed_at`` (epoch s of the poll that saw it finished)."""
    deadline = time.monotonic() + timeout
    while True:
        job = wire.describe([job_id])[0]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            job["_observed_at"] = time.time()
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"job {job_id} still {job['status']} after {timeout:.0f} s "
                f"({job.get('arrayProperties', {}).get('statusSummary')})"
            )
        time.sleep(interval)
