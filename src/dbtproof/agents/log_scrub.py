"""The server's log through the secret scrubbing: file descriptor 2 as a pipe.

While a ``dbtproof mcp`` server runs, whatever the process writes to its standard error
(its own messages, dbt's and the MCP SDK's logs, a library's warning) goes through a
pipe that a thread reads line by line, scrubs, and writes to the real standard error.
The SDK points descriptor 1 at descriptor 2 while it serves (standard output is the
protocol's), and :func:`stdout_to_stderr` does before it serves, so stray prints are
scrubbed too and never reach the protocol's stream.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator

#: How long the end of the block waits for the last lines to be written.
DRAIN_SECONDS = 5.0


def _pump(source: int, target: int, scrub: Callable[[str], str]) -> None:
    """Copy *source* to *target* a line at a time, each scrubbed, until end of file."""
    pending = b""
    while True:
        try:
            chunk = os.read(source, 65536)
        except OSError:
            chunk = b""
        if chunk:
            pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop() if chunk else b""
        if not chunk and lines[-1:] == [b""]:
            lines.pop()
        for line in lines:
            text = scrub(line.decode("utf-8", "replace"))
            with contextlib.suppress(OSError):
                os.write(target, (text + "\n").encode("utf-8"))
        if not chunk:
            os.close(source)
            return


@contextlib.contextmanager
def scrubbed_stderr(scrub: Callable[[str], str]) -> Iterator[None]:
    """Inside the block, descriptor 2 (standard error) is scrubbed by *scrub*."""
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(
        target=_pump, args=(read_end, original, scrub), name="dbtproof-log", daemon=True
    )
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last writer closed: the thread reads its end
        pump.join(DRAIN_SECONDS)
        os.close(original)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Inside the block, descriptor 1 writes to descriptor 2: before the MCP transport
    owns standard output, nothing printed (dbt's console) may reach the protocol's stream."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
