"""dbt's graph summary (``target/graph_summary.json``) without serializing every node.

Each ``dbt build``, ``run`` or ``test`` links the project's graph and writes a small
summary of it for diagnostics (``Linker.get_graph_summary``: each node's name, type and
successors). dbt finds each node's type by turning the whole node into a dict
(``to_dict``) and reading one key of it: on 1,000 models and 800 tests that is about a
tenth of an invocation that builds one model, twice for ``build`` (with and without the
test edges). :func:`quick_graph_summary` replaces that method, for the duration of one
invocation, by one that reads the node's ``resource_type`` itself; the summary is the
same, key for key (``tests/unit/_dbt_compat/test_dbt_compat.py`` compares the two on real manifests,
on every dbt version we support).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def graph_summary(linker: Any, manifest: Any) -> dict[int, dict[str, Any]]:
    """What dbt's ``Linker.get_graph_summary(manifest)`` returns, for *linker*'s graph."""
    graph = linker.graph
    index = {name: number for number, name in enumerate(graph)}
    summary: dict[int, dict[str, Any]] = {}
    for name, number in index.items():
        kind = manifest.expect(name).resource_type
        summary[number] = {"name": name, "type": getattr(kind, "value", kind)}
    for entry in summary.values():
        successors = [index[successor] for successor in graph.successors(entry["name"])]
        if successors:
            entry["succ"] = successors
    return summary


@contextmanager
def quick_graph_summary() -> Iterator[None]:
    """While the block runs (one dbt invocation, under the runner's lock), dbt's linker
    summarizes the graph with :func:`graph_summary`."""
    from dbt.compilation import Linker

    original = Linker.get_graph_summary
    Linker.get_graph_summary = graph_summary  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Linker.get_graph_summary = original  # type: ignore[method-assign]
