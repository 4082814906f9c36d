"""Text for a terminal: tabulate's "simple" tables, every cell one line, and control characters that
came from the registry or the user shown escaped (`\x1b`), never sent to the terminal raw."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TextIO

from tabulate import tabulate

# A table shows at most this many characters of a cell (`--json` keeps the whole text).
MAX_CELL = 60


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], max_cell: int = MAX_CELL) -> str:
    """`rows` under `headers`, as text: no number parsing, one line per row, cells cut to `max_cell`."""
    cells = [[clip(cell, max_cell) for cell in row] for row in rows]
    return str(tabulate(cells, headers=list(headers), tablefmt="simple", disable_numparse=True))


def clip(text: str, width: int = MAX_CELL) -> str:
    """`text` on one line, control characters escaped, cut to `width` characters with an ellipsis."""
    flat = escaped(" ".join(text.split()) if "\n" in text or "\r" in text else text)
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# C0 and C1 control characters (ANSI escapes, backspace, carriage return, bell...) and the Unicode
# controls that reorder text on screen; the line feed is kept where output is made of lines.
CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escaped(text: str, one_line: bool = False) -> str:
    """`text` with every control character written as a Python escape, such as `\\x1b`."""
    text = CONTROLS.sub(lambda found: found[0].encode("unicode_escape").decode(), text)
    return text.replace("\n", "\\n") if one_line else text


class EscapingWriter:
    """A text stream that escapes control characters in everything written to `stream`: nothing the
    tool prints can move the cursor, clear the screen or set a window title."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(escaped(text))

    def __getattr__(self, name: str) -> Any:  # flush, buffer (binary output such as a PNG), fileno...
        return getattr(self.stream, name)
