"""dbt's manifest: what ``ref()`` and ``source()`` resolve to, and its disabled nodes.

The readers of a node that need no dbt at all (its resource type, selector, whether it
is ephemeral) are in :mod:`dbtproof.nodes`.
"""

from __future__ import annotations

from typing import Any


def lookup_ref(
    manifest: Any, name: str, package: str | None, version: Any, current_project: str
) -> Any:
    """The enabled node ``ref(name, package, version)`` finds from the root project, or None."""
    from dbt.contracts.graph.manifest import Disabled

    node = manifest.resolve_ref(None, name, package, version, current_project, current_project)
    return None if node is None or isinstance(node, Disabled) else node


def resolve_ref(
    manifest: Any, node: Any, name: str, package: str | None, version: Any, current_project: str
) -> Any:
    """The node ``ref(...)`` resolves to from inside *node* (dbt's own lookup), or None."""
    from dbt.contracts.graph.manifest import Disabled

    target = manifest.resolve_ref(node, name, package, version, current_project, node.package_name)
    return None if target is None or isinstance(target, Disabled) else target


def resolve_source(
    manifest: Any, node: Any, source_name: str, table_name: str, current_project: str
) -> Any:
    """The source ``source(source_name, table_name)`` resolves to from inside *node*, or None."""
    from dbt.contracts.graph.manifest import Disabled

    target = manifest.resolve_source(source_name, table_name, current_project, node.package_name)
    return None if target is None or isinstance(target, Disabled) else target


def disabled_nodes(manifest: Any) -> list[Any]:
    """The project's disabled nodes (a seed turned off by a var still describes its table)."""
    found = []
    for nodes in (getattr(manifest, "disabled", None) or {}).values():
        found.extend(nodes if isinstance(nodes, list) else [nodes])
    return found
