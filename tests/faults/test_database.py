"""The database connection breaks under the scheduler (PostgreSQL restarted, a connection
killed by an administrator): scheduling starts over from the store and the jobs that were
running are adopted, not lost and not run twice."""

from __future__ import annotations

import psycopg
import pytest
from helpers import assert_children_ran_once, register, setup_queue, wait_for, wait_job


def test_connections_killed_under_a_running_array(new_server, unique, store):
    if store != "postgresql":
        pytest.skip("connections to kill: PostgreSQL only")
    server = new_server()
    batch = server.client()
    queue = setup_queue(batch, unique, max_vcpus=2)
    jd = register(batch, unique, ["sleep", "0.05"], vcpus="1")
    parent = batch.submit_job(
        jobName="through", jobQueue=queue, jobDefinition=jd, arrayProperties={"size": 200}
    )["jobId"]

    def done() -> int:
        summary = batch.describe_jobs(jobs=[parent])["jobs"][0]["arrayProperties"]
        return summary["statusSummary"].get("SUCCEEDED", 0)

    url = server.database_url.replace("postgresql+psycopg://", "postgresql://")
    database = url.rsplit("/", 1)[1]
    for round_ in range(3):
        wait_for(lambda r=round_: done() > 30 * (r + 1), timeout=60, what="children to finish")
        with psycopg.connect(url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()[0]
        assert killed > 0
    assert wait_job(batch, parent, timeout=180)["status"] == "SUCCEEDED"
    assert_children_ran_once(batch, parent, 200)
