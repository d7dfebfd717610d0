"""Run a command inside private network and PID namespaces, with loopback up.

Ray binds some of its agents to the host's primary address even when told 127.0.0.1, so the
Ray tests run their cluster (and the batchyard server under test) where loopback is the only
network there is. This script is PID 1 of the new PID namespace: it reaps every orphan, and
when the command ends it exits, and the kernel kills whatever is left in the namespace — no
Ray process outlives the tests, even when they crash.

    python3 tests/ray/netns.py python3 -m pytest -m ray -n 0
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys

INSIDE = "BATCHYARD_RAY_NETNS"


def enter(argv: list[str]) -> None:
    """Re-execute ``argv`` (a command) under this script inside fresh namespaces."""
    prefix = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    env = {**os.environ, INSIDE: "1"}
    os.execvpe(prefix[0], [*prefix, sys.executable, os.path.abspath(__file__), *argv], env)


def _loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, siocgifflags, ifr))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def init(argv: list[str]) -> int:
    """PID 1: start the command, pass signals on, reap everything, return its status."""
    _loopback_up()
    child = subprocess.Popen(argv)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 1
        if pid == child.pid:
            child.returncode = code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    if os.environ.get(INSIDE) != "1":
        enter(sys.argv[1:])
    sys.exit(init(sys.argv[1:]))
