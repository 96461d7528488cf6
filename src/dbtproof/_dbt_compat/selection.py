"""dbt's ``fqn`` selector method answered from an index: the same nodes, one lookup each.

dbtproof selects the nodes of a batch by their fully qualified names (``fqn:pkg.path.name``
per node, see :func:`dbtproof.project.nodes.fqn_selector`). dbt answers each selector by scanning
every node of the graph (``QualifiedNameSelectorMethod.search``), so selecting N nodes of a
project of M costs N x M matches: for 1,000 models and 800 tests, about 5 s of every
``dbt build`` that names them all. :func:`indexed_fqn_selection` replaces that search,
for the duration of one invocation, by a lookup in an index of the same nodes, built
once per invocation and per set of nodes dbt searches:

* a selector with a wildcard (``*``, ``?``, ``[``, ``]``) goes to dbt's own search;
* versioned models are matched by dbt's own ``node_is_match`` (their rules compare the
  last two parts in two ways; they are few);
* every other node matches, as dbt's ``is_selected_node`` says, when its fqn's last part
  is the selector, or when the selector's dot-separated parts are a prefix of its
  flattened fqn — its fqn with or without the package (dbt's ``node_is_match``).

``tests/unit/_dbt_compat/test_dbt_compat.py`` checks the index against dbt's own search, selector by
selector, on generated fqns (hypothesis) and on a real manifest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_WILDCARDS = ("*", "?", "[", "]")


class FqnIndex:
    """The nodes dbt's fqn search would scan, indexed by fqn leaf and by every fqn prefix."""

    def __init__(self, nodes: Iterable[tuple[str, Any]]) -> None:
        self.leaf: dict[str, list[str]] = {}
        self.prefix: dict[tuple[str, ...], list[str]] = {}
        #: Versioned models, matched one by one with dbt's own rule.
        self.versioned: list[tuple[str, Any]] = []
        for unique_id, node in nodes:
            if node.is_versioned:
                self.versioned.append((unique_id, node))
                continue
            fqn = list(node.fqn)
            for names in (fqn, fqn[1:]):  # with the package, and without (any package)
                if not names:
                    continue
                self.leaf.setdefault(names[-1], []).append(unique_id)
                flat = [part for name in names for part in name.split(".")]
                for end in range(1, len(flat) + 1):
                    self.prefix.setdefault(tuple(flat[:end]), []).append(unique_id)

    def matches(self, selector: str, node_is_match: Any) -> list[str]:
        """The unique ids *selector* (without a wildcard) picks, each once;
        *node_is_match* is dbt's, for the versioned models."""
        found = dict.fromkeys(self.leaf.get(selector, ()))
        found.update(dict.fromkeys(self.prefix.get(tuple(selector.split(".")), ())))
        for unique_id, node in self.versioned:
            if node_is_match(selector, node.fqn, node.is_versioned):
                found[unique_id] = None
        return list(found)


def has_wildcard(selector: str) -> bool:
    """Whether dbt reads *selector* as a pattern (its own search answers those)."""
    return any(wildcard in selector for wildcard in _WILDCARDS)


@contextmanager
def indexed_fqn_selection() -> Iterator[None]:
    """While the block runs (one dbt invocation, under the runner's lock), dbt's fqn
    selector method looks selectors up in a :class:`FqnIndex` instead of scanning."""
    from dbt.graph.selector_methods import QualifiedNameSelectorMethod

    original = QualifiedNameSelectorMethod.search
    indexes: dict[tuple[int, frozenset[str]], FqnIndex] = {}

    def search(method: Any, included_nodes: Any, selector: str) -> Iterator[str]:
        if has_wildcard(selector):
            yield from original(method, included_nodes, selector)
            return
        key = (id(method.manifest), frozenset(included_nodes))
        index = indexes.get(key)
        if index is None:
            index = indexes[key] = FqnIndex(method.non_source_nodes(included_nodes))
        yield from index.matches(selector, method.node_is_match)

    QualifiedNameSelectorMethod.search = search  # type: ignore[method-assign]
    try:
        yield
    finally:
        QualifiedNameSelectorMethod.search = original  # type: ignore[method-assign]
