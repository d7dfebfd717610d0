"""The quickstart's workload: a map-reduce over a real data set every machine with Python has,
the Python standard library's own source code (no download, same answer on every run).

``count`` is one shard of an array job: it takes its share of the modules (balanced by size,
decided the same way by every shard) and counts lines, code, comments, functions, classes
and the modules they import, writing ``shard-<index>.json``. ``merge`` is the dependent job:
it checks every shard is there, adds them up and prints the report.

    python3 workload.py count --out DIR --shards N  # one shard
    python3 workload.py merge --out DIR --shards N  # all of them

``count`` reads its shard's index from ``AWS_BATCH_JOB_ARRAY_INDEX``, as any array child.
The file is a standalone script (the standard library only): the quickstart copies it where
the jobs can read it, since they may run as another user with another Python.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import sysconfig
from collections import Counter
from pathlib import Path
from typing import Any

SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
_IMPORT = re.compile(
    r"^[ \t]*(?:import[ \t]+([A-Za-z_][\w.]*)|from[ \t]+([A-Za-z_][\w.]*)[ \t]+import)", re.M
)
_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)", re.M)
_CLASS = re.compile(r"^[ \t]*class[ \t]+[A-Za-z_]", re.M)


def stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def modules(root: Path) -> list[tuple[str, int]]:
    """Every module of the standard library (tests and installed packages left out), as
    (path relative to ``root``, size in bytes), sorted by path."""
    found: list[tuple[str, int]] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in files:
            if name.endswith(".py"):
                path = Path(directory) / name
                found.append((str(path.relative_to(root)), path.stat().st_size))
    return sorted(found)


def shard_of(files: list[tuple[str, int]], shards: int) -> list[list[str]]:
    """Split files into ``shards`` lists of about the same total size: largest first, each
    to the lightest shard so far (ties: the lowest index). Deterministic."""
    loads = [0] * shards
    out: list[list[str]] = [[] for _ in range(shards)]
    for path, size in sorted(files, key=lambda f: (-f[1], f[0])):
        i = min(range(shards), key=lambda k: (loads[k], k))
        loads[i] += size
        out[i].append(path)
    return out


def count_file(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    blank = sum(1 for line in lines if not line.strip())
    comments = sum(1 for line in lines if line.lstrip().startswith("#"))
    imports = Counter(
        (a or b).split(".")[0] for a, b in _IMPORT.findall(text) if (a or b) != "__future__"
    )
    return {
        "lines": len(lines),
        "blank": blank,
        "comments": comments,
        "functions": len(_DEF.findall(text)),
        "classes": len(_CLASS.findall(text)),
        "imports": imports,
    }


def count(out: Path, shards: int, index: int) -> dict[str, Any]:
    root = stdlib()
    mine = shard_of(modules(root), shards)[index]
    total: dict[str, Any] = {
        "shard": index,
        "files": 0,
        "bytes": 0,
        "lines": 0,
        "blank": 0,
        "comments": 0,
        "functions": 0,
        "classes": 0,
        "imported_by": Counter(),
        "largest": [],
    }
    for rel in mine:
        data = (root / rel).read_bytes()
        found = count_file(data.decode("utf-8", errors="replace"))
        total["files"] += 1
        total["bytes"] += len(data)
        for key in ("lines", "blank", "comments", "functions", "classes"):
            total[key] += found[key]
        total["imported_by"].update(set(found["imports"]))  # files importing each module
        total["largest"].append((found["lines"], rel))
    total["largest"] = sorted(total["largest"], reverse=True)[:10]
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".shard-{index}.json.tmp"
    tmp.write_text(json.dumps(total))
    tmp.replace(out / f"shard-{index}.json")
    print(
        f"shard {index} of {shards}: {total['files']} modules, {total['lines']:,} lines, "
        f"{total['functions']:,} functions, {total['classes']:,} classes "
        f"({total['bytes'] / 1e6:.1f} MB)"
    )
    return total


def merge(out: Path, shards: int) -> str:
    parts = []
    for i in range(shards):
        path = out / f"shard-{i}.json"
        if not path.exists():
            raise SystemExit(f"shard {i} is missing ({path}); did its job succeed?")
        parts.append(json.loads(path.read_text()))
    files = sum(p["files"] for p in parts)
    lines = sum(p["lines"] for p in parts)
    blank = sum(p["blank"] for p in parts)
    comments = sum(p["comments"] for p in parts)
    size = sum(p["bytes"] for p in parts)
    imported: Counter[str] = Counter()
    for p in parts:
        imported.update(p["imported_by"])
    largest = sorted((tuple(x) for p in parts for x in p["largest"]), reverse=True)[:5]
    code = lines - blank - comments
    version = platform.python_version()
    report = [
        f"Python {version} standard library, counted in {shards} shards:",
        f"  {files:,} modules, {size / 1e6:.1f} MB, {lines:,} lines "
        f"({code:,} code, {comments:,} comments, {blank:,} blank)",
        f"  {sum(p['functions'] for p in parts):,} functions and "
        f"{sum(p['classes'] for p in parts):,} classes",
        "  most imported modules (by how many modules import them):",
    ]
    for name, n in sorted(imported.items(), key=lambda kv: (-kv[1], kv[0]))[:8]:
        report.append(f"    {name:<12} {n:>4}  {'█' * max(1, round(40 * n / files))}")
    report.append("  largest modules:")
    for n, rel in largest:
        report.append(f"    {rel:<28} {n:>6,} lines")
    text = "\n".join(report)
    (out / "result.txt").write_text(text + "\n")
    print(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="workload.py")
    parser.add_argument("step", choices=["count", "merge"])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--shards", required=True, type=int)
    args = parser.parse_args(argv)
    if args.step == "count":
        index = int(os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX", "0"))
        count(args.out, args.shards, index)
    else:
        merge(args.out, args.shards)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
