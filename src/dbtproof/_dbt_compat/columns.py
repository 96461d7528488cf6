"""Column names and types as dbt finds them: of a relation, of a query's result (as dbt's
unit tests describe it, or as the adapter's Column objects), and of a seed (as ``dbt seed``
types its CSV)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbtproof._dbt_compat.adapter import adapter_type
from dbtproof._dbt_compat.connections import commit_if_open, cursor_fetch

if TYPE_CHECKING:
    from dbtproof._dbt_compat.context import RenderContext


def translate_type(adapter: Any, data_type: str) -> str:
    """*data_type* as dbt translates a contract's type alias for *adapter* (``string`` is
    ``text`` on PostgreSQL): the adapter's ``Column.translate_type``."""
    return str(adapter.Column.translate_type(data_type))


def columns_in_relation(adapter: Any, relation: Any) -> list[tuple[str, str]]:
    """Names and data types of the columns of an existing relation."""
    return [(str(c.name), str(c.data_type)) for c in adapter.get_columns_in_relation(relation)]


def describe_query(context: RenderContext, adapter: Any, sql: str) -> list[tuple[str, str]]:
    """Names and data types of the columns *sql* returns, as dbt's unit tests find them.

    Like dbt's ``unit`` materialization: an empty temporary table is created from
    the query, its columns are read back through the adapter, and it is dropped. The
    adapter's connection must be open.
    """
    if adapter_type(adapter) == "duckdb":
        # DuckDB describes a query without creating anything, and keeps an untyped NULL
        # column as "NULL" (a table would make it INTEGER).
        return _duckdb_described(adapter, sql)
    return [(str(c.name), str(c.data_type)) for c in _temp_table_columns(context, adapter, sql)]


def query_columns(context: RenderContext, adapter: Any, sql: str) -> list[Any]:
    """The columns *sql* returns as the adapter's own Column objects: what
    ``adapter.get_columns_in_relation`` would answer for a relation holding its result
    (``.name``, ``.data_type``, ``.quoted``, ``is_string()`` ... behave as on one).

    On DuckDB the query is described (dbt-duckdb builds its columns from ``describe``
    the same way); elsewhere as :func:`describe_query` does, from an empty temporary
    table. The adapter's connection must be open.
    """
    if adapter_type(adapter) == "duckdb":
        return [adapter.Column(name, dtype) for name, dtype in _duckdb_described(adapter, sql)]
    return _temp_table_columns(context, adapter, sql)


def _duckdb_described(adapter: Any, sql: str) -> list[tuple[str, str]]:
    _, rows = cursor_fetch(adapter, f"describe select * from (\n{sql}\n) as dbtproof_d")
    return [(str(row[0]), str(row[1])) for row in rows]


def _temp_table_columns(context: RenderContext, adapter: Any, sql: str) -> list[Any]:
    """The adapter's columns of an empty temporary table made from *sql* (then dropped)."""
    this = context.values["this"]
    base = this.incorporate(type="table") if hasattr(this, "incorporate") else this
    temp = context.call_macro("make_temp_relation", base, "__dbtproof_describe")
    empty = context.call_macro("get_empty_subquery_sql", sql)
    create = context.call_macro("get_create_table_as_sql", True, temp, empty)
    adapter.execute(str(create), auto_begin=True, fetch=False)
    try:
        return list(adapter.get_columns_in_relation(temp))
    finally:
        adapter.drop_relation(temp)
        commit_if_open(adapter)


def seed_columns(config: Any, node: Any, adapter: Any) -> list[tuple[str, str]]:
    """The columns ``dbt seed`` would create for a seed: its CSV header, typed as dbt types them."""
    import os

    from dbt_common.clients import agate_helper

    column_types = dict(node.config.column_types or {})
    candidates = [
        os.path.join(getattr(node, "root_path", "") or "", node.original_file_path),
        os.path.join(config.project_root, node.original_file_path),
        os.path.join(
            config.project_root,
            config.packages_install_path,
            node.package_name,
            node.original_file_path,
        ),
    ]
    path = next((p for p in candidates if os.path.exists(p)), candidates[-1])
    delimiter = getattr(node.config, "delimiter", ",") or ","
    table = agate_helper.from_csv(path, text_columns=list(column_types), delimiter=delimiter)
    columns = []
    for index, name in enumerate(table.column_names):
        data_type = column_types.get(name) or adapter.convert_type(table, index)
        columns.append((str(name), str(data_type)))
    return columns


def seed_columns_quoted(adapter: Any, node: Any) -> bool:
    """Whether ``dbt seed`` quotes the column names of *node* (``quote_columns``, else the
    adapter's default): then the names are stored exactly as the CSV header spells them."""
    quote_config = node.config.get("quote_columns") if hasattr(node.config, "get") else None
    return str(adapter.quote_seed_column("x", quote_config)) != "x"
