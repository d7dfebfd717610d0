"""The benchmark suite (bench/) still runs: a tiny run of the ceiling and throughput
workloads on SQLite (about 10-20 s), and its report. Benchmarks never fail on a number:
these tests check that the instrument works, not how fast batchyard is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from harness.stats import percentile, summary  # noqa: E402


def test_percentiles_interpolate_between_ranks():
    assert percentile([], 50) is None
    assert percentile([7], 99) == 7
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 95) == 95
    s = summary([3.0, 1.0, 2.0])
    assert (s["n"], s["min"], s["p50"], s["max"]) == (3, 1.0, 2.0, 3.0)


def test_targets_are_judged_from_the_results():
    import run

    results = {
        "throughput": {
            "sqlite": {"variants": {"true": {"ratio_to_xargs": 0.6, "jobs_per_second": 1200.0}}}
        },
        "latency": {"sqlite": {"submit_to_running_recorded_ms": {"p50": 12.0}}},
        "slurm": {
            "profiles": {
                "default": {
                    "throughput": {"jobs_per_second": 1.0},
                    "latency": {"submit_to_start_ms": {"p50": 1800}},
                }
            }
        },
    }
    rows = {r["what"]: r for r in run.targets_table(results)}
    assert rows["trivial-job throughput vs xargs -P2"]["met"] is True
    assert rows["trivial-job throughput vs xargs -P2"]["stretch_met"] is False
    assert rows["p50 submit→RUNNING, idle server"]["met"] is False
    assert rows["throughput vs Slurm (default)"]["measured"] == 1200.0
    assert rows["p50 submit→start vs Slurm (default)"]["measured"] == 150.0


@pytest.mark.timeout(120)
def test_a_tiny_run_measures_and_reports(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--tiny",
            "--only",
            "ceiling,throughput",
            "--stores",
            "sqlite",
            "--out",
            str(tmp_path),
            "--no-latest",
        ],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [report] = tmp_path.glob("*.json")
    data = json.loads(report.read_text())
    assert data["errors"] == {} and data["problems"] == []
    assert data["meta"]["cores"] and data["meta"]["git_commit"]
    assert data["results"]["ceiling"]["methods"]["posix_spawn"]["per_second"] > 0
    tp = data["results"]["throughput"]["sqlite"]
    for name in ("true", "echo"):
        v = tp["variants"][name]
        assert v["status"] == "SUCCEEDED" and v["succeeded"] == tp["n"], v
        assert v["jobs_per_second"] > 0 and v["ratio_to_xargs"] > 0
    assert tp["variants"]["echo"]["output_check"] is True
    md = report.with_suffix(".md").read_text()
    assert "## Targets (issue 6)" in md and "batchyard/xargs" in md
    assert not list(tmp_path.glob("latest.*"))
