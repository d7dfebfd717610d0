"""Small statistics helpers (no numpy: the suite runs with batchyard's own dependencies)."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        return None
    s = sorted(values)
    if len(s) == 1:
        return float(s[0])
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, min, p50, p95, p99, max and mean of a sample."""
    return {
        "n": len(values),
        "min": min(values) if values else None,
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def others(result: dict | None) -> str:
    """The CPU other work took during a measurement, in cores (see harness/meter.py)."""
    if not result:
        return "–"
    return f"{result['others_cores']:.2f}"


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "–"
    if abs(value) >= 100 and digits <= 1:
        return f"{value:,.0f}{unit}"
    return f"{value:,.{digits}f}{unit}"
