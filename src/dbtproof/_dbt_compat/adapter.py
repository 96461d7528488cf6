"""The dbt adapter: getting it ready, what it is, its relations and schemas (the macros of
its incremental strategies: :mod:`.incremental`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dbtproof._dbt_compat.connections import commit_if_open

# -- the adapter ---------------------------------------------------------------------


def registered_runtime_config(adapter_type: str) -> Any:
    """The ``RuntimeConfig`` of the adapter the last dbt invocation registered."""
    from dbt.adapters.factory import get_adapter_by_type

    return get_adapter_by_type(adapter_type).config


def runtime_threads(config: Any) -> int:
    """The threads dbt runs nodes on with the ``RuntimeConfig`` *config* (the target's
    ``threads``; 1 when unset)."""
    return int(getattr(config, "threads", None) or 1)


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
    if _registered_for_another(adapter.config, config):
        from dbt.adapters.factory import reset_adapters

        reset_adapters()
        register_adapter(config, get_mp_context())
        adapter = get_adapter(config)
    if adapter.get_macro_resolver() is not manifest:
        adapter.set_macro_resolver(manifest)
        adapter.set_macro_context_generator(generate_runtime_macro_context)
    return adapter


def _registered_for_another(registered: Any, config: Any) -> bool:
    """Whether the adapter dbt has registered was made for a config other than *config*.

    dbt keeps one adapter per type for the whole process. The last invocation may have
    registered it with a config that never loaded the project's packages (``dbt ls``:
    ``adapter.dispatch`` would fail), or another session in the same process (a test
    suite's, or a parse against a placeholder profile) with other credentials: a
    connection opened through it would reach that session's database or schema.
    """
    if getattr(registered, "dependencies", None) is None and config.dependencies is not None:
        return True
    return bool(registered.credentials != config.credentials)


def adapter_installed(adapter_type: str) -> bool:
    """Whether the dbt adapter package for *adapter_type* (``dbt.adapters.<type>``) is installed."""
    import importlib.util

    try:
        return importlib.util.find_spec(f"dbt.adapters.{adapter_type}") is not None
    except (ImportError, ValueError):
        return False


def adapter_type(adapter: Any) -> str:
    """The adapter's type name (``postgres``, ``duckdb``, ``snowflake`` ...)."""
    return str(adapter.type())


def quote(adapter: Any, identifier: str) -> str:
    """*identifier* quoted as the adapter quotes column names."""
    return str(adapter.quote(identifier))


# -- relations -----------------------------------------------------------------------


def table_relation(adapter: Any, database: str | None, schema: str, identifier: str) -> Any:
    """A table relation ``database.schema.identifier`` with the project's quoting."""
    quote_policy = dict(getattr(adapter.config, "quoting", {}) or {})
    return adapter.Relation.create(
        database=database,
        schema=schema,
        identifier=identifier,
        type="table",
        quote_policy=quote_policy,
    )


def node_relation(adapter: Any, config: Any, node: Any) -> Any:
    """The relation a manifest node would have in the warehouse."""
    return adapter.Relation.create_from(config, node)


def relation_exists(adapter: Any, database: str | None, schema: str, identifier: str) -> bool:
    """Whether ``database.schema.identifier`` exists (the adapter's own lookup, uncached)."""
    return adapter.get_relation(database, schema, identifier) is not None


def drop_relation(adapter: Any, relation: Any) -> None:
    """Drop a relation (if it exists) and commit."""
    adapter.drop_relation(relation)
    commit_if_open(adapter)


class CteRelations:
    """Relations that render as the bare name of a CTE, made once and kept.

    Relations are frozen dataclasses, so one is made per adapter relation class, name
    and kind, and handed out again (at most 5000 are kept; then it starts anew).
    """

    _MAX = 5000

    def __init__(self) -> None:
        self._made: dict[tuple[Any, str, bool], Any] = {}

    def get(self, adapter: Any, identifier: str, is_cte: bool = True) -> Any:
        """A relation that renders as *identifier* (as dbt's unit tests use for inputs).

        With ``is_cte=False`` its type is unset, as a table's, view's or source's relation
        is in a run, so macros that refuse ephemeral relations (``relation.is_cte``, as
        ``dbt_utils.get_column_values`` does) accept it.
        """
        key = (adapter.Relation, identifier, is_cte)
        relation = self._made.get(key)
        if relation is None:
            kind = "cte" if is_cte else None
            relation = adapter.Relation.create(type=kind, identifier=identifier).quote(
                identifier=False
            )
            if len(self._made) >= self._MAX:
                self._made.clear()
            self._made[key] = relation
        return relation


# -- schemas -------------------------------------------------------------------------


def list_schemas(adapter: Any, database: str) -> list[str]:
    """Schemas of *database*, through the adapter's own ``list_schemas`` macro."""
    return [str(s) for s in adapter.list_schemas(database)]


def ensure_schema(adapter: Any, database: str | None, schema: str) -> None:
    """Create *schema* if it does not exist (through the adapter's ``create_schema``).

    Looked up first: PostgreSQL checks the right to create schemas even for one that
    exists, and a run role (see :mod:`dbtproof.safety.run_role`) has none.
    """
    if adapter.check_schema_exists(database, schema):
        return
    relation = adapter.Relation.create(database=database, schema=schema)
    adapter.create_schema(relation)
    commit_if_open(adapter)


def drop_schemas(adapter: Any, database: str | None, schemas: Sequence[str], cascade: bool) -> None:
    """Drop each schema with everything in it through the adapter's ``drop_schema``.

    Where the adapter's schema drop does not *cascade* (the caller knows:
    ``targets.rules_for(...).drop_cascades``), the schema's relations are dropped first.
    """
    for schema in schemas:
        relation = adapter.Relation.create(database=database, schema=schema)
        if not cascade:
            for inner in adapter.list_relations_without_caching(relation):
                adapter.drop_relation(inner)
                commit_if_open(adapter)
        adapter.drop_schema(relation)
        commit_if_open(adapter)
