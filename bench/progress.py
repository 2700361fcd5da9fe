"""Long benches show progress: what they are doing goes to stderr as they go, and each result line goes
to stdout the moment it is measured (flushed), so a run of minutes is never silent and a table piped to
a file still fills line by line.

    from bench.progress import progress, emit, Table

    progress("3. refresh: run 2/3: healthz, 5 s")        # stderr, flushed
    table = Table(("measurement", "result", "ratio", "target"), align="---:")
    table.row(("3. ...", "1,234 req/s", "0.55×", "≥ 0.5×"))  # the header first, once, then the line
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence


def progress(message: str) -> None:
    """What the bench is doing now, on stderr (the results go to stdout), flushed at once."""
    print(message, file=sys.stderr, flush=True)


def emit(line: str = "") -> None:
    """A result line on stdout, flushed at once (not held back until the bench ends)."""
    print(line, flush=True)


class Table:
    """A Markdown table printed line by line: the header before the first row, each row when it comes.

    `align` gives each column's separator cell ("---" or "---:"); by default all are "---"."""

    def __init__(self, columns: Sequence[str], *, align: Sequence[str] | None = None, title: str = "") -> None:
        self.columns = tuple(columns)
        self.align = tuple(align) if align else ("---",) * len(self.columns)
        self.title = title
        self.rows: list[tuple[str, ...]] = []
        self._headed = False

    def header(self) -> None:
        """Print the title and header now (once), e.g. before the first row takes minutes."""
        if self._headed:
            return
        self._headed = True
        if self.title:
            emit(self.title)
            emit()
        emit("| " + " | ".join(self.columns) + " |")
        emit("|" + "|".join(self.align) + "|")

    def row(self, cells: Sequence[str]) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"a row of {len(self.columns)} cells expected, got {len(cells)}")
        self.header()
        self.rows.append(tuple(cells))
        emit("| " + " | ".join(cells) + " |")


class Stopwatch:
    """Seconds since it was made, for progress lines ("… (42 s)")."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __str__(self) -> str:
        return f"{time.monotonic() - self.started:.0f} s"
