"""A failed job's page in a real browser: a failed start's reason shown once (never
Python's None), and — on a root server, whose jobs run as unprivileged uids — who each
attempt ran as, and for a job refused a permission, the command that grants access."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from helpers import make_ce, make_queue, register, wait_job

from support.identity import needs_isolation
from support.server import FAST, ServerProcess

pytestmark = pytest.mark.timeout(120)


def names(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def setup(batch) -> str:
    ce, queue = names("ui-ce"), names("ui-q")
    make_ce(batch, ce, max_vcpus=2)
    make_queue(batch, queue, [ce])
    return queue


def test_a_failed_start_shows_its_reason_once(page, ui_server):
    batch = ui_server.client("batch")
    queue = setup(batch)
    jd = register(batch, names, ["/no/such/dir/run.sh"])
    job_id = batch.submit_job(jobName="nostart", jobQueue=queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id)
    reason = "CannotStartContainerError: '/no/such/dir/run.sh' does not exist"
    assert job["statusReason"] == reason

    page.goto(f"/ui/jobs/{job_id}")
    page.wait_for_selector("#job-live .badge.FAILED")
    text = page.inner_text("#job-live")
    assert text.count(reason) == 1, text  # in "Why"; the timeline and attempt refer to it
    assert f"FAILED after 1 attempt(s): {reason}." in text
    assert "None" not in text.replace("None either way.", "")  # (no dependencies)
    assert "exited with code" not in text
    assert "(as above)" in page.inner_text("#job-live table")


@needs_isolation
def test_a_job_refused_a_permission_shows_who_and_the_fix(browser, screenshot):
    base = Path(tempfile.mkdtemp(prefix="batchyard-ui-root-"))
    private = tempfile.mkdtemp(prefix="batchyard-private-")  # 0700, root's: as mktemp -d
    server = ServerProcess(base / "data", None, **{**FAST, "run_as": None}).start()
    context = browser.new_context(base_url=server.endpoint, viewport={"width": 1360, "height": 900})
    try:
        batch = server.client("batch")
        queue = setup(batch)
        jd = register(batch, names, ["sh", "-c", f"echo x > {private}/out.txt"])
        job_id = batch.submit_job(jobName="writes", jobQueue=queue, jobDefinition=jd)["jobId"]
        assert wait_job(batch, job_id)["status"] == "FAILED"

        page = context.new_page()
        page.goto(f"/ui/jobs/{job_id}")
        page.wait_for_selector("#job-live .badge.FAILED")
        who = page.inner_text("#ran-as")
        assert who.startswith("uid 20") and who.endswith(", group batchyard-jobs"), who
        hint = page.inner_text("#permission")
        assert f"attempt 1 ran as {who} and failed on a permission" in hint
        assert f"chgrp batchyard-jobs {private} && chmod g+rwX {private}" in hint
        assert 'run_as = "NAME"' in hint and "docs/security.md" in hint
        assert who in page.inner_text("#job-live table")  # the attempt's own "Ran as"
        screenshot(page, "permission")
    finally:
        context.close()
        server.shutdown()
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
