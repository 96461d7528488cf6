"""The read-only connections an agent's reads go through.

A dedicated connection of the workspace's session (on PostgreSQL it logs in as the run
role, confined to the run namespace and the sample's tables), put in read-only mode by
the database itself: PostgreSQL's ``set session characteristics as transaction read
only`` (``default_transaction_read_only`` on for the session), DuckDB's ``begin
transaction read only`` before each read. A write in a query is then refused by the
database, whatever the SQL says.

:class:`ReadOnlyConnection` is the one a workspace reads on (profiles, proposals' failure
counts, the rows a unit test is given): each read ends with a rollback, so that no
transaction stays open between reads (no lock held, the next read sees what was built
since). :func:`read_only` is a connection of its own for an approved singular test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.agents.catalog import ToolRefusal
from dbtproof.compare.rows import Rows
from dbtproof.errors import DbtproofError

#: The statements that make a fresh connection read-only, by adapter type.
READ_ONLY_STATEMENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # the SET runs in a transaction of its own, which is not read-only yet: ended here
        "postgres": ("set session characteristics as transaction read only", "commit"),
        "duckdb": ("begin transaction read only",),
    }
)

#: What starts each read of a :class:`ReadOnlyConnection`, by adapter type (DuckDB's
#: read-only mode is a transaction's, so every read begins one).
EACH_READ: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"postgres": (), "duckdb": ("begin transaction read only",)}
)


def _refusal(adapter_type: str) -> ToolRefusal:
    return ToolRefusal(
        f"refused: dbtproof cannot open a read-only connection on {adapter_type}, "
        f"so it runs no agent's query there (PostgreSQL and DuckDB only)."
    )


@contextlib.contextmanager
def read_only(session: Any) -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    """A function that runs one query on a read-only connection of *session*'s and
    returns its rows; the connection is closed after the block."""
    statements = READ_ONLY_STATEMENTS.get(session.adapter_type)
    if statements is None:
        raise _refusal(session.adapter_type)
    connection = compat.open_dedicated_connection(session.adapter(), "dbtproof_agent_read")
    try:
        for statement in statements:
            compat.execute_dedicated(connection, statement)
        yield lambda sql: compat.fetch_dedicated(connection, sql)
    finally:
        with contextlib.suppress(Exception):
            compat.execute_dedicated(connection, "rollback")
        compat.close_dedicated_connection(connection)


class ReadOnlyConnection:
    """A workspace's read-only connection: opened at the first read, kept, reopened
    after a read that failed, closed by :meth:`close`."""

    def __init__(self, session: Any) -> None:
        """One for *session* (PostgreSQL or DuckDB; a :class:`ToolRefusal` for others)."""
        if session.adapter_type not in READ_ONLY_STATEMENTS:
            raise _refusal(session.adapter_type)
        self._session = session
        self._connection: Any = None

    def _open(self) -> Any:
        if self._connection is None:
            adapter_type = self._session.adapter_type
            connection = compat.open_dedicated_connection(
                self._session.adapter(), "dbtproof_workspace_read"
            )
            try:
                if adapter_type == "postgres":
                    for statement in READ_ONLY_STATEMENTS[adapter_type]:
                        compat.execute_dedicated(connection, statement)
            except Exception:
                compat.close_dedicated_connection(connection)
                raise
            self._connection = connection
        return self._connection

    def query(self, sql: str) -> Rows:
        """The rows of *sql* (SQL dbtproof writes), read in a read-only transaction; a
        :class:`DbtproofError` naming the SQL when the database refuses it."""
        try:
            connection = self._open()
            try:
                for statement in EACH_READ[self._session.adapter_type]:
                    compat.execute_dedicated(connection, statement)
                columns, data = compat.fetch_dedicated_rows(connection, sql)
            finally:
                with contextlib.suppress(Exception):
                    compat.execute_dedicated(connection, "rollback")
        except Exception as exc:
            self.close()  # the next read starts on a fresh connection
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DbtproofError(
                f"dbtproof: a read on the workspace's read-only connection failed: "
                f"{first}\n--- SQL ---\n{sql}"
            ) from None
        return Rows(columns, data)

    def close(self) -> None:
        """Close the connection (a later read opens another)."""
        if self._connection is not None:
            compat.close_dedicated_connection(self._connection)
            self._connection = None
