"""``apply=True``: the model's incremental strategy applied to the given ``this``.

The given ``this`` becomes a real table in the run's namespace; the model's new rows
(its incremental branch, reading that table as ``this``) another. The strategy macro
the adapter uses in a real incremental run (``get_incremental_<strategy>_sql``: append,
delete+insert, merge ... by ``unique_key``) then applies the new rows to the ``this``
table, which is read back and returned. Both tables are dropped afterwards.
"""

from __future__ import annotations

from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.compare.rows import Rows
from dbtproof.engine.execute import CONNECTION, run_select, run_statement
from dbtproof.errors import ModelSQLError


def table_names(node: Any) -> tuple[str, str]:
    """Identifiers of the ``this`` table and the new-rows table for *node*."""
    base = "".join(ch if ch.isalnum() else "_" for ch in node.name.lower())[:40]
    return f"dbtproof_this__{base}", f"dbtproof_new__{base}"


def apply(
    adapter: Any,
    context: compat.RenderContext,
    node: Any,
    this_relation: Any,
    new_relation: Any,
    this_sql: str,
    model_sql: str,
) -> Rows:
    """Create ``this`` from *this_sql*, apply *model_sql*'s rows with the model's strategy.

    Returns every row of ``this`` afterwards. The adapter's connection must be open.
    """
    config = node.config
    strategy = config.get("incremental_strategy") or None
    unique_key = config.get("unique_key")
    predicates = config.get("incremental_predicates")
    create = context.call_macro
    try:
        compat.drop_relation(adapter, this_relation)
        compat.drop_relation(adapter, new_relation)
        run_statement(
            adapter,
            str(create("get_create_table_as_sql", False, this_relation, this_sql)),
            f"creates `this` for {node.name}",
        )
        run_statement(
            adapter,
            str(create("get_create_table_as_sql", False, new_relation, model_sql)),
            f"selects the new rows of {node.name}",
        )
        try:
            statements = compat.incremental_strategy_sql(
                context, adapter, strategy, this_relation, new_relation, unique_key, predicates
            )
        except Exception as exc:
            if compat.is_dbt_exception(exc):
                raise ModelSQLError(
                    f"dbtproof: dbt could not build the incremental strategy "
                    f"'{strategy or 'default'}' of {node.name}: {exc}"
                ) from exc
            raise
        for statement in statements:
            run_statement(
                adapter, statement, f"applies the '{strategy or 'default'}' strategy of {node.name}"
            )
        return run_select(adapter, f"select * from {this_relation}", f"`this` of {node.name}")
    finally:
        compat.hold_connection(adapter, CONNECTION)
        compat.drop_relation(adapter, new_relation)
        compat.drop_relation(adapter, this_relation)
