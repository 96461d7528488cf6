"""dbt's ``graph`` context variable kept true to a manifest dbtproof moved.

Macros and models read the whole project through ``graph`` (``graph.nodes``,
``graph.sources``: each node as a dict, its ``schema``, ``relation_name`` and config among
its keys). dbt builds that copy (``Manifest.flat_graph``) once, at the end of a parse
(``Manifest.build_flat_graph``), and again only when it changes the nodes itself (a
deferral). dbtproof changes the parsed nodes afterwards: relocation into the run's
namespace, grantees mapped, a parse loaded in another process and moved there. A copy built
at parse time would then still name the relations as parsed (the developer's schemas, or
the warm parse's placeholder), and a macro walking ``graph`` would read or write outside
the namespace.

:func:`graph_variable_deferred` has dbt skip the build while dbtproof parses (the copy would
be stale at once); :func:`build_graph_variable` builds it, with dbt's own method, once the
manifest is final.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def build_graph_variable(manifest: Any) -> None:
    """Build *manifest*'s ``graph`` variable from its nodes as they are now (dbt's
    ``Manifest.build_flat_graph``)."""
    manifest.build_flat_graph()


@contextmanager
def graph_variable_deferred() -> Iterator[None]:
    """While the block runs (one dbt parse whose nodes dbtproof moves afterwards, under the
    runner's lock), dbt's parse leaves the ``graph`` variable empty:
    :func:`build_graph_variable` builds it once the manifest is final."""
    from dbt.contracts.graph.manifest import Manifest

    original = Manifest.__dict__["build_flat_graph"]

    def skipped(self: Any) -> None:
        self.flat_graph = {}

    Manifest.build_flat_graph = skipped  # type: ignore[method-assign]
    try:
        yield
    finally:
        Manifest.build_flat_graph = original  # type: ignore[method-assign]
