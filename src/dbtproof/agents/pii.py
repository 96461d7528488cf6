"""Which columns are personal data: dbt's ``meta: {pii: true}`` or a ``pii`` tag."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PiiRule:
    """How a column is marked as personal data: a truthy ``meta`` key or a tag."""

    meta_key: str = "pii"
    tag: str = "pii"

    def marks(self, column: Any) -> bool:
        """Whether a manifest column (dbt's ``ColumnInfo``) is marked as PII."""
        meta = getattr(column, "meta", None) or {}
        tags = getattr(column, "tags", None) or []
        config = getattr(column, "config", None)
        meta = {**(getattr(config, "meta", None) or {}), **meta}
        tags = [*tags, *(getattr(config, "tags", None) or [])]
        return bool(meta.get(self.meta_key)) or self.tag in tags

    def columns(self, node: Any) -> set[str]:
        """The names (lower case) of the PII columns a manifest node or source declares."""
        declared = getattr(node, "columns", None) or {}
        return {str(name).lower() for name, column in declared.items() if self.marks(column)}


def lowered(names: Iterable[str]) -> set[str]:
    """*names* in lower case (column names are compared so)."""
    return {str(name).lower() for name in names}
