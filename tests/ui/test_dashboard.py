"""The dashboard in a real browser: the overview, filtering jobs, a job's log appearing live
while it runs, terminating a job with a confirmation and seeing it FAILED, a queue disabled
from its page, and the usage page with its chart."""

from __future__ import annotations

import re
import uuid

import pytest
from helpers import make_ce, make_queue, register, wait_for, wait_job

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def batch(ui_server):
    return ui_server.client("batch")


def names(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def setup(batch, max_vcpus: int = 2) -> tuple[str, str]:
    ce, queue = names("ui-ce"), names("ui-q")
    make_ce(batch, ce, max_vcpus=max_vcpus)
    make_queue(batch, queue, [ce])
    return ce, queue


def jd(batch, command: list[str], vcpus: str = "0.5") -> str:
    return register(batch, lambda p: names(p), command, vcpus=vcpus)


def test_overview_and_job_filters(page, batch, screenshot):
    ce, queue = setup(batch)
    ok, bad = jd(batch, ["true"]), jd(batch, ["sh", "-c", "echo broken >&2; exit 2"])
    ids = [
        batch.submit_job(jobName=f"alpha-{i}", jobQueue=queue, jobDefinition=ok)["jobId"]
        for i in range(2)
    ]
    ids.append(batch.submit_job(jobName="beta", jobQueue=queue, jobDefinition=bad)["jobId"])
    ids.append(
        batch.submit_job(
            jobName="gamma", jobQueue=queue, jobDefinition=ok, arrayProperties={"size": 4}
        )["jobId"]
    )
    for j in ids:
        wait_job(batch, j)

    page.goto("/")  # the root redirects to the dashboard
    assert page.url.endswith("/ui")
    row = page.locator(f"tr[data-queue='{queue}']")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == queue and cells[6] == "6" and cells[7] == "1"  # succeeded, failed
    assert page.locator(f"tr[data-ce='{ce}']").inner_text().count("ENABLED") == 1
    assert page.locator("svg.chart").count() == 3
    page.wait_for_selector("#live.on")  # the live stream is connected
    screenshot(page, "overview")

    page.click("nav >> text=Jobs")
    page.select_option("select[name=queue]", queue)
    page.select_option("select[name=status]", "FAILED")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"status=FAILED"))
    shown = page.locator("#jobs tr[data-job]")
    assert shown.count() == 1 and "beta" in shown.first.inner_text()
    assert "Essential container in task exited" in shown.first.inner_text()

    page.fill("input[name=q]", "alpha")
    page.select_option("select[name=status]", "")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"q=alpha"))
    assert sorted(page.locator("#jobs tr[data-job] td:first-child a").all_inner_texts()) == [
        "alpha-0",
        "alpha-1",
    ]
    assert page.inner_text("#total") == "2 jobs"

    # the array: progress by index, each cell a link to its child
    page.fill("input[name=q]", "gamma")
    page.click("form.filters button[type=submit]")
    page.click("#jobs a:text('gamma')")
    page.wait_for_selector(".cells a")
    assert page.locator(".cells a.SUCCEEDED").count() == 4
    page.click(".cells a >> nth=2")
    page.wait_for_url(re.compile(r":2$"))
    assert "child of" in page.inner_text(".sub")


def test_log_appears_live_and_terminate_from_the_page(page, batch, screenshot):
    _, queue = setup(batch)
    slow = jd(batch, ["sh", "-c", "echo starting; sleep 2; echo hello-live; sleep 60"])
    job_id = batch.submit_job(jobName="live", jobQueue=queue, jobDefinition=slow)["jobId"]
    page.goto(f"/ui/jobs/{job_id}")
    page.wait_for_selector("#live.on")
    # the status changes and the output arrive while the page stays open
    page.wait_for_selector("#job-live .badge.RUNNING")
    page.wait_for_selector("#log:has-text('starting')")
    page.wait_for_selector("#log:has-text('hello-live')", timeout=30_000)
    assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNING"
    assert page.locator(".timeline li").count() >= 5
    screenshot(page, "job")

    page.fill("#job-live form[action$='/terminate'] input[name=reason]", "stopped by a test")
    page.click("#terminate-button")
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    assert "Terminate job live" in dialog.inner_text()
    dialog.locator("button[value=ok]").click()
    page.wait_for_url(re.compile(r"done=terminate"))
    page.wait_for_selector("#job-live .badge.FAILED", timeout=30_000)
    page.wait_for_selector("#log-state:has-text('ended')")
    job = wait_job(batch, job_id)
    assert job["status"] == "FAILED" and job["isTerminated"]
    assert job["statusReason"] == "stopped by a test"
    assert "stopped by a test" in page.inner_text("#job-live")


def test_jobs_list_updates_live_and_pages(page, batch, screenshot):
    ce, queue = setup(batch)
    hold = jd(batch, ["sleep", "30"], vcpus="1")
    page.goto(f"/ui/jobs?queue={queue}")
    page.wait_for_selector("#live.on")
    job_id = batch.submit_job(jobName="newcomer", jobQueue=queue, jobDefinition=hold)["jobId"]
    # a new job of the queue appears without a reload, then its status follows
    page.wait_for_selector(f"tr[data-job='{job_id}'] .badge.RUNNING", timeout=30_000)
    batch.terminate_job(jobId=job_id, reason="done")
    page.wait_for_selector(f"tr[data-job='{job_id}'] .badge.FAILED", timeout=30_000)

    # many jobs: the queue's environment is disabled, so they wait; page through them
    batch.update_compute_environment(computeEnvironment=ce, state="DISABLED")
    ids = [
        batch.submit_job(jobName=f"many-{i:03d}", jobQueue=queue, jobDefinition=hold)["jobId"]
        for i in range(120)
    ]
    page.goto(f"/ui/jobs?queue={queue}&status=RUNNABLE&size=50")
    assert page.inner_text("#total") == "120 jobs"
    seen = page.locator("#jobs tr[data-job] td:first-child a").all_inner_texts()
    page.click("text=Older →")
    seen += page.locator("#jobs tr[data-job] td:first-child a").all_inner_texts()
    page.click("text=Older →")
    seen += page.locator("#jobs tr[data-job] td:first-child a").all_inner_texts()
    assert page.locator("text=Older →").count() == 0
    assert seen == [f"many-{i:03d}" for i in range(119, -1, -1)]
    page.click("text=← Newer")
    assert page.locator("#jobs tr[data-job] td:first-child a").first.inner_text() == "many-069"
    screenshot(page, "jobs")
    batch.terminate_jobs(jobs=ids[:50], reason="cleanup")
    batch.terminate_jobs(jobs=ids[50:100], reason="cleanup")
    batch.terminate_jobs(jobs=ids[100:], reason="cleanup")


def test_disable_a_queue_and_see_usage(page, batch, screenshot):
    _, queue = setup(batch)
    ok = jd(batch, ["sh", "-c", "sleep 1.1"], vcpus="1")
    for j in [
        batch.submit_job(jobName=f"u{i}", jobQueue=queue, jobDefinition=ok)["jobId"]
        for i in range(3)
    ]:
        wait_job(batch, j)
    page.goto(f"/ui/queues/{queue}")
    page.click("#queue-state-button")
    page.locator("#confirm-dialog button[value=ok]").click()
    page.wait_for_selector("#queue-state-button:has-text('Enable')")
    wait_for(
        lambda: batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["state"] == "DISABLED",
        what="the queue disabled",
    )
    screenshot(page, "queue")
    page.goto("/ui/usage?period=24h&group=job_definition")
    assert page.locator("svg.chart rect.ok").count() >= 1
    hints = page.locator(".hint").all_inner_texts()
    assert any(f"{ok}:1 requests 1 vCPU" in h for h in hints), hints
    prices = page.locator("table", has_text="per vCPU-hour").inner_text()
    assert "$0.024" in prices and "price_vcpu_hour (default), price_gib_hour (default)" in prices
    screenshot(page, "usage")


def test_actions_need_confirmation_without_script(ui_server, batch):
    """Without JavaScript the form leads to a confirmation page; a post from another site
    is refused."""
    import httpx

    _, queue = setup(batch)
    with httpx.Client(base_url=ui_server.endpoint, follow_redirects=False) as http:
        r = http.post(f"/ui/queues/{queue}/state", data={"state": "DISABLED"})
        assert r.status_code == 200 and "Please confirm" in r.text and "Disable job queue" in r.text
        assert batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["state"] == "ENABLED"
        r = http.post(
            f"/ui/queues/{queue}/state",
            data={"state": "DISABLED", "confirm": "yes"},
            headers={"Origin": "http://evil.example"},
        )
        assert r.status_code == 403
        r = http.post(f"/ui/queues/{queue}/state", data={"state": "DISABLED", "confirm": "yes"})
        assert r.status_code == 303 and r.headers["location"] == f"/ui/queues/{queue}"
        assert batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["state"] == "DISABLED"
        assert http.get("/ui/jobs/no-such-job").status_code == 404
