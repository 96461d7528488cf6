"""Small readers of dbt's manifest nodes, shared by the layers that look at nodes."""

from __future__ import annotations

from typing import Any


def resource_type(node: Any) -> str:
    """``"model"``, ``"seed"``, ``"test"``, ``"unit_test"``... of a manifest node."""
    return str(getattr(node.resource_type, "value", node.resource_type))


def fqn_selector(node: Any) -> str:
    """A dbt selector that picks exactly *node*: its fully qualified name."""
    return "fqn:" + ".".join(node.fqn)
