"""The read-only connection an agent's approved query goes through.

A dedicated connection of the workspace's session (on PostgreSQL it logs in as the run
role, confined to the run namespace and the sample's tables), put in read-only mode by
the database itself before the query runs: PostgreSQL's ``set session characteristics
as transaction read only``, DuckDB's ``begin transaction read only``. A write in the
query is then refused by the database, whatever the SQL says.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.agents.catalog import ToolRefusal

#: The statements that make a fresh connection read-only, by adapter type.
READ_ONLY_STATEMENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # the SET runs in a transaction of its own, which is not read-only yet: ended here
        "postgres": ("set session characteristics as transaction read only", "commit"),
        "duckdb": ("begin transaction read only",),
    }
)


@contextlib.contextmanager
def read_only(session: Any) -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    """A function that runs one query on a read-only connection of *session*'s and
    returns its rows; the connection is closed after the block."""
    statements = READ_ONLY_STATEMENTS.get(session.adapter_type)
    if statements is None:
        raise ToolRefusal(
            f"refused: dbtproof cannot open a read-only connection on {session.adapter_type}, "
            f"so it runs no agent's query there (PostgreSQL and DuckDB only)."
        )
    connection = compat.open_dedicated_connection(session.adapter(), "dbtproof_agent_read")
    try:
        for statement in statements:
            compat.execute_dedicated(connection, statement)
        yield lambda sql: compat.fetch_dedicated(connection, sql)
    finally:
        with contextlib.suppress(Exception):
            compat.execute_dedicated(connection, "rollback")
        compat.close_dedicated_connection(connection)
