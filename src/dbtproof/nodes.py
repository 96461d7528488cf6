"""Small readers of dbt's manifest nodes, shared by the layers that look at nodes."""

from __future__ import annotations

from typing import Any

#: Node types that ``dbt build`` builds (runs, seeds, snapshots).
BUILDABLE = frozenset({"model", "seed", "snapshot"})
#: Node types that write a relation: what dbt builds, and data tests (``--store-failures``).
WRITING = BUILDABLE | {"test"}


def resource_type(node: Any) -> str:
    """``"model"``, ``"seed"``, ``"test"``, ``"unit_test"``... of a manifest node."""
    return str(getattr(node.resource_type, "value", node.resource_type))


def fqn_selector(node: Any) -> str:
    """A dbt selector that picks exactly *node*: its fully qualified name."""
    return "fqn:" + ".".join(node.fqn)


def is_buildable(node: Any) -> bool:
    """True for the models, seeds and snapshots ``dbt build`` builds (not ephemeral models)."""
    if resource_type(node) not in BUILDABLE:
        return False
    return getattr(getattr(node, "config", None), "materialized", None) != "ephemeral"
