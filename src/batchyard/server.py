"""Running the server: the runtime that owns store, services and scheduler; the foreground
process (uvicorn on a socket we bind ourselves); and the background mode with its pid file."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn

from batchyard import __version__
from batchyard.api.arns import Arns
from batchyard.config import ConfigError, Settings
from batchyard.logs.store import LogStore
from batchyard.providers.base import Provider
from batchyard.providers.local import LocalProvider
from batchyard.providers.ray import ray_provider
from batchyard.scheduler.jobs import SWEEP, JobScheduler
from batchyard.scheduler.loop import Scheduler
from batchyard.scheduler.resources import ResourceReconciler
from batchyard.service.context import Context
from batchyard.service.insight import Insight
from batchyard.service.logs import Logs
from batchyard.service.pagination import Tokens
from batchyard.service.services import Services
from batchyard.store import jobs as jobs_repo
from batchyard.store.db import Store

log = logging.getLogger("batchyard.server")

PID_FILE = "server.pid"
STATE_FILE = "server.json"
LOG_FILE = "server.log"
LOCK_FILE = "server.lock"


class Runtime:
    """Everything one server process owns, built in dependency order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.sqlalchemy_url)
        self.store.check()
        self.store.migrate()
        self.arns = Arns(settings.region, settings.account_id)
        self.logs = LogStore(settings.data_dir / "logs")
        self.providers: dict[str, Provider] = {
            "local": LocalProvider(
                settings.data_dir / "local",
                log_limit_bytes=settings.log_limit_bytes,
                enforce_limits=settings.enforce_limits,
                run_as=settings.run_as,
            )
        }
        ray = ray_provider(settings, self.store)  # None without the extra [ray]
        if ray is not None:
            self.providers["ray"] = ray
        self.scheduler = Scheduler(self.store)
        self.reconciler = ResourceReconciler(
            self.store,
            self.providers,
            self._busy,
            wake=self.scheduler.wake,
            wake_later=self.scheduler.wake_later,
        )
        self.jobs = JobScheduler(
            self.store,
            settings,
            self.providers,
            self.reconciler,
            self.logs,
            wake=self.scheduler.wake,
            wake_later=self.scheduler.wake_later,
        )
        self.scheduler.add_pass(self.reconciler.run_once, on_stop=self.reconciler.close)
        self.scheduler.add_pass(
            self.jobs.run_once, on_start=self.jobs.start, on_stop=self.jobs.stop
        )
        ctx = Context(
            store=self.store,
            settings=settings,
            tokens=Tokens(self.store.secret("token_secret")),
            wake=self.wake,
            providers=frozenset(self.providers),
            finished=self.finished,
        )
        self.services = Services(ctx)
        self.logs_service = Logs(ctx, self.logs)
        self.insight = Insight(ctx, self.reconciler.capacity)

    def wake(self, topic: str) -> None:
        """After a committed change: wake the scheduler here, or the leader elsewhere."""
        if self.scheduler.leadership.leading:
            self.scheduler.wake(topic)
        else:
            self.store.notify(topic)

    def finished(self, seqs: list[int]) -> None:
        """Jobs the service ended (cancel): their dependents are the leader's business."""
        if self.scheduler.leadership.leading:
            self.jobs.finished(seqs)
        else:
            self.store.notify(SWEEP)

    def _busy(self) -> tuple[set[str], set[int]]:
        """Compute environments with attempts in flight, and queues with unfinished jobs."""
        with self.store.read() as conn:
            queues = jobs_repo.busy_queue_ids(conn)
        return {r.environment for r in self.jobs.running.values()}, queues

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        self.scheduler.start()
        try:
            yield
        finally:
            self.scheduler.stop()
            self.store.close()


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _lock_data_dir(data_dir: Path) -> Any:
    """Hold an exclusive lock on the data dir for the process's lifetime: two servers on one
    data dir would share its SQLite file and its running jobs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = read_pid(data_dir)
        who = f" (pid {pid})" if pid else ""
        raise ConfigError(
            f"another batchyard server{who} is using the data dir {data_dir}; stop it with "
            f"`batchyard server stop --data-dir {data_dir}` or choose another --data-dir"
        ) from None
    return handle


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings) -> None:
    """Run the server in the foreground until SIGTERM or SIGINT."""
    configure_logging(settings.log_level)
    lock = _lock_data_dir(settings.data_dir)
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    settings = settings.model_copy(update={"port": port})
    runtime = Runtime(settings)
    from batchyard.api.app import create_app

    app = create_app(runtime)
    pid_path, state_path = settings.data_dir / PID_FILE, settings.data_dir / STATE_FILE
    pid_path.write_text(f"{os.getpid()}\n")
    state_path.write_text(
        json.dumps({"pid": os.getpid(), "endpoint": settings.endpoint, "version": __version__})
    )
    log.info(
        "batchyard %s listening on %s (store: %s; data dir %s)",
        __version__,
        settings.endpoint,
        runtime.store.description,
        settings.data_dir,
    )
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
        log_config=None,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for path in (pid_path, state_path):
            with contextlib.suppress(FileNotFoundError):
                if path == pid_path and read_pid(settings.data_dir) != os.getpid():
                    continue
                path.unlink()
        lock.close()
        log.info("batchyard stopped")


def read_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def read_endpoint(data_dir: Path) -> str | None:
    try:
        return json.loads((data_dir / STATE_FILE).read_text())["endpoint"]
    except (OSError, ValueError, KeyError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie has exited even though kill() still finds it
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def healthy(endpoint: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{endpoint}/healthz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def detach(argv: list[str], data_dir: Path, timeout: float = 60.0) -> tuple[int, str]:
    """Start ``batchyard server <argv>`` in the background and wait until it answers.

    Returns (pid, endpoint); raises :class:`ConfigError` with the server's own last log
    lines when it fails to come up.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / LOG_FILE
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "batchyard", "server", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise ConfigError(
                f"the server exited with status {code} while starting:\n  " + "\n  ".join(tail)
            )
        endpoint = read_endpoint(data_dir)
        if read_pid(data_dir) == proc.pid and endpoint and healthy(endpoint):
            return proc.pid, endpoint
        time.sleep(0.05)
    proc.terminate()
    raise ConfigError(f"the server did not answer within {timeout:.0f} s; see {log_path}")


def stop(data_dir: Path, timeout: float = 60.0) -> int | None:
    """Stop the background server of ``data_dir`` (SIGTERM, then wait). Returns its pid, or
    None if none was running."""
    pid = read_pid(data_dir)
    if pid is None or not _alive(pid):
        with contextlib.suppress(FileNotFoundError):
            (data_dir / PID_FILE).unlink()
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return pid
        time.sleep(0.05)
    raise ConfigError(
        f"the server (pid {pid}) did not stop within {timeout:.0f} s; it may be finishing "
        f"requests. Check {data_dir / LOG_FILE}, or end it with `kill -9 {pid}`"
    )
