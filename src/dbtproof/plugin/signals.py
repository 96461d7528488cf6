"""SIGTERM read as Ctrl-C, so that a run stopped by ``docker stop``, ``timeout``, Kubernetes
or a cancelled CI job drops its namespace as an interrupted one does.

Python dies at once on SIGTERM: no ``finally``, no ``pytest_sessionfinish``, the namespace
left behind. :func:`trap_sigterm` makes SIGTERM raise :class:`KeyboardInterrupt` in the main
thread instead (pytest then ends the run as interrupted, exit code 2, and tears down). The
xdist controller also passes the signal on to its workers, which run the tests and hold
the namespaces: a signal sent to the controller alone (``docker stop``, ``timeout``) would
otherwise leave them to execnet, which interrupts them only after five seconds and kills
them ten seconds after that, whatever their teardown is doing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any


def trap_sigterm(forward_to_children: bool = False) -> Callable[[], None] | None:
    """Make SIGTERM raise :class:`KeyboardInterrupt` in this process (when nothing else
    handles SIGTERM already and this is the main thread); with *forward_to_children*,
    first send SIGTERM on to this process's children (the xdist workers).

    Returns a function that puts the previous handler back, or None when nothing was trapped.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None  # someone (the user, another plugin) handles it: theirs stands

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the teardown must not be cut
        if forward_to_children:
            for pid in child_pids(os.getpid()):
                with suppress(OSError):  # gone already
                    os.kill(pid, signal.SIGTERM)
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) in (handler, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return restore


def child_pids(parent: int, proc: Path = Path("/proc")) -> list[int]:
    """The ids of the processes whose parent is *parent* (Linux's /proc; elsewhere none)."""
    found = []
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry.name))
    return found
