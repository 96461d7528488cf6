"""A pytest plugin for ``bench/watch_bench.py``: where each watch round's time went.

Usage (the bench folder on ``PYTHONPATH``, absolute: the watched process runs in the
generated project)::

    PYTHONPATH=$PWD/bench python bench/watch_bench.py --saves 5 --show round: \\
        --pytest-arg=-p --pytest-arg=round_timings --pytest-arg=-s

For every round after a save it writes one line to stderr (``-s``: pytest does not
capture it): the seconds from the save (the saved file's modification time) to pytest's
configure, the session's start (dbtproof takes the kept session over and parses again),
the end of collection and the summary; and the time spent in dbt's partial parse, in
writing its partial-parse file, in linking the graph and its test edges, in cutting the
selection out of it and in running the nodes (``--show round:`` has the bench print
those lines).
"""

from __future__ import annotations

import collections
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

_MARKS: dict[str, float] = {}
_SPENT: collections.defaultdict[str, float] = collections.defaultdict(float)


def _timed(owner: Any, name: str, label: str) -> None:
    """Add the time of every call of ``owner.name`` to ``_SPENT[label]`` (once per process)."""
    original: Callable[..., Any] = getattr(owner, name)
    if getattr(original, "_timed", False):
        return

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _SPENT[label] += time.perf_counter() - started

    timed._timed = True  # type: ignore[attr-defined]
    setattr(owner, name, timed)


def pytest_configure(config: pytest.Config) -> None:
    """Mark the round's start; wrap the dbt and dbtproof steps once."""
    import dbt.compilation
    import dbt.graph.graph
    import dbt.parser.manifest
    import dbt.task.runnable

    import dbtproof.session.session

    _MARKS.clear()
    _SPENT.clear()
    files = config.getoption("dbt_changed_files", None) or []
    if files:
        _MARKS["save"] = max(os.stat(path).st_mtime for path in files)
        _MARKS["configure"] = time.time()
    for owner, name, label in (
        (dbtproof.session.session.DbtSession, "refresh", "refresh"),
        (dbt.parser.manifest.ManifestLoader, "get_full_manifest", "dbt parse"),
        (dbt.parser.manifest.ManifestLoader, "write_manifest_for_partial_parse", "write"),
        (dbt.compilation.Linker, "link_graph", "link"),
        (dbt.compilation.Linker, "add_test_edges", "test edges"),
        (dbt.graph.graph.Graph, "get_subset_graph", "subset"),
        (dbt.task.runnable.GraphRunnableTask, "execute_with_hooks", "run nodes"),
    ):
        _timed(owner, name, label)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection(session: pytest.Session) -> Any:
    """Mark the start and the end of collection."""
    _MARKS.setdefault("collect", time.time())
    result = yield
    _MARKS["collected"] = time.time()
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary() -> None:
    """Write the round's line."""
    if "save" not in _MARKS:
        return
    save = _MARKS.pop("save")
    marks = " ".join(f"{name} {when - save:.3f}" for name, when in _MARKS.items())
    spent = " ".join(f"{name} {seconds:.3f}" for name, seconds in _SPENT.items())
    sys.stderr.write(f"round: since the save: {marks} summary {time.time() - save:.3f}; ")
    sys.stderr.write(f"spent: {spent}\n")
