"""Every use of dbt's internal (non-public) APIs, and only here.

dbt's public programmatic API is ``dbt.cli.main.dbtRunner``; everything else
dbtproof needs (rendering a profile value, the adapter behind the last
invocation, running SQL on it) reaches into dbt's internals. Keeping those
calls in one module means one place to fix when dbt changes.

Tested on: dbt-core 1.8.10 and 1.11.16 (``tests/test_dbt_compat.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

#: dbt-core versions this module was tested against.
TESTED_DBT_VERSIONS = ("1.8", "1.11")


def dbt_version() -> str:
    """The installed dbt-core version, e.g. ``"1.11.16"``."""
    from importlib.metadata import version

    return version("dbt-core")


def render_profile_value(value: str, cli_vars: dict[str, Any] | None = None) -> Any:
    """Render one ``profiles.yml`` value (``{{ env_var('X') }}`` ...) with dbt's profile context.

    A missing environment variable raises dbt's own error, which the caller turns
    into a :class:`dbtproof.DbtError`.
    """
    from dbt.config.renderer import ProfileRenderer

    _ensure_invocation_context()
    return ProfileRenderer(cli_vars or {}).render_value(value)


def _ensure_invocation_context() -> None:
    """dbt >= 1.8 reads env vars through an invocation context: set it from ``os.environ``."""
    import os

    from dbt_common.context import set_invocation_context

    set_invocation_context(dict(os.environ))


def registered_runtime_config(adapter_type: str) -> Any:
    """The ``RuntimeConfig`` of the adapter the last dbt invocation registered."""
    from dbt.adapters.factory import get_adapter_by_type

    return get_adapter_by_type(adapter_type).config


def adapter_for(config: Any, manifest: Any) -> Any:
    """The dbt adapter for *config*, registered if the last invocation left none, ready for macros.

    dbt resets its adapters at the start of every invocation, so this must be called
    again after each one; it is cheap when the adapter is already registered.
    """
    from dbt.adapters.factory import FACTORY, get_adapter, register_adapter
    from dbt.context.providers import generate_runtime_macro_context
    from dbt.mp_context import get_mp_context

    if config.credentials.type not in FACTORY.adapters:
        register_adapter(config, get_mp_context())
    adapter = get_adapter(config)
    if getattr(adapter, "_dbtproof_manifest", None) is not manifest:
        adapter.set_macro_resolver(manifest)
        adapter.set_macro_context_generator(generate_runtime_macro_context)
        adapter._dbtproof_manifest = manifest
    return adapter


@contextmanager
def connection(adapter: Any, name: str = "dbtproof") -> Iterator[Any]:
    """Hold a named connection of *adapter* open for the duration of the block."""
    with adapter.connection_named(name):
        yield adapter


def fetch(adapter: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run *sql* on *adapter*'s open connection and return column names and raw rows.

    SQL adapters hand back the driver's own values (ints, Decimals, dates); other
    adapters go through dbt's agate table.
    """
    connections = adapter.connections
    if hasattr(connections, "add_query"):
        _, cursor = connections.add_query(sql, auto_begin=False)
        description = cursor.description or []
        columns = [str(col[0]) for col in description]
        data = [tuple(row) for row in cursor.fetchall()] if description else []
        return columns, data
    _, table = adapter.execute(sql, fetch=True)
    return list(table.column_names), [tuple(row.values()) for row in table.rows]


def _commit_if_open(adapter: Any) -> None:
    connection = adapter.connections.get_if_exists()
    if connection is not None and connection.transaction_open:
        adapter.connections.commit()


def execute(adapter: Any, sql: str) -> None:
    """Run a statement (DDL or DML) on *adapter*'s open connection and commit it."""
    adapter.execute(sql, auto_begin=True, fetch=False)
    _commit_if_open(adapter)


def list_schemas(adapter: Any, database: str) -> list[str]:
    """Schemas of *database*, through the adapter's own ``list_schemas`` macro."""
    return [str(s) for s in adapter.list_schemas(database)]


def drop_schemas(adapter: Any, database: str, schemas: Sequence[str]) -> None:
    """Drop each schema (with everything in it) through the adapter's ``drop_schema``."""
    for schema in schemas:
        relation = adapter.Relation.create(database=database, schema=schema)
        adapter.drop_schema(relation)
        _commit_if_open(adapter)


def close_adapter_connections(adapter: Any) -> None:
    """Close every connection *adapter* holds (DuckDB releases its file lock)."""
    adapter.cleanup_connections()
    close_all = getattr(type(adapter.connections), "close_all_connections", None)
    if close_all is not None:
        close_all()


def hide_dbt_file_logger() -> None:
    """Keep dbt's debug file log out of pytest's log capture.

    dbt writes its log file through a non-propagating Python logger named
    ``file_log``; pytest (8+) attaches its capture handler to every such logger it
    finds, which would paste dbt's whole debug log into every failure report. The
    logger object dbt holds keeps writing to the file; it is only unlisted.
    """
    import logging

    logging.root.manager.loggerDict.pop("file_log", None)


def reset_compilation_state(manifest: Any) -> None:
    """Return every node of a reused manifest to its freshly parsed compilation state.

    dbt compiles nodes in place. A second invocation with the same manifest
    re-renders a model's SQL but skips injecting ephemeral CTEs, because the node
    still says ``extra_ctes_injected``, and the SQL then names a CTE that is not
    there. dbt's CLI never notices: it parses anew for every invocation.
    """
    for node in manifest.nodes.values():
        if getattr(node, "extra_ctes_injected", False) or getattr(node, "compiled", False):
            node.extra_ctes_injected = False
            node.extra_ctes = []
            node._pre_injected_sql = None
            node.compiled = False
            node.compiled_code = None
