"""The SQL of an adapter's incremental strategies, made by its macros in a model's context
(apart from :mod:`.adapter`, which the render caches read: this module reads the context)."""

from __future__ import annotations

from typing import Any

from dbtproof._dbt_compat.context import RenderContext


def incremental_strategy_sql(
    context: RenderContext,
    adapter: Any,
    strategy: str | None,
    target: Any,
    temp: Any,
    unique_key: Any,
    incremental_predicates: Any = None,
) -> list[str]:
    """The statements the model's incremental strategy runs to apply new rows (*temp*) to
    *target*, in order.

    The strategy comes from the adapter, as in its ``incremental`` materialization: most
    adapters' ``get_incremental_<strategy>_sql`` (destination columns: *target*'s); on
    dbt-spark, whose materialization has its own dispatch, its file format and strategy
    validated by its macros, ``set spark.sql.sources.partitionOverwriteMode = DYNAMIC``
    before a partitioned ``insert_overwrite``, then ``dbt_spark_get_incremental_sql``.
    """
    if _SPARK_INCREMENTAL in context.values:
        return _spark_incremental_sql(
            context, strategy, target, temp, unique_key, incremental_predicates
        )
    macro = adapter.get_incremental_strategy_macro(context.values, strategy or "default")
    dest_columns = adapter.get_columns_in_relation(target)
    args = {
        "target_relation": target,
        "temp_relation": temp,
        "unique_key": unique_key,
        "dest_columns": dest_columns,
        "incremental_predicates": incremental_predicates,
    }
    return [str(macro(args))]


#: dbt-spark's own strategy dispatch (its materialization never asks for
#: ``get_incremental_<strategy>_sql``).
_SPARK_INCREMENTAL = "dbt_spark_get_incremental_sql"


def _spark_incremental_sql(
    context: RenderContext,
    strategy: str | None,
    target: Any,
    temp: Any,
    unique_key: Any,
    incremental_predicates: Any,
) -> list[str]:
    """dbt-spark's incremental step, as its ``incremental`` materialization runs it."""
    config = context.values["config"]
    file_format = context.call_macro(
        "dbt_spark_validate_get_file_format", config.get("file_format", default="parquet")
    )
    chosen = context.call_macro(
        "dbt_spark_validate_get_incremental_strategy", strategy or "append", file_format
    )
    chosen = str(chosen).strip()
    statements = []
    if chosen in ("insert_overwrite", "microbatch") and config.get("partition_by", default=None):
        statements.append("set spark.sql.sources.partitionOverwriteMode = DYNAMIC")
    statements.append(
        str(
            context.call_macro(
                _SPARK_INCREMENTAL,
                chosen,
                temp,
                target,
                target,
                unique_key,
                incremental_predicates,
            )
        )
    )
    return statements
