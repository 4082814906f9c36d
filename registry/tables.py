"""Plain-text tables for the CLI: tabulate's "simple" format, every cell one line of text."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

# A table shows at most this many characters of a cell (`--json` keeps the whole text).
MAX_CELL = 60


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], max_cell: int = MAX_CELL) -> str:
    """`rows` under `headers`, as text: no number parsing, one line per row, cells cut to `max_cell`."""
    cells = [[clip(cell, max_cell) for cell in row] for row in rows]
    return str(tabulate(cells, headers=list(headers), tablefmt="simple", disable_numparse=True))


def clip(text: str, width: int = MAX_CELL) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis when longer."""
    flat = " ".join(text.split()) if "\n" in text or "\r" in text else text
    return flat if len(flat) <= width else flat[: width - 1] + "…"
