"""Whether this machine can run jobs as a root server does by default: as root, with the
``batchyard-jobs`` user (scripts/setup-test-env creates it)."""

from __future__ import annotations

import os
import pwd

import pytest

ROOT = os.geteuid() == 0
try:
    pwd.getpwnam("batchyard-jobs")
    JOB_USER = True
except KeyError:
    JOB_USER = False
needs_isolation = pytest.mark.skipif(
    not (ROOT and JOB_USER),
    reason="needs root and the batchyard-jobs user (scripts/setup-test-env creates it)",
)
