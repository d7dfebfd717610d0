"""Usage and cost: what a job really used (a known allocation and CPU burn), what it cost
at the configured prices, right-sizing hints, grouping, CSV and the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import shutil
import subprocess
import sys

from helpers import register, setup_queue, wait_job
from markupsafe import escape

# Jobs may run as another user (isolation), who cannot read a Python under root's home.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")

BURN = """
import time
block = b"x" * (200 * 2**20)  # ~200 MiB, every page written
start = time.process_time()
while time.process_time() - start < 1.0:
    pass
print(len(block))
"""


def attempts(server, since: str = "30m") -> list[dict]:
    with server.http() as http:
        r = http.get("/batchyard/v1/usage/attempts", params={"since": since})
    assert r.status_code == 200, r.text
    return r.json()["attempts"]


def test_a_job_that_allocates_and_burns_shows_what_it_used(batch, server, unique):
    queue = setup_queue(batch, unique, max_vcpus=2)
    jd = register(batch, unique, [PYTHON, "-c", BURN], vcpus="1", memory="1024")
    job_id = batch.submit_job(jobName="burn", jobQueue=queue, jobDefinition=jd)["jobId"]
    job = wait_job(batch, job_id)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    (a,) = [a for a in attempts(server) if a["jobId"] == job_id]
    assert 0.9 <= a["cpuSeconds"] <= 1.8, a
    assert 195 <= a["peakMemoryMib"] <= 330, a
    assert a["measuredBy"] in ("cgroup", "rusage")
    assert a["wallSeconds"] >= 1.0
    assert a["vcpus"] == 1 and a["memoryMib"] == 1024
    assert a["jobDefinition"] == f"{jd}:1" and a["queue"] == queue
    assert a["jobDefinitionLabel"] == f"{jd}:1"
    assert a["priceSource"] == "price_vcpu_hour (default), price_gib_hour (default)"
    # cost: the reservation priced (defaults: $0.024 per vCPU-hour, $0.006 per GiB-hour)
    hours = a["wallSeconds"] / 3600
    assert abs(a["cost"] - (1 * 0.024 + 1 * 0.006) * hours) < 1e-9
    used = (
        min(1, a["cpuSeconds"] / a["wallSeconds"]) * 0.024 + a["peakMemoryMib"] / 1024 * 0.006
    ) * hours
    assert abs(a["waste"] - (a["cost"] - used)) < 1e-9
    assert 0 < a["waste"] < a["cost"]
    # the dashboard's job page shows the same figures
    with server.http() as http:
        page = http.get(f"/ui/jobs/{job_id}").text
    assert f"{a['cpuSeconds']:.2f} s" in page and f"{a['peakMemoryMib']:.0f} MiB" in page


def test_summaries_hints_csv_and_cli(batch, server, unique):
    queue = setup_queue(batch, unique, max_vcpus=2)
    idle = register(batch, unique, ["sleep", "1.2"], vcpus="1", memory="1024")
    team = unique("team")
    ids = [
        batch.submit_job(
            jobName=f"idle{i}", jobQueue=queue, jobDefinition=idle, tags={"team": team}
        )["jobId"]
        for i in range(3)
    ]
    for j in ids:
        assert wait_job(batch, j)["status"] == "SUCCEEDED"
    ref = f"{idle}:1"
    with server.http() as http:
        by_def = http.get(
            "/batchyard/v1/usage", params={"groupBy": "job_definition", "since": "30m"}
        ).json()
        (g,) = [g for g in by_def["groups"] if g["key"] == ref]
        assert g["label"] == ref  # a registered definition reads as name:revision
        assert {
            "vcpuHour": 0.024,
            "gibHour": 0.006,
            "source": "price_vcpu_hour (default), price_gib_hour (default)",
        }.items() <= next(p for p in by_def["prices"] if p["vcpuHour"] == 0.024).items()
        assert g["attempts"] == 3 and g["jobs"] == 3 and g["failedAttempts"] == 0
        assert g["cpuEfficiency"] < 0.1 and g["memoryEfficiency"] < 0.1
        assert g["cost"] > g["waste"] > 0.8 * g["cost"]
        assert by_def["currency"] == "USD"
        by_tag = http.get("/batchyard/v1/usage", params={"groupBy": "tag:team", "since": "30m"})
        (t,) = [x for x in by_tag.json()["groups"] if x["key"] == team]
        assert t["jobs"] == 3 and abs(t["cost"] - g["cost"]) < 1e-9
        hints = http.get("/batchyard/v1/usage/hints", params={"since": "30m"}).json()["hints"]
        mine = {h["resource"]: h for h in hints if h["jobDefinition"] == ref}
        cpu, mem = mine["vcpus"], mine["memory"]
        assert cpu["kind"] == "over-request" and cpu["requested"] == 1 and cpu["suggested"] == 0.25
        assert cpu["p95"] < 0.05 and cpu["attempts"] == 3 and cpu["saving"] > 0
        assert cpu["message"].startswith(f"job definition {ref} requests 1 vCPU; p95 use 0.0")
        assert "over 3 attempts" in cpu["message"] and "Request 0.25 vCPUs: $" in cpu["message"]
        assert cpu["message"].endswith(", at $0.024 per vCPU-hour."), cpu
        assert mem["kind"] == "over-request" and mem["requested"] == 1024
        assert mem["suggested"] < 1024 and mem["suggested"] % 64 == 0
        rows = list(
            csv.DictReader(
                io.StringIO(
                    http.get(
                        "/batchyard/v1/usage",
                        params={"groupBy": "queue", "since": "30m", "format": "csv"},
                    ).text
                )
            )
        )
        (row,) = [r for r in rows if r["key"] == queue]
        assert int(row["attempts"]) == 3 and float(row["cost"]) > 0
        bad = http.get("/batchyard/v1/usage", params={"groupBy": "colour"})
        assert bad.status_code == 400 and "groupBy" in bad.json()["message"]

    env = {**os.environ, "BATCHYARD_ENDPOINT": server.endpoint}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "batchyard",
            "cost",
            "-g",
            "job-definition",
            "--since",
            "30m",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert any(g["key"] == ref and g["attempts"] == 3 for g in data["groups"])
    table = subprocess.run(
        [sys.executable, "-m", "batchyard", "usage", "-g", "job-definition", "--since", "30m"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=60,
    )
    assert table.returncode == 0, table.stderr
    assert ref in table.stdout and "Right-sizing" in table.stdout
    assert f"job definition {ref} requests 1 vCPU" in table.stdout


def test_inline_definitions_read_as_their_command_and_the_prices_say_where_from(new_server, unique):
    """`batchyard submit -- CMD` registers a definition named by a hash; the summaries, the
    hints and the CLI name it by what it runs, and say which prices the costs used."""
    server = new_server(price_vcpu_hour=0.05)
    batch = server.client()
    queue = setup_queue(batch, unique, max_vcpus=2)
    ce = batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["computeEnvironmentOrder"]
    ce_name = ce[0]["computeEnvironment"].rsplit("/", 1)[-1]
    command = ["sh", "-c", "sleep 1.2; echo right-sizing is done", "marker"]
    env = {**os.environ, "BATCHYARD_ENDPOINT": server.endpoint, "COLUMNS": "200"}

    def cli(*args: str) -> str:
        run = subprocess.run(
            [sys.executable, "-m", "batchyard", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    args = ["submit", "-q", queue, "--vcpus", "1", "--memory", "1024", "--", *command]
    ids = [cli(*args).split()[0] for _ in range(3)]
    for j in ids:
        assert wait_job(batch, j)["status"] == "SUCCEEDED"
    label = "inline: " + shlex.join(command)[:29] + "…"
    with server.http() as http:
        summary = http.get(
            "/batchyard/v1/usage", params={"groupBy": "job_definition", "since": "30m"}
        ).json()
        (g,) = summary["groups"]
        assert g["key"].startswith("batchyard-inline-") and g["label"] == label
        (price,) = summary["prices"]
        assert price == {
            "computeEnvironment": ce_name,
            "vcpuHour": 0.05,
            "gibHour": 0.006,
            "source": "price_vcpu_hour (configured), price_gib_hour (default)",
        }
        hours = g["wallHours"]
        assert abs(g["cost"] - (1 * 0.05 + 1 * 0.006) * hours) < 1e-9
        hints = http.get("/batchyard/v1/usage/hints", params={"since": "30m"}).json()["hints"]
        cpu = next(h for h in hints if h["resource"] == "vcpus")
        assert cpu["label"] == label and cpu["jobDefinition"] == g["key"]
        subject = f"`batchyard submit -- {label.removeprefix('inline: ')}`"
        assert cpu["message"].startswith(f"{subject} requests 1 vCPU; p95 use 0.0"), cpu
        assert "over 3 attempts in the last 30 minutes." in cpu["message"], cpu
        assert "Request 0.25 vCPUs (--vcpus 0.25): $" in cpu["message"], cpu
        assert cpu["message"].endswith(
            "less reserved over the same period, at $0.05 per vCPU-hour."
        )
        mem = next(h for h in hints if h["resource"] == "memory")
        assert f"(--memory {mem['suggested']:g})" in mem["message"], mem
        assert mem["message"].endswith(" at $0.006 per GiB-hour."), mem
        page = http.get("/ui/usage", params={"period": "24h", "group": "job_definition"}).text
        assert str(escape(label)) in page and "price_vcpu_hour (configured)" in page
    table = cli("cost", "-g", "job-definition", "--since", "30m")
    assert label in table and "batchyard-inline-" not in table, table
    assert "Prices applied" in table and ce_name in table and "$0.05 per vCPU" in table
    assert "price_vcpu_hour (configured), price_gib_hour (default)" in table
    assert "BATCHYARD_PRICE_VCPU_HOUR" in table and "GPUs are not priced." in table
    usage = cli("usage", "-g", "job-definition", "--since", "30m")
    assert f"{subject} requests 1 vCPU" in usage and "(--vcpus 0.25)" in usage, usage
