"""Tables that fit the terminal: on a narrow one (80 columns is tmux's and many terminals'
default) the least important columns are left out and those that may be cut are cut, so
that ids and statuses always show in full and rows stay one line.

rich would instead shrink every column evenly, ids and statuses included (``RUNNI…``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rich.console import OverflowMethod
from rich.table import Table
from rich.text import Text

GAP = 2  # rich's padding between two columns of a box-less table without edge padding


@dataclass
class Col:
    header: str
    cells: list[Any]  # markup strings, Text, or a renderable that fills its width
    justify: Literal["left", "right"] = "left"
    cut_to: int | None = None  # may be cut (with …) down to this width; None: never cut
    drop: int = 0  # may be left out when there is no room: the highest first; 0: never
    natural: int | None = None  # the width it wants, for cells that are not text
    wrap: bool = False  # cut_to: fold its text onto more lines rather than cut it

    def width(self) -> int:
        if self.natural is not None:
            return self.natural
        return max([len(self.header), *(_cell_len(c) for c in self.cells)])


def _cell_len(cell: Any) -> int:
    if isinstance(cell, Text):
        return cell.cell_len
    return Text.from_markup(str(cell)).cell_len


def _total(widths: list[int]) -> int:
    return sum(widths) + GAP * (len(widths) - 1)


def _widths(cols: list[Col], width: int) -> list[int] | None:
    """Each column's width, the cuttable ones cut (the widest first) just enough to fit
    ``width``; None if they cannot be cut enough."""
    widths = [c.width() for c in cols]
    floor = [w if c.cut_to is None else min(w, c.cut_to) for c, w in zip(cols, widths, strict=True)]
    if _total(floor) > width:
        return None
    excess = _total(widths) - width
    while excess > 0:
        i = max((i for i, c in enumerate(cols) if widths[i] > floor[i]), key=lambda i: widths[i])
        step = min(excess, widths[i] - floor[i], max(1, widths[i] - _second(widths, i)))
        widths[i] -= step
        excess -= step
    return widths


def _second(widths: list[int], i: int) -> int:
    """The widest of the other columns: cutting the widest down to it first spreads the
    cuts over the long columns instead of emptying one."""
    return max((w for j, w in enumerate(widths) if j != i), default=0)


def fitted(cols: list[Col], width: int) -> Table:
    """A box-less table of ``cols`` at most ``width`` wide (when the columns that are never
    cut nor left out fit at all): as few columns left out as possible, then the cuttable
    ones cut."""
    kept = list(cols)
    droppable = sorted((c for c in cols if c.drop), key=lambda c: -c.drop)
    widths = _widths(kept, width)
    while widths is None and droppable:
        kept.remove(droppable.pop(0))
        widths = _widths(kept, width)
    if widths is None:  # nothing left to cut or leave out: as narrow as it goes
        widths = [c.width() if c.cut_to is None else c.cut_to for c in kept]
    table = Table(box=None, header_style="bold", pad_edge=False)
    for c, w in zip(kept, widths, strict=True):
        overflow: OverflowMethod = "fold" if c.wrap else "ellipsis"
        table.add_column(
            c.header, justify=c.justify, no_wrap=not c.wrap, overflow=overflow, width=w
        )
    rows = max((len(c.cells) for c in cols), default=0)
    for r in range(rows):
        table.add_row(*(c.cells[r] if r < len(c.cells) else "" for c in kept))
    return table
