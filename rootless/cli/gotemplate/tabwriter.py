"""Go's text/tabwriter as docker's tables use it (left-aligned, spaces, no flags).

Cells end with a tab; the text after a line's last tab is not in a column. A column's width
is that of its widest cell plus the padding (at least ``minwidth``), computed per block of
consecutive lines that have a cell in that column, as tabwriter.format does. Widths are
display widths (a wide CJK character counts two), as in docker's fork of the package.
"""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide and full-width characters take two,
    combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def align(text: str, *, minwidth: int = 0, padding: int = 1) -> str:
    """``text`` with its tab-separated cells padded into columns."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write(line0: int, line1: int) -> None:
        for cells in lines[line0:line1]:
            parts = []
            for j, cell in enumerate(cells):
                pad = widths[j] - display_width(cell) if j < len(widths) else 0
                parts.append(cell + " " * pad)
            out.append("".join(parts))

    def format_block(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, display_width(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            format_block(line0, this)
            widths.pop()
            line0 = this
        write(line0, line1)

    format_block(0, len(lines))
    return "\n".join(out)
