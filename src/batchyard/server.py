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
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn

from batchyard import __version__
from batchyard.api.arns import Arns
from batchyard.auth import isolation
from batchyard.auth.guard import Guard
from batchyard.auth.identity import Identities
from batchyard.auth.vault import open_vault
from batchyard.config import ConfigError, Settings
from batchyard.events.build import EventBuilder
from batchyard.events.outbox import Outbox
from batchyard.events.webhooks import WebhookDelivery
from batchyard.events.webhooks import status as webhook_status
from batchyard.logs.store import LogStore
from batchyard.metrics import Metrics
from batchyard.providers.base import Provider
from batchyard.providers.local import LocalProvider
from batchyard.providers.local.provider import startup_note
from batchyard.providers.ray import ray_provider
from batchyard.scheduler.jobs import SWEEP, JobScheduler
from batchyard.scheduler.loop import Scheduler
from batchyard.scheduler.resources import ResourceReconciler
from batchyard.service.audit import Audit
from batchyard.service.context import Context
from batchyard.service.insight import Insight
from batchyard.service.logs import Logs
from batchyard.service.pagination import Tokens
from batchyard.service.secrets import Secrets
from batchyard.service.services import Services
from batchyard.service.usage import Usage
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
        # security (docs/security.md): keys, policies, secrets, audit; who jobs run as
        self.vault = open_vault(settings, self.store)
        self.identities = Identities(self.store, self.vault)
        self.secrets = Secrets(self.store, self.vault, settings.account_id)
        self.audit = Audit(self.store, settings.audit_retention_days)
        self.guard = Guard(
            settings, self.store, self.arns, self.identities, self.audit, self.secrets
        )
        self.job_identity = isolation.plan(settings)
        isolation.ensure_job_user(self.job_identity)
        isolation.prepare_work_root(self.job_identity)
        self.logs = LogStore(settings.data_dir / "logs")
        self.providers: dict[str, Provider] = {
            "local": LocalProvider(
                settings.data_dir / "local",
                log_limit_bytes=settings.log_limit_bytes,
                enforce_limits=settings.enforce_limits,
                run_as=settings.run_as,
                identity=self.job_identity,
            )
        }
        ray = ray_provider(settings, self.store)  # None without the extra [ray]
        if ray is not None:
            self.providers["ray"] = ray
        self.scheduler = Scheduler(self.store)
        # observability (docs/observability.md): set when the server starts to stop, so that
        # open event streams end instead of holding up the graceful shutdown
        self.stopping = threading.Event()
        self.outbox = Outbox(self.store)
        self.metrics = Metrics(
            self.store,
            self.outbox,
            status=lambda: self.insight.status(),
            leading=lambda: self.scheduler.leadership.leading,
            webhooks=lambda: webhook_status(self.store, settings.webhooks, self.outbox.latest()),
        )
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
            secrets=self.secrets,
        )
        self.scheduler.add_pass(
            self.metrics.timed_pass("resources", self.reconciler.run_once),
            on_stop=self.reconciler.close,
        )
        self.scheduler.add_pass(
            self.metrics.timed_pass("jobs", self.jobs.run_once),
            on_start=self.jobs.start,
            on_stop=self.jobs.stop,
        )
        ctx = Context(
            store=self.store,
            settings=settings,
            tokens=Tokens(self.store.secret("token_secret")),
            wake=self.wake,
            providers=frozenset(self.providers),
            finished=self.finished,
            recheck=self.recheck,
        )
        self.services = Services(ctx)
        self.logs_service = Logs(ctx, self.logs)
        self.insight = Insight(ctx, self.reconciler.capacity, self.logs)
        self.usage = Usage(ctx)
        self.events = EventBuilder(self.store, self.services, self.arns)
        self.webhooks = WebhookDelivery(
            self.store,
            self.outbox,
            self.events,
            settings.webhooks,
            leading=lambda: self.scheduler.leadership.leading,
            observer=self.metrics,
        )

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

    def recheck(self, seqs: list[int]) -> None:
        """Jobs just stored PENDING on dependencies: the leader reads them again."""
        if self.scheduler.leadership.leading:
            self.jobs.recheck(seqs)
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
        self.metrics.start()
        self.webhooks.start()
        try:
            yield
        finally:
            self.stopping.set()
            self.webhooks.stop()
            self.scheduler.stop()
            self.audit.close()
            isolation.release_work_root(self.job_identity)
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
    isolation.check_exposure(settings)
    lock = _lock_data_dir(settings.data_dir)
    isolation.protect(settings, isolation.plan(settings))
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
        "batchyard %s listening on %s (dashboard %s/ui; store: %s; data dir %s; authentication %s)",
        __version__,
        settings.endpoint,
        settings.endpoint,
        runtime.store.description,
        settings.data_dir,
        settings.auth,
    )
    note = startup_note(runtime.job_identity, os.environ.get("PATH", ""))
    if note:
        log.info("%s", note)
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
        log_config=None,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        # the client's address and scheme are what the socket says: X-Forwarded-* from a local
        # client must not change aws:SourceIp, aws:SecureTransport or the audit log
        proxy_headers=False,
    )

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            runtime.stopping.set()  # event streams end, so the graceful stop is not held up
            super().handle_exit(sig, frame)

    try:
        _Server(config).run(sockets=[sock])
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
    import ssl
    import urllib.request

    # a readiness probe of our own server: its certificate may be self-signed
    context = ssl._create_unverified_context() if endpoint.startswith("https") else None
    try:
        with urllib.request.urlopen(f"{endpoint}/healthz", timeout=1, context=context) as r:
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
