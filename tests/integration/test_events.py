"""Job state change events: their shape, the event stream with its cursor, webhooks that
receive every transition in order per job across a restart and a failing receiver, dead
letters, and the outbox reader's handling of PostgreSQL rows that commit late."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from helpers import register, setup_queue, wait_for, wait_job

from batchyard.api.model import batch_model
from support.shapes import problems

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def events_of(server, job_id: str, **params) -> list[dict]:
    with server.http() as http:
        r = http.get("/batchyard/v1/events", params={"jobId": job_id, "limit": 1000, **params})
        assert r.status_code == 200, r.text
        return r.json()["events"]


def history(server, job_id: str) -> list[str]:
    with server.http() as http:
        return [
            h["to"] for h in http.get(f"/batchyard/v1/jobs/{job_id}/history").json()["transitions"]
        ]


def test_event_shape_and_order(batch, server, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", "echo hi; exit 3"])
    job_id = batch.submit_job(jobName="evt", jobQueue=queue, jobDefinition=jd)["jobId"]
    wait_job(batch, job_id)
    events = events_of(server, job_id)
    assert [e["detail"]["status"] for e in events] == history(server, job_id)
    assert [e["detail"]["status"] for e in events][-3:] == ["STARTING", "RUNNING", "FAILED"]
    shape = batch_model().shape_for("JobDetail")
    for e in events:
        assert e["version"] == "0"
        assert e["detail-type"] == "Batch Job State Change"
        assert e["source"] == "aws.batch"
        assert e["account"] == "000000000000" and e["region"] == "us-east-1"
        assert e["resources"] == [e["detail"]["jobArn"]]
        assert e["detail"]["jobId"] == job_id and e["detail"]["jobName"] == "evt"
        assert TIME.match(e["time"]), e["time"]
        assert problems(e["detail"], shape, "detail") == []
    # as of each transition: no attempt before it ran, the exit code only at the end
    submitted, final = events[0]["detail"], events[-1]["detail"]
    assert submitted["attempts"] == [] and "exitCode" not in submitted.get("container", {})
    assert (
        final["container"]["exitCode"] == 3 and final["attempts"][0]["container"]["exitCode"] == 3
    )
    assert final["statusReason"] == "Essential container in task exited"
    # ids are stable: the same transition is the same event, whoever reads it
    again = events_of(server, job_id)
    assert [e["id"] for e in again] == [e["id"] for e in events]
    assert len({e["id"] for e in events}) == len(events)
    # filters: status and queue
    only = events_of(server, job_id, status="RUNNING")
    assert [e["detail"]["status"] for e in only] == ["RUNNING"]
    assert events_of(server, job_id, queue="no-such-queue") == []


def test_paging_with_the_cursor(batch, server, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"])
    ids = [
        batch.submit_job(jobName=f"p{i}", jobQueue=queue, jobDefinition=jd)["jobId"]
        for i in range(4)
    ]
    for j in ids:
        wait_job(batch, j)
    expected = [e["id"] for e in events_of(server, "", queue=queue)]
    assert len(expected) == 4 * 6
    seen, cursor = [], None
    with server.http() as http:
        while True:
            params = {"queue": queue, "limit": 5, **({"after": cursor} if cursor else {})}
            page = http.get("/batchyard/v1/events", params=params).json()
            seen += [e["id"] for e in page["events"]]
            if not page["events"]:
                break
            cursor = page["cursor"]
    assert seen == expected
    with server.http() as http:
        r = http.get("/batchyard/v1/events", params={"after": "x"})
        assert r.status_code == 400 and "cursor" in r.json()["message"]


def read_stream(server, params: dict, until, headers=None, timeout: float = 60):
    """Follow the SSE stream until ``until(events)``; returns (events, last id)."""
    events, last = [], None
    deadline = time.monotonic() + timeout
    with httpx.stream(
        "GET",
        f"{server.endpoint}/batchyard/v1/events",
        params={**params, "follow": "true"},
        headers=headers or {},
        timeout=httpx.Timeout(10, read=20),
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        data = []
        for line in r.iter_lines():
            if line.startswith("id:"):
                last = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                events.append(json.loads("".join(data)))
                data = []
                if until(events):
                    return events, last
            assert time.monotonic() < deadline, "the stream did not deliver in time"
    return events, last


def test_stream_resumes_from_its_cursor(batch, server, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["sh", "-c", "sleep 0.3"])
    ids = []

    def submit():
        time.sleep(0.5)
        for i in range(3):
            ids.append(batch.submit_job(jobName=f"s{i}", jobQueue=queue, jobDefinition=jd)["jobId"])

    threading.Thread(target=submit).start()
    first, last = read_stream(server, {"queue": queue}, lambda evs: len(evs) >= 5)
    assert last is not None
    for j in wait_for(lambda: ids if len(ids) == 3 else None):
        wait_job(batch, j)
    # reconnect as a browser would, with Last-Event-ID: the rest, nothing twice
    rest, _ = read_stream(
        server, {"queue": queue}, lambda evs: len(evs) >= 18 - 5, headers={"Last-Event-ID": last}
    )
    got = [e["id"] for e in first + rest]
    assert len(got) == len(set(got)) == 18
    per_job = {}
    for e in first + rest:
        per_job.setdefault(e["detail"]["jobId"], []).append(e["detail"]["status"])
    for j in ids:
        assert per_job[j] == history(server, j)


def test_cli_follows_events(batch, server, unique):
    queue = setup_queue(batch, unique)
    jd = register(batch, unique, ["true"])
    env = {"BATCHYARD_ENDPOINT": server.endpoint}

    proc = subprocess.Popen(
        [sys.executable, "-m", "batchyard", "events", "--follow", "-o", "json", "--queue", queue],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
        text=True,
    )
    try:
        time.sleep(1.5)  # connected, following from now on
        job_id = batch.submit_job(jobName="cli", jobQueue=queue, jobDefinition=jd)["jobId"]
        wait_job(batch, job_id)
        lines = []
        while len(lines) < 6:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(json.loads(line))
        assert [e["detail"]["status"] for e in lines] == history(server, job_id)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    listing = subprocess.run(
        [sys.executable, "-m", "batchyard", "events", "--job", job_id, "--since", "10m"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count(job_id) == 6 and "SUCCEEDED" in listing.stdout


# ---- webhooks ---------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on loopback that fails the first ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0, always_fail: bool = False) -> None:
        self.events: list[dict] = []
        self.requests = 0
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.headers: list[dict] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                with lock:
                    receiver.requests += 1
                    fail = receiver.always_fail or receiver.requests <= receiver.fail_first
                    if not fail:
                        receiver.events.append(json.loads(body))
                        receiver.headers.append(dict(self.headers))
                self.send_response(500 if fail else 200)
                self.end_headers()
                self.wfile.write(b"no" if fail else b"ok")

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def test_webhooks_every_transition_in_order_across_a_restart(new_server, unique):
    receiver = Receiver(fail_first=3)
    dead = Receiver(always_fail=True)
    hooks = [
        {"name": "main", "url": receiver.url, "backoff_seconds": 0.05, "secret": "s3cret"},
        {
            "name": "broken",
            "url": dead.url,
            "backoff_seconds": 0.01,
            "max_backoff_seconds": 0.02,
            "max_attempts": 2,
            "statuses": ["SUCCEEDED"],
        },
    ]
    server = new_server(webhooks=json.dumps(hooks))
    try:
        batch = server.client("batch")
        queue = setup_queue(batch, unique, max_vcpus=2)
        jd = register(batch, unique, ["sh", "-c", "sleep 0.05"], vcpus="0.25")
        ids = [
            batch.submit_job(jobName=f"w{i}", jobQueue=queue, jobDefinition=jd)["jobId"]
            for i in range(25)
        ]
        wait_for(lambda: len(receiver.events) >= 20, timeout=60, what="the first deliveries")
        server.restart()  # graceful, with deliveries in flight
        batch = server.client("batch")
        ids += [
            batch.submit_job(jobName=f"w{i}", jobQueue=queue, jobDefinition=jd)["jobId"]
            for i in range(25, 50)
        ]
        for j in ids:
            wait_job(batch, j, timeout=120)
        total = sum(len(history(server, j)) for j in ids)
        wait_for(
            lambda: len({e["id"] for e in receiver.events}) >= total,
            timeout=60,
            what=f"{total} distinct events at the receiver",
        )
        per_job: dict[str, list[str]] = {}
        seen = set()
        for e in receiver.events:
            if e["id"] in seen:  # at least once: a repeat is allowed, never a gap
                continue
            seen.add(e["id"])
            per_job.setdefault(e["detail"]["jobId"], []).append(e["detail"]["status"])
        for j in ids:
            assert per_job.get(j) == history(server, j), j
        assert receiver.requests >= total + 3  # the first three were refused and retried
        # a graceful restart repeats nothing
        assert len(receiver.events) == len(seen)
        h = receiver.headers[0]
        assert h["X-Batchyard-Event-Id"] == receiver.events[0]["id"]
        assert h["X-Batchyard-Signature"].startswith("sha256=")

        # the broken webhook dead-letters each SUCCEEDED event after 2 attempts, and goes on
        def dead_letters():
            with server.http() as http:
                found = http.get("/batchyard/v1/webhooks/dead-letters").json()["deadLetters"]
            return found if len(found) >= 50 else None

        letters = wait_for(dead_letters, timeout=60, what="50 dead letters")
        assert {d["jobId"] for d in letters} == set(ids)
        assert all(d["attempts"] == 2 and "HTTP 500" in d["lastError"] for d in letters)
        assert all(d["event"]["detail"]["status"] == "SUCCEEDED" for d in letters)
        with server.http() as http:
            state = {w["name"]: w for w in http.get("/batchyard/v1/webhooks").json()["webhooks"]}
        assert state["main"]["delivered"] >= total
        assert state["broken"]["deadLetters"] == 50
    finally:
        receiver.close()
        dead.close()


def test_webhook_signature(new_server, unique):
    import hashlib
    import hmac

    bodies: list[tuple[bytes, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            bodies.append((body, self.headers["X-Batchyard-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_port}/"
    try:
        server = new_server(webhooks=json.dumps([{"name": "signed", "url": url, "secret": "k"}]))
        batch = server.client("batch")
        queue = setup_queue(batch, unique)
        jd = register(batch, unique, ["true"])
        wait_job(batch, batch.submit_job(jobName="sig", jobQueue=queue, jobDefinition=jd)["jobId"])
        wait_for(lambda: len(bodies) >= 6, what="6 signed deliveries")
        for body, sig in bodies:
            assert sig == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    finally:
        http.shutdown()
        http.server_close()


# ---- the outbox on PostgreSQL: rows that commit late are not skipped ---------------------


@pytest.mark.postgres
def test_outbox_waits_for_rows_that_commit_late(pg_cluster):
    from sqlalchemy import text

    from batchyard.events.outbox import Outbox, Position
    from batchyard.store.db import Store

    store = Store(pg_cluster.create_database())
    try:
        store.migrate()
        outbox = Outbox(store)
        insert = text(
            "INSERT INTO job_transitions (job_seq, at, from_status, to_status) "
            "VALUES (1, 1, NULL, 'SUBMITTED') RETURNING id"
        )
        pos = Position(outbox.latest())
        late = store.engine.connect()
        tx = late.begin()
        late_id = late.execute(insert).scalar()  # id n, not committed yet
        with store.write() as conn:
            next_id = conn.execute(insert).scalar()  # id n + 1, committed
        assert next_id == late_id + 1
        assert outbox.read(pos) == [] and pos.id == late_id - 1  # waits at the gap
        assert outbox.read(pos) == []
        tx.commit()
        late.close()
        assert [r.id for r in outbox.read(pos)] == [late_id, next_id]

        # a row that never commits (rolled back) is skipped once its transaction is over
        doomed = store.engine.connect()
        tx = doomed.begin()
        doomed_id = doomed.execute(insert).scalar()
        with store.write() as conn:
            after_id = conn.execute(insert).scalar()
        assert outbox.read(pos) == []
        tx.rollback()
        doomed.close()
        assert [r.id for r in outbox.read(pos)] == [after_id] and after_id == doomed_id + 1
    finally:
        store.close()
