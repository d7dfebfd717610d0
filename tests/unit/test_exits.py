"""Exit records, as the local agent and the Ray supervisor report them, read into Exited."""

from __future__ import annotations

from batchyard.providers.base import Exited
from batchyard.providers.exits import exited


def test_an_exit_record_with_everything():
    record = {
        "id": 7,
        "at": 1_700_000_000_123,
        "exit_code": 137,
        "reason": "the process was killed by SIGKILL",
        "usage": {"cpu_seconds": 0.5, "log_bytes": 12},
    }
    assert exited(record) == Exited(
        7, 1_700_000_000_123, 137, "the process was killed by SIGKILL", record["usage"]
    )


def test_a_minimal_record_is_an_exit_with_unknown_status():
    e = exited({"id": 3, "at": 5})
    assert (e.exit_code, e.reason, e.usage, e.never_started) == (None, None, None, False)


def test_never_started_is_kept():
    e = exited({"id": 3, "at": 5, "exit_code": None, "reason": "stopped", "never_started": True})
    assert e.never_started and e.reason == "stopped"
    assert not exited({"id": 3, "at": 5, "never_started": False}).never_started


def test_both_providers_read_records_the_same_way():
    from batchyard.providers.local import link, provider
    from batchyard.providers.ray import provider as ray_provider

    assert link.exited is provider.exited is ray_provider.exited is exited
