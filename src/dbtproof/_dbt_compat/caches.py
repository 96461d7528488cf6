"""What the renders of one model engine share: :class:`RenderCaches`."""

from __future__ import annotations

from dbtproof._dbt_compat.adapter import CteRelations
from dbtproof._dbt_compat.expressions import CompiledExpressions
from dbtproof._dbt_compat.macro_namespace import NamespaceTemplates


class RenderCaches:
    """The caches that make rendering a model through dbt's context cheap, held by their
    user: :class:`dbtproof.engine.model.ModelEngine` makes one and passes it to every
    :class:`~dbtproof._dbt_compat.context.RenderContext` and render of its session.

    Each is kept for a measured reason, explained where it is defined:

    * ``namespaces`` — dbt's macro namespace built once per package and cloned for each
      context (:mod:`.macro_namespace`), one manifest at a time;
    * ``expressions`` — dbt's Jinja environment and each ``{{ expression }}`` compiled
      once (:mod:`.expressions`);
    * ``cte_relations`` — the relations ``ref``/``source``/``this`` render as
      (:class:`~dbtproof._dbt_compat.adapter.CteRelations`).

    A new one starts with nothing cached; nothing else keeps any of it.
    """

    def __init__(self) -> None:
        self.namespaces = NamespaceTemplates()
        self.expressions = CompiledExpressions()
        self.cte_relations = CteRelations()
