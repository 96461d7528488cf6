"""Small readers of dbt's manifest nodes, shared by the layers that look at nodes.

This module does not import dbt (what does is in :mod:`dbtproof._dbt_compat`).
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping
from typing import Any

from dbtproof import _dbt_compat as compat

#: dbt 1.11's user-defined functions (``functions:``): only ``dbt build`` creates them, each
#: in its schema as a model's relation is; dbt keeps them apart from the other nodes.
FUNCTION = "function"
#: Node types that ``dbt build`` builds (runs, seeds, snapshots, functions).
BUILDABLE = frozenset({"model", "seed", "snapshot", FUNCTION})
#: Node types that write to the warehouse: what dbt builds, and data tests
#: (``--store-failures``).
WRITING = BUILDABLE | {"test"}


def graph_nodes(manifest: Any) -> Mapping[str, Any]:
    """The manifest's nodes (models, seeds, snapshots, tests...) and its user-defined
    functions as one mapping by unique id (a view: nothing is copied)."""
    functions = compat.functions(manifest)
    return ChainMap(manifest.nodes, functions) if functions else manifest.nodes


def is_function(node: Any) -> bool:
    """Whether *node* is a user-defined function (dbt 1.11's ``functions:``)."""
    return resource_type(node) == FUNCTION


def resource_type(node: Any) -> str:
    """``"model"``, ``"seed"``, ``"source"``, ``"test"``, ``"unit_test"``... of a manifest
    node (``""`` for an object without one)."""
    kind = getattr(node, "resource_type", "")
    return str(getattr(kind, "value", kind))


def fqn_selector(node: Any) -> str:
    """A dbt selector that picks exactly *node*: its fully qualified name."""
    return "fqn:" + ".".join(node.fqn)


def is_ephemeral(node: Any) -> bool:
    """Whether *node* is an ephemeral model (a CTE, not a relation, in a run)."""
    return getattr(getattr(node, "config", None), "materialized", None) == "ephemeral"


def is_buildable(node: Any) -> bool:
    """True for the models, seeds, snapshots and functions ``dbt build`` builds (not
    ephemeral models)."""
    return resource_type(node) in BUILDABLE and not is_ephemeral(node)


def ancestors(
    manifest: Any, unique_ids: Iterable[str], feeders: Mapping[str, str] | None = None
) -> set[str]:
    """Every node the given tests (or nodes) depend on, directly or not (sources included).

    A unit test needs its model's parents to exist (dbt reads their columns), not
    the model itself. A source the project itself writes depends on the node that
    writes it (*feeders*: source unique id -> seed, model or snapshot unique id), so a
    seed loaded into ``raw`` and read back through ``source()`` is loaded first.
    """
    feeders = feeders or {}
    nodes = graph_nodes(manifest)  # a function a model calls is built before it, too
    seen: set[str] = set()
    stack = []
    for uid in unique_ids:
        if uid in manifest.unit_tests:
            stack.extend(getattr(manifest.unit_tests[uid].depends_on, "nodes", []))
        else:
            stack.append(uid)
    while stack:
        uid = stack.pop()
        node = nodes.get(uid) or manifest.unit_tests.get(uid) or manifest.sources.get(uid)
        if node is None:
            continue
        parents = list(getattr(getattr(node, "depends_on", None), "nodes", None) or [])
        if uid in feeders:
            parents.append(feeders[uid])
        for parent in parents:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def direct_parents(manifest: Any, nodes: Mapping[str, Any], unique_id: str) -> list[str]:
    """What the node or source *unique_id* depends on directly (*nodes*: the manifest's
    :func:`graph_nodes`, looked up once by the caller)."""
    node = nodes.get(unique_id) or manifest.sources.get(unique_id)
    return list(getattr(getattr(node, "depends_on", None), "nodes", None) or [])


def built_parents(manifest: Any, unique_ids: Iterable[str]) -> dict[str, set[str]]:
    """Each of *unique_ids*' nearest ancestors among *unique_ids*: its parents there, and
    those it reaches through nodes not there (an ephemeral model, a node built already)."""
    nodes = graph_nodes(manifest)
    inside = set(unique_ids)

    def parents_of(uid: str) -> list[str]:
        return direct_parents(manifest, nodes, uid)

    found: dict[str, set[str]] = {}
    for uid in inside:
        nearest: set[str] = set()
        seen: set[str] = set()
        stack = parents_of(uid)
        while stack:
            parent = stack.pop()
            if parent in seen:
                continue
            seen.add(parent)
            if parent in inside:
                nearest.add(parent)
            else:
                stack.extend(parents_of(parent))
        found[uid] = nearest
    return found
