"""A one-line display of what dbt is doing while the terminal would otherwise be silent.

A cold parse of a large project, or the build of a thousand nodes, takes a minute with
nothing on the screen. While a dbt invocation runs, :class:`Progress` shows one line —
the phase (``dbt parse``, ``dbt build``), how many nodes of how many have finished (from
dbt's own events: :func:`dbtproof._dbt_compat.node_progress_callback`), the node last
finished, and the seconds spent — redrawn in place (``\\r``) twice a second, and erased
when the invocation ends. It is made only for a terminal (the plugin makes none when
stdout is not a TTY, with ``-q``, or on an xdist worker), so a log or a CI job never sees
it. It writes through its own pytest terminal writer on the terminal itself, so pytest's
output capture during a test's setup does not swallow it; a line pytest had begun is
left as it was: the display takes the next line and the cursor is put back after it.
Nothing here imports dbt or pytest.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Seconds between two redraws of the line.
REDRAW_SECONDS = 0.5


class Progress:
    """What dbt is doing, on one line of the terminal *writer* (a pytest ``TerminalWriter``
    on the terminal); *current_width* says how much of pytest's own current line is
    written (its terminal writer's ``width_of_current_line``)."""

    def __init__(self, writer: Any, current_width: Callable[[], int]) -> None:
        self._writer = writer
        self._current_width = current_width
        self._lock = threading.Lock()
        self._what = ""
        self._done = 0
        self._total = 0
        self._node = ""
        self._started = 0.0
        self._shown = 0

    @contextmanager
    def phase(self, what: str) -> Iterator[None]:
        """Show *what* (``dbt build``) while the block runs; the line goes after it."""
        column = self._current_width()
        if column:  # pytest's line stays: the display takes the next one
            self._write("\n")
        with self._lock:
            self._what, self._done, self._total, self._node = what, 0, 0, ""
            self._started = time.monotonic()
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(stop,), daemon=True)
        self._draw()
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()
            with self._lock:
                self._write("\r" + " " * self._shown + "\r")
                self._shown = 0
                if column and getattr(self._writer, "hasmarkup", False):
                    self._write(f"\x1b[1A\x1b[{column}C")  # back to the end of pytest's line

    def node(self, done: int, total: int, unique_id: str) -> None:
        """dbt finished its *done*-th node of *total* (*unique_id*)."""
        with self._lock:
            self._done, self._total, self._node = done, total, unique_id
        self._draw()

    def line(self) -> str:
        """The line as it is now."""
        elapsed = time.monotonic() - self._started
        text = f"dbtproof: {self._what}"
        if self._total:
            text += f": {self._done}/{self._total} nodes"
            if self._node:
                text += f" ({self._node})"
        text += f"... {elapsed:.0f}s"
        width = max(20, int(getattr(self._writer, "fullwidth", 80)) - 1)
        return text if len(text) <= width else text[: width - 3] + "..."

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(REDRAW_SECONDS):
            self._draw()

    def _draw(self) -> None:
        with self._lock:
            text = self.line()
            self._write("\r" + text + " " * max(0, self._shown - len(text)))
            self._shown = len(text)

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # the terminal went away: run on
            self._writer.write(text, flush=True)
