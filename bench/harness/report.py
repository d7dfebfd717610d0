"""The report: one JSON document and one markdown page per run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return [*out, ""]


def write(
    out_dir: Path, stem: str, data: dict[str, Any], markdown: str, latest: bool = True
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    base, n = stem, 1
    while (out_dir / f"{stem}.json").exists() or (out_dir / f"{stem}.md").exists():
        n += 1  # two runs ending in the same minute: never overwrite a report
        stem = f"{base}-{n}"
    j, m = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    tmp = out_dir / f"{stem}.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(j)
    m.write_text(markdown)
    if latest:
        shutil.copyfile(m, out_dir / "latest.md")
        shutil.copyfile(j, out_dir / "latest.json")
    return j, m
