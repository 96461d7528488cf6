"""The queries a model runs while it renders, answered from outside dbt: dbt's ``adapter``
with a handler in front (see :mod:`dbtproof.engine.queries`), and a query result made as
dbt's ``adapter.execute`` returns one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Members of dbt's ``adapter`` context value that run no statement: a macro dispatched
#: renders in the same context (its own ``adapter`` is the wrapper again); the rest build
#: names, relations and column objects.
NO_SQL = frozenset(
    {"dispatch", "quote", "quote_as_configured", "quote_seed_column", "type", "Relation",
     "Column", "config"}
)  # fmt: skip


class IntrospectiveAdapter:
    """dbt's ``adapter`` context value, with the queries a model runs while it renders
    answered by a *handler* first (see :mod:`dbtproof.engine.queries`).

    dbt's ``statement`` macro (behind ``run_query``) runs its SQL with
    ``adapter.execute(sql, auto_begin=..., fetch=...)``; ``load_relation`` asks
    ``adapter.get_relation(database, schema, identifier)``. *handler* has
    ``execute(sql, run, fetch, limit)`` — *run* runs the SQL (possibly rewritten)
    through dbt's adapter —, ``relation(database, schema, identifier)``, a relation or
    None to ask dbt's adapter, and ``columns(relation)``: the adapter's Column objects
    of a relation standing for a given input, or None to ask dbt's adapter. Everything
    else is dbt's ``adapter``.

    Whatever reaches dbt's adapter (a query not answered, a relation or columns dbt looks
    up, any other member but those of :data:`NO_SQL`: ``create_schema``,
    ``drop_relation``, ``connections`` ...) is told to the handler's ``to_dbt(name)``
    first: from there dbt may run any statement, which dbtproof does not see.
    """

    #: The wrapper's own state, in slots: dbt's adapter is wrapped, never written to.
    __slots__ = ("_wrapped", "_handler")

    def __init__(self, wrapped: Any, handler: Any) -> None:
        self._wrapped = wrapped
        self._handler = handler

    def __getattr__(self, name: str) -> Any:
        if name in IntrospectiveAdapter.__slots__:  # not set yet (a copy being made)
            raise AttributeError(name)
        if name not in NO_SQL:
            self._handler.to_dbt(name)
        return getattr(self._wrapped, name)

    def execute(
        self, sql: str, auto_begin: bool = False, fetch: bool = False, limit: int | None = None
    ) -> Any:
        wrapped = self._wrapped

        def run(text: str) -> Any:
            self._handler.to_dbt("execute")
            extra = {} if limit is None else {"limit": limit}
            return wrapped.execute(text, auto_begin=auto_begin, fetch=fetch, **extra)

        return self._handler.execute(str(sql), run, fetch, limit)

    def get_relation(self, database: Any, schema: Any, identifier: Any) -> Any:
        found = self._handler.relation(database, schema, identifier)
        if found is not None:
            return found
        self._handler.to_dbt("get_relation")
        return self._wrapped.get_relation(database, schema, identifier)

    def get_columns_in_relation(self, relation: Any) -> Any:
        found = self._handler.columns(relation)
        if found is not None:
            return found
        self._handler.to_dbt("get_columns_in_relation")
        return self._wrapped.get_columns_in_relation(relation)


def query_result(
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    from_text: bool,
    fetch: bool,
    limit: int | None = None,
) -> tuple[Any, Any]:
    """What dbt's ``adapter.execute`` returns for a query whose result rows are given:
    an ``AdapterResponse`` and an agate table (empty unless *fetch*).

    Values are typed as dbt types a query's result (``table_from_data_flat``: strings
    stay strings, numbers become Decimals); CSV text (*from_text*) is typed as dbt
    types a seed's cells (numbers, dates, booleans recognised).
    """
    from dbt.adapters.contracts.connection import AdapterResponse
    from dbt_common.clients import agate_helper

    rows = list(rows)[:limit] if limit is not None else list(rows)
    names = [str(c) for c in columns]
    response = AdapterResponse(
        _message=f"SELECT {len(rows)}", code="SELECT", rows_affected=len(rows)
    )
    if not fetch:
        return response, agate_helper.empty_table()
    if from_text:
        table = agate_helper.table_from_rows([[row.get(c) for c in names] for row in rows], names)
    else:
        table = agate_helper.table_from_data_flat(
            [{c: row.get(c) for c in names} for row in rows], names
        )
    return response, table
