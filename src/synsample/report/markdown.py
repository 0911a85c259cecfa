"""Markdown helpers for the run reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` is a string of l/r/c per column."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The same table as plain aligned text, for the terminal (numbers right-aligned)."""
    cells = [[str(h) for h in header]] + [[_cell(c) for c in row] for row in rows]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(header))]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if num else c.ljust(w)
                       for c, w, num in zip(r, widths, numeric, strict=True)).rstrip()
             for r in cells]
    return "\n".join([lines[0], "-" * max(len(x) for x in lines)] + lines[1:])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def pct(x: float | None, digits: int = 1) -> str:
    """``x`` as a percentage with ``digits`` decimals (``-`` for None)."""
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def signed(x: float | None, digits: int = 1) -> str:
    """``x`` with its sign (``-`` for None)."""
    return "-" if x is None else f"{x:+.{digits}f}"
