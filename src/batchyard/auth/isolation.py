"""Keeping jobs away from the control plane and from each other, on this host.

- **Who a job runs as.** A server running as root never runs jobs as root unless told to
  (``run_as = "root"``): by default each attempt gets a uid of its own (``job_uid_base`` + n,
  no login, no home) in the group of the ``batchyard-jobs`` user, so that jobs cannot read
  each other's environment (``/proc/<pid>/environ``: where their secrets are), signal each
  other or enter each other's working directories, yet still share files through the group
  (their umask is 007). ``run_as = NAME`` runs every job as that one user instead;
  ``isolate_jobs = true`` adds per-attempt uids to it.
- **The data dir** (database, master key, logs, agent socket) is the server's alone: the
  server creates everything with umask 077, fixes the modes of what an older version left
  readable, and keeps the data dir itself traversable only (0711) where the jobs' working
  directories live inside it.
- **Working directories**: one per attempt, 0700, owned by the attempt's uid, removed when it
  ends; under ``<data dir>/local/work`` when jobs run as the server's user, else under
  ``/var/tmp/batchyard-<server uid>/<hash of the data dir>`` (a path other users can reach even
  when the data dir is under a private home).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from batchyard.config import ConfigError, Settings

log = logging.getLogger("batchyard.isolation")
DEFAULT_JOB_USER = "batchyard-jobs"
ISOLATED_UMASK = 0o007
_ORIGINAL_UMASK: int | None = None
_WARNED: list[bool] = []


@dataclass(frozen=True, slots=True)
class JobIdentity:
    run_as: str | None  # the user jobs run as (or whose group they get); None: the server's
    isolate: bool  # a uid of its own per attempt
    uid_base: int
    uid_count: int
    work_root: Path | None  # None: the agent's default (<data dir>/local/work)
    umask: int


def original_umask() -> int:
    """The umask the process started with (before :func:`protect` tightened it)."""
    if _ORIGINAL_UMASK is not None:
        return _ORIGINAL_UMASK
    current = os.umask(0o022)
    os.umask(current)
    return current


def _is_root_name(name: str) -> bool:
    return name in ("root", "0")


def plan(settings: Settings) -> JobIdentity:
    """Decide, from the settings and whether the server runs as root, who jobs run as."""
    root = os.geteuid() == 0
    run_as = settings.run_as
    explicit_root = run_as is not None and _is_root_name(run_as)
    if explicit_root:
        if root and not _WARNED:
            _WARNED.append(True)
            log.warning(
                "run_as = root: jobs run as root and can read the data dir (database, master "
                "key) and change this host; use an unprivileged user on a shared host"
            )
        run_as = None
    elif run_as is None and root:
        run_as = DEFAULT_JOB_USER
    isolate = settings.isolate_jobs
    if isolate is None:
        isolate = root and settings.run_as is None
    if isolate and not root:
        raise ConfigError(
            "isolate_jobs = true needs the server to run as root (it gives each attempt a uid "
            "of its own); set isolate_jobs = false"
        )
    if isolate and run_as is None:
        run_as = DEFAULT_JOB_USER
    work_root = settings.work_dir
    if work_root is None and run_as is not None and not _same_user(run_as):
        digest = hashlib.sha256(str(settings.data_dir).encode()).hexdigest()[:12]
        work_root = Path("/var/tmp") / f"batchyard-{os.geteuid()}" / digest
    umask = ISOLATED_UMASK if isolate else original_umask()
    return JobIdentity(
        run_as, isolate, settings.job_uid_base, settings.job_uid_count, work_root, umask
    )


def ensure_job_user(identity: JobIdentity) -> None:
    """Create the default job user on a root server's first start, as a package's install
    script would: ``useradd --system``, no home, no login. A user named in ``run_as`` is
    never created; it must exist."""
    if identity.run_as != DEFAULT_JOB_USER or os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(DEFAULT_JOB_USER)
        return
    except KeyError:
        pass
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    try:
        done = subprocess.run([*cmd, DEFAULT_JOB_USER], capture_output=True, text=True)
    except OSError as e:
        created, why = False, e.strerror
    else:
        created, why = done.returncode == 0, done.stderr.strip()
    if not created:
        raise ConfigError(
            f"jobs of a server running as root run in the group of the user "
            f"{DEFAULT_JOB_USER!r}, which does not exist and could not be created ({why}); "
            f"create it (useradd --system {DEFAULT_JOB_USER}) or set run_as"
        )
    log.info("created the system user %s, whose group jobs run in", DEFAULT_JOB_USER)


def _same_user(name: str) -> bool:
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        return False
    return entry.pw_uid == os.geteuid()


def _private_dir(path: Path, mode: int) -> None:
    """Make ``path`` (and missing parents) ours with ``mode``; refuse one someone else owns."""
    path.mkdir(parents=True, exist_ok=True)
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise ConfigError(
            f"{path} must be a directory owned by the server's user (uid {os.geteuid()}); "
            "remove it or set work_dir"
        )
    os.chmod(path, mode)


def prepare_work_root(identity: JobIdentity) -> None:
    """The root of the attempts' working directories: ours, traversable, not listable."""
    if identity.work_root is None:
        return
    root = identity.work_root
    if root.parent.name.startswith("batchyard-") and root.parent.parent == Path("/var/tmp"):
        _private_dir(root.parent, 0o711)
    _private_dir(root, 0o711)


def release_work_root(identity: JobIdentity) -> None:
    """At shutdown: remove the working directories' root if no job uses it any more."""
    if identity.work_root is not None:
        with contextlib.suppress(OSError):
            identity.work_root.rmdir()


def protect(settings: Settings, identity: JobIdentity) -> None:
    """Make the data dir unreadable to jobs (and to anyone but the server's user)."""
    global _ORIGINAL_UMASK
    if _ORIGINAL_UMASK is None:
        _ORIGINAL_UMASK = os.umask(0o077)
    else:
        os.umask(0o077)
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    # jobs' working directories inside the data dir: reachable by path, never listable
    inside = identity.work_root is None and identity.run_as is not None
    with contextlib.suppress(OSError):
        os.chmod(data, 0o711 if inside else 0o700)
    for name in ("local", "local/work") if inside else ():
        path = data / name
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(path, 0o711)
    for child in data.iterdir():
        if inside and child.name == "local":
            for sub in child.iterdir():
                if sub.name != "work":
                    _tighten(sub)
            continue
        _tighten(child)


def _tighten(path: Path) -> None:
    with contextlib.suppress(OSError):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
            return
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)


def loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    import ipaddress
    import socket

    if host in ("", "0.0.0.0", "::"):
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        addresses = {i[4][0] for i in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond loopback without authentication; check the TLS files."""
    if settings.auth != "required" and not loopback(settings.host):
        raise ConfigError(
            f"refusing to listen on {settings.host!r} without authentication: anyone who can "
            "reach it could run commands on this host. Start with --auth required (auth = "
            '"required" in the config file), create an access key with `batchyard credentials '
            "create --local --name admin --policy admin.json`, and see docs/security.md"
        )
    cert, key = settings.tls_cert, settings.tls_key
    if (cert is None) != (key is None):
        raise ConfigError("tls_cert and tls_key go together: set both (PEM files) or neither")
    for what, path in (("tls_cert", cert), ("tls_key", key)):
        if path is not None and not path.is_file():
            raise ConfigError(f"{what}: {path} does not exist or is not a file")
    if cert is None and not loopback(settings.host):
        log.warning(
            "listening on %s without TLS: signatures keep requests from being changed or "
            "replayed after 15 minutes, but not from being read; set tls_cert and tls_key",
            settings.host,
        )
