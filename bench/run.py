#!/usr/bin/env python3
"""batchyard's benchmark suite: one command, one report.

    python bench/run.py                      # everything, full sizes (about 45 minutes)
    python bench/run.py --quick              # small sizes, a smoke run (a few minutes)
    python bench/run.py --only throughput,latency --stores sqlite

Writes bench/results/<date>-<host>.md and .json, and copies them to latest.md / latest.json.
Every workload starts its own fresh server (fresh data dir, fresh database) and stops it and
its agent afterwards. Benchmarks never fail on a number: the exit status is 1 only when a
workload could not run (an exception), 0 otherwise; targets missed are reported, not fatal.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from harness import machine, report  # noqa: E402
from harness.context import Context  # noqa: E402
from harness.stats import fmt  # noqa: E402
from workloads import ALL  # noqa: E402

ORDER = ["ceiling", "throughput", "latency", "api", "resources", "scale", "slurm", "ray"]
STORES = ["sqlite", "postgresql"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes (CI smoke runs)")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the test's sizes
    p.add_argument(
        "--only",
        default=",".join(ORDER),
        help=f"comma-separated workloads (default: all): {','.join(ORDER)}",
    )
    p.add_argument(
        "--stores",
        default=",".join(STORES),
        help="comma-separated stores (default: sqlite,postgresql)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=BENCH / "results",
        help="where the report goes (default: bench/results)",
    )
    p.add_argument(
        "--no-latest", action="store_true", help="do not overwrite latest.md / latest.json"
    )
    p.add_argument(
        "--committed",
        action="store_true",
        help="measure the committed HEAD (a `git archive` copy in the scratch dir), not the "
        "working tree: for a shared tree that others are editing",
    )
    p.add_argument(
        "--code",
        type=Path,
        metavar="SRC",
        help="measure the batchyard package found in SRC (a copy of some tree's src/)",
    )
    p.add_argument(
        "--snapshot",
        action="store_true",
        help="measure a copy of the working tree's src/ taken at the start, so that edits "
        "made during a long run do not change the code under test",
    )
    p.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="measure nothing: merge earlier reports (later ones win per workload and store) "
        "into one report, e.g. when Slurm ran separately",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the servers' data dirs and logs (in the scratch dir) for a look",
    )
    args = p.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    for w in args.only:
        if w not in ALL:
            p.error(f"unknown workload {w!r}; choose from {', '.join(ORDER)}")
    for s in args.stores:
        if s not in STORES:
            p.error(f"unknown store {s!r}; choose from {', '.join(STORES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = argv if argv is not None else sys.argv[1:]
    if args.combine:
        data = combine(args.combine)
        date = data["meta"]["date"][:16].replace("T", "-").replace(":", "")
        stem = f"{date}-{data['meta']['host']}-combined"
        _, mpath = report.write(args.out, stem, data, render(data), latest=not args.no_latest)
        print(f"report: {mpath}", file=sys.stderr)
        return 0
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    scratch = Path(tempfile.mkdtemp(prefix="batchyard-bench-"))
    try:
        return measure(args, mode, scratch)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def measure(args: argparse.Namespace, mode: str, scratch: Path) -> int:
    ctx = Context(mode=mode, root=scratch, stores=args.stores, keep=args.keep)
    meta = machine.info(REPO)
    meta.update(mode=mode, workloads=args.only, stores=args.stores)
    meta["command"] = " ".join(["python bench/run.py", *args.argv])
    if args.code:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(args.code.resolve()), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        meta["source"] = f"the copy of src/ in {args.code}"
    elif args.committed or args.snapshot:
        src = snapshot(scratch, committed=args.committed)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        meta["source"] = (
            f"committed HEAD {meta['git_commit'][:12]} (git archive)"
            if args.committed
            else "a copy of the working tree's src/ taken at the start"
            + (" (with uncommitted changes)" if meta["git_dirty"] else "")
        )
    else:
        dirty = " with uncommitted changes" if meta["git_dirty"] else ""
        meta["source"] = f"the working tree{dirty}"
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    timing: dict[str, float] = {}
    load: dict[str, list[float]] = {}
    started = time.monotonic()
    ctx.log(
        f"benchmark run ({mode}) of {', '.join(args.only)} on {', '.join(args.stores)}; "
        f"scratch dir {scratch}"
    )
    try:
        for name in [w for w in ORDER if w in args.only]:
            mod = ALL[name]
            t0 = time.monotonic()
            load[name] = [os.getloadavg()[0]]
            targets = args.stores if mod.PER_STORE else [None]
            for store in targets:
                label = f"{name}/{store}" if store else name
                ctx.log(f"== {label}")
                try:
                    r = mod.run(ctx, store) if store else mod.run(ctx)
                    if store:
                        results.setdefault(name, {})[store] = r
                    else:
                        results[name] = r
                except Exception as e:  # a workload that cannot run is reported, not hidden
                    errors[label] = "".join(traceback.format_exception_only(e)).strip()
                    ctx.log(f"{label} failed: {errors[label]}")
                    traceback.print_exc()
            timing[name] = time.monotonic() - t0
            load[name].append(os.getloadavg()[0])
    except KeyboardInterrupt:
        errors["interrupted"] = "the run was interrupted (Ctrl-C); the report is partial"
    finally:
        ctx.close()
    meta["load_average_at_end"] = list(os.getloadavg())
    meta["seconds"] = time.monotonic() - started
    data = {
        "meta": meta,
        "targets": targets_table(results),
        "results": results,
        "errors": errors,
        "problems": ctx.problems,
        "workload_seconds": timing,
        "load_average_1min_before_after": load,
    }
    stem = f"{time.strftime('%Y-%m-%d-%H%M', time.gmtime())}-{meta['host']}"
    if mode == "tiny":
        stem += "-tiny"
    md = render(data)
    jpath, mpath = report.write(args.out, stem, data, md, latest=not args.no_latest)
    ctx.log(f"report: {mpath} and {jpath} ({meta['seconds']:.0f} s)")
    return 1 if errors else 0


def snapshot(scratch: Path, committed: bool) -> Path:
    """A copy of src/ in the scratch dir — the committed tree's, or the working tree's as it
    is now; servers import batchyard from there (PYTHONPATH comes before the editable
    install's path)."""
    dest = scratch / "code"
    dest.mkdir()
    if not committed:
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
        shutil.copytree(REPO / "src", dest / "src", ignore=ignore)
        return dest / "src"
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", "HEAD", "src"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "src"


def combine(paths: list[Path]) -> dict[str, Any]:
    """Earlier reports merged into one: results per workload (and store), later files win."""
    runs = [json.loads(p.read_text()) for p in paths]
    out = runs[0]
    meta = out["meta"]
    meta["combined_from"] = [p.name for p in paths]
    meta["commands"] = [d["meta"].get("command", "?") for d in runs]
    for d in runs[1:]:
        for name, r in d["results"].items():
            if ALL[name].PER_STORE:
                out["results"].setdefault(name, {}).update(r)
            else:
                out["results"][name] = r
        for key in ("workload_seconds", "load_average_1min_before_after", "errors"):
            out[key].update(d[key])
        out["problems"] += [p for p in d["problems"] if p not in out["problems"]]
        m = d["meta"]
        meta["workloads"] = [w for w in ORDER if w in meta["workloads"] or w in m["workloads"]]
        meta["stores"] = [s for s in STORES if s in meta["stores"] or s in m["stores"]]
        meta["date"] = max(meta["date"], m["date"])
        meta["seconds"] += m["seconds"]
        meta["load_average_at_end"] = m["load_average_at_end"]
        if m.get("source") and m["source"] not in meta.get("source", ""):
            meta["source"] = f"{meta.get('source')}; then {m['source']}"
    # an error is superseded by a later result for the same workload (and store)
    for label in list(out["errors"]):
        name, _, store = label.partition("/")
        r = out["results"].get(name)
        if r is not None and (not store or store in r):
            del out["errors"][label]
    out["targets"] = targets_table(out["results"])
    return out


# ---- targets -----------------------------------------------------------------------------


def _get(d: Any, *path: Any) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def targets_table(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 6's targets, each next to what this run measured (None: not measured)."""
    rows: list[dict[str, Any]] = []

    def add(
        store: str,
        what: str,
        target: str,
        measured: float | None,
        shown: str,
        met: bool | None,
        stretch: bool | None = None,
    ) -> None:
        rows.append(
            {
                "store": store,
                "what": what,
                "target": target,
                "measured": measured,
                "shown": shown,
                "met": met,
                "stretch_met": stretch,
            }
        )

    for store in STORES:
        tp = _get(results, "throughput", store, "variants", "true")
        if tp:
            ratio = tp["ratio_to_xargs"]
            add(
                store,
                "trivial-job throughput vs xargs -P2",
                "≥ 50% (stretch 80%)",
                ratio,
                f"{ratio:.0%}",
                ratio >= 0.5,
                ratio >= 0.8,
            )
        lat = _get(results, "latency", store, "submit_to_running_recorded_ms", "p50")
        if lat is not None:
            add(
                store,
                "p50 submit→RUNNING, idle server",
                "≤ 10 ms (stretch 5 ms)",
                lat,
                f"{lat:.1f} ms",
                lat <= 10,
                lat <= 5,
            )
        api = _get(results, "api", store, "points", "SubmitJob", "16", "requests_per_second")
        if api is not None:
            add(
                store,
                "SubmitJob/s, 16 clients",
                "≥ 2,000 (SQLite)",
                api,
                f"{api:,.0f}/s",
                api >= 2000 if store == "sqlite" else None,
            )
        sc = _get(results, "scale", store)
        if sc and "backlog_jobs" in sc:
            rss = sc["server_rss_mib"]["max"]
            add(
                store,
                f"server RSS with {sc['backlog_jobs']:,} queued jobs",
                "≤ 1 GiB (for 1,000,000)",
                rss,
                f"{rss:,.0f} MiB",
                rss <= 1024,
            )
            ratio = sc.get("drain_vs_empty")
            if ratio is not None:
                add(
                    store,
                    "dispatch throughput with the backlog vs empty queue",
                    "≥ 80%",
                    ratio,
                    f"{ratio:.0%}",
                    ratio >= 0.8,
                )
    slurm = results.get("slurm") or {}
    for store in STORES:
        tp = _get(results, "throughput", store, "variants", "true", "jobs_per_second")
        lat = _get(results, "latency", store, "submit_to_running_recorded_ms", "p50")
        for profile, s in slurm.get("profiles", {}).items():
            srate = _get(s, "throughput", "jobs_per_second")
            if tp and srate:
                x = tp / srate
                add(store, f"throughput vs Slurm ({profile})", "≥ 10×", x, f"{x:,.0f}×", x >= 10)
            slat = _get(s, "latency", "submit_to_start_ms", "p50")
            if lat and slat:
                x = slat / lat
                add(
                    store,
                    f"p50 submit→start vs Slurm ({profile})",
                    "≥ 10× faster",
                    x,
                    f"{x:,.0f}×",
                    x >= 10,
                )
    return rows


# ---- the markdown page ----------------------------------------------------------------------


def _run_line(m: dict[str, Any]) -> str:
    if m.get("combined_from"):
        runs = "; ".join(
            f"`{c}` → {f}" for c, f in zip(m["commands"], m["combined_from"], strict=True)
        )
        return f"- **Runs (combined, later ones win):** {runs}; {m['seconds'] / 60:.1f} min in all"
    return f"- **Run:** `{m.get('command', 'python bench/run.py')}`, {m['seconds'] / 60:.1f} min"


def render(data: dict[str, Any]) -> str:
    m = data["meta"]
    la0, la1 = m["load_average_at_start"], m["load_average_at_end"]
    lines = [
        f"# batchyard benchmark — {m['date']} ({m['mode']} run)",
        "",
        f"- **Machine:** {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"{m['os']}, kernel {m['kernel']}, host `{m['host']}`",
        f"- **Software:** {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
        + "; "
        + "; ".join(f"{k}: {v}" for k, v in m["tools"].items()),
        f"- **Code measured:** {m.get('source', 'the working tree')} "
        f"(commit `{m['git_commit'][:12]}`)",
        _run_line(m),
        f"- **Load average (1/5/15 min):** {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f} at the start, "
        f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f} at the end. On a quiet 2-core machine the "
        "1-minute figure stays near 0 before a run; anything well above that means other work "
        "shared the CPUs and the figures below are pessimistic.",
        "",
        "## Targets (issue 6)",
        "",
    ]
    rows = []
    for t in data["targets"]:
        met = {True: "✔", False: "✘", None: "–"}[t["met"]]
        if t["stretch_met"]:
            met += " (stretch ✔)"
        rows.append([t["store"], t["what"], t["target"], t["shown"], met])
    lines += (
        report.md_table(["store", "figure", "target", "measured", "met"], rows)
        if rows
        else ["(nothing measured that has a target)", ""]
    )
    for name in ORDER:
        if name not in data["results"]:
            continue
        mod = ALL[name]
        secs = data["workload_seconds"].get(name)
        lla = data["load_average_1min_before_after"].get(name, [0, 0])
        lines += [
            f"## {mod.TITLE}",
            "",
            f"_{fmt(secs, 0)} s; 1-min load average {lla[0]:.2f} before, {lla[-1]:.2f} after._",
            "",
        ]
        lines += mod.markdown(data["results"][name])
    if data["errors"]:
        lines += ["## Workloads that could not run", ""]
        lines += [f"- **{k}**: `{v}`" for k, v in data["errors"].items()] + [""]
    if data["problems"]:
        lines += ["## Problems seen in the server", ""]
        lines += [f"- {p}" for p in data["problems"]] + [""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.exit(main())
