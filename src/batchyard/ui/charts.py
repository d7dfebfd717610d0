"""Charts as SVG, generated on the server: no chart library to ship, nothing to build, and
the page shows them even without JavaScript. Colours come from CSS classes (dashboard.css),
so the charts follow the page's theme; every bar and point has a <title> for a tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

W, H = 480, 200  # the default viewBox: a chart in a third of a wide page
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


def nice_max(value: float) -> float:
    """The smallest 1/2/2.5/5 × 10^k at or above ``value`` (an axis' top)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp + 1e-12:
            return step * exp
    return 10 * exp


def money_axis(symbol: str) -> Callable[[float], str]:
    def fmt(v: float) -> str:
        if v == 0:
            return f"{symbol}0"
        if abs(v) >= 1:
            return f"{symbol}{v:,.2f}".rstrip("0").rstrip(".")
        digits = max(2, 2 - math.floor(math.log10(abs(v))))
        return f"{symbol}{v:.{digits}f}".rstrip("0")

    return fmt


def _num(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    if abs(v) < 0.01:
        return f"{v:.3g}"
    return f"{v:g}" if v == int(v) else f"{v:.2f}".rstrip("0").rstrip(".")


def _frame(top: float, fmt: Callable[[float], str], title: str, w: int) -> tuple[list[str], int]:
    """The SVG's opening, title and horizontal grid with its labels; and the left margin
    those labels need."""
    left = max(LEFT, 7 * max(len(fmt(top * i / 4)) for i in range(5)) + 10)
    out = [
        f'<svg class="chart" viewBox="0 0 {w} {H}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    plot_h = H - TOP - BOTTOM
    for i in range(5):
        v = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<line class="grid" x1="{left}" x2="{w - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(v))}</text>"
        )
    return out, left


def bars(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    title: str,
    fmt: Callable[[float], str] = _num,
    every: int | None = None,
    width: int = W,
) -> str:
    """Stacked bars: ``series`` is (name, css class, values per label)."""
    n = len(labels)
    if n == 0:
        return empty(title)
    totals = [sum(s[2][i] for s in series) for i in range(n)]
    top = nice_max(max(totals) if totals else 0)
    out, left = _frame(top, fmt, title, width)
    plot_w, plot_h = width - left - RIGHT, H - TOP - BOTTOM
    slot = plot_w / n
    bar = max(1.0, slot * 0.8)
    every = every or max(1, math.ceil(n / (width / 80)))
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar) / 2
        y: float = TOP + plot_h
        parts = []
        for name, css, values in series:
            v = values[i]
            if v <= 0:
                continue
            h = plot_h * v / top
            y -= h
            tip = f"{label}: {fmt(v)} {name}"
            out.append(
                f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}"><title>{escape(tip)}</title></rect>'
            )
            parts.append(f"{fmt(v)} {name}")
        if i % every == 0:
            out.append(
                f'<text class="tick" x="{x + bar / 2:.1f}" y="{H - 10}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    out.append(_legend([(s[0], s[1]) for s in series], width))
    out.append("</svg>")
    return "".join(out)


def area(
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    css: str = "depth",
    fmt: Callable[[float], str] = _num,
    width: int = W,
) -> str:
    """A line with the area under it filled: a level over time (queue depth)."""
    n = len(values)
    if n == 0:
        return empty(title)
    top = nice_max(max(values))
    out, left = _frame(top, fmt, title, width)
    plot_w, plot_h = width - left - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(1, n - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, TOP + plot_h - plot_h * v / top

    points = [xy(i, v) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    base = TOP + plot_h
    out.append(
        f'<polygon class="{css}-fill" points="{left:.1f},{base:.1f} {line} '
        f'{points[-1][0]:.1f},{base:.1f}"/>'
    )
    out.append(f'<polyline class="{css}-line" fill="none" points="{line}"/>')
    every = max(1, math.ceil(n / (width / 80)))
    for i, ((x, y), label) in enumerate(zip(points, labels, strict=True)):
        out.append(
            f'<circle class="{css}-dot" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
            f"<title>{escape(label)}: {escape(fmt(values[i]))}</title></circle>"
        )
        if i % every == 0:
            out.append(
                f'<text class="tick" x="{x:.1f}" y="{H - 10}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def _legend(items: list[tuple[str, str]], width: int) -> str:
    if len(items) < 2:
        return ""
    out, x = [], width - RIGHT
    for name, css in reversed(items):
        width = 14 + 7 * len(name)
        x -= width
        out.append(f'<rect class="{css}" x="{x}" y="2" width="9" height="9"/>')
        out.append(f'<text class="legend" x="{x + 12}" y="10">{escape(name)}</text>')
    return "".join(out)


def empty(title: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<text class="tick" x="{W / 2}" y="{H / 2}" text-anchor="middle">no data yet</text>'
        "</svg>"
    )


WAIT_BUCKETS = [
    (1, "<1 s"),
    (5, "1–5 s"),
    (30, "5–30 s"),
    (120, "30 s–2 min"),
    (600, "2–10 min"),
    (3600, "10–60 min"),
    (math.inf, ">1 h"),
]


def wait_histogram(waits: Sequence[float]) -> tuple[list[str], list[float]]:
    counts = [0.0] * len(WAIT_BUCKETS)
    for w in waits:
        for i, (limit, _) in enumerate(WAIT_BUCKETS):
            if w < limit:
                counts[i] += 1
                break
    return [label for _, label in WAIT_BUCKETS], counts


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
