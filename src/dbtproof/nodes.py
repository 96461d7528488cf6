"""Small readers of dbt's manifest nodes, shared by the layers that look at nodes.

This module does not import dbt (what does is in :mod:`dbtproof._dbt_compat`).
"""

from __future__ import annotations

from typing import Any

#: Node types that ``dbt build`` builds (runs, seeds, snapshots).
BUILDABLE = frozenset({"model", "seed", "snapshot"})
#: Node types that write a relation: what dbt builds, and data tests (``--store-failures``).
WRITING = BUILDABLE | {"test"}


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
    """True for the models, seeds and snapshots ``dbt build`` builds (not ephemeral models)."""
    return resource_type(node) in BUILDABLE and not is_ephemeral(node)
