"""Running SQL on a dbt adapter's connections, and connections dbt does not manage.

Three kinds: the adapter's own connection, held for a block (:func:`connection`) or
across calls (:func:`hold_connection` / :func:`release_connection`); a connection of the
adapter's kind that dbt's releases and resets never close (:func:`open_dedicated_connection`,
the liveness mark's); and a bare driver connection in autocommit mode
(:func:`open_own_connection`, the guard's).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

# -- the adapter's own connection ----------------------------------------------------


@contextmanager
def connection(adapter: Any, name: str = "dbtproof") -> Iterator[Any]:
    """Hold a named connection of *adapter* open for the duration of the block."""
    with adapter.connection_named(name):
        yield adapter


def hold_connection(adapter: Any, name: str) -> None:
    """Open (or reuse) this thread's connection of *adapter* and leave it open.

    Unlike :func:`connection`, nothing closes it at the end of a block: model unit
    tests run one after the other on the same connection. It is closed by
    :func:`release_connection`, by the next :func:`connection` block, by a dbt
    invocation (which resets the adapters) or at session end.
    """
    adapter.acquire_connection(name)


def open_now(adapter: Any) -> None:
    """Open this thread's connection of *adapter* now, not at its first statement (dbt opens
    lazily), so that a failure to connect is told apart from a failing statement. A
    connection dbt holds open already is left as it is."""
    connection = adapter.connections.get_thread_connection()
    if connection.handle is None:  # dbt's open failed without raising (retries exhausted)
        raise ConnectionError(f"dbt could not open the connection {connection.name!r}")


def release_connection(adapter: Any) -> None:
    """Close this thread's connection of *adapter* (rolling back what is open); never raises."""
    try:
        adapter.release_connection()
    except Exception:  # noqa: BLE001 - a broken connection is dropped either way
        with suppress(Exception):
            adapter.connections.clear_thread_connection()


def close_adapter_connections(adapter: Any) -> None:
    """Close every connection *adapter* holds (DuckDB releases its file lock)."""
    adapter.cleanup_connections()
    close_all = getattr(type(adapter.connections), "close_all_connections", None)
    if close_all is not None:
        close_all()


def held_handle(adapter: Any) -> Any:
    """The driver connection of this thread's open connection of *adapter*, or None.

    What runs on it sees the work of its open transaction (a model unit test's).
    """
    connection = adapter.connections.get_if_exists()
    if connection is None or str(getattr(connection.state, "value", connection.state)) != "open":
        return None
    return connection.handle


def fetch(adapter: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run *sql* on *adapter*'s open connection and return column names and raw rows.

    SQL adapters hand back the driver's own values (ints, Decimals, dates); other
    adapters go through dbt's agate table.
    """
    connections = adapter.connections
    if hasattr(connections, "add_query"):
        _, cursor = connections.add_query(with_comment(adapter, sql), auto_begin=False)
        description = cursor.description or []
        columns = [str(col[0]) for col in description]
        data = [tuple(row) for row in cursor.fetchall()] if description else []
        return columns, data
    _, table = adapter.execute(sql, fetch=True)
    return list(table.column_names), [tuple(row.values()) for row in table.rows]


def with_comment(adapter: Any, sql: str) -> str:
    """*sql* with the adapter's query comment, as dbt's ``execute`` adds it (the run id
    and dbt's invocation id: :mod:`dbtproof._dbt_compat.query_comment`)."""
    header = getattr(adapter.connections, "query_header", None)
    return header.add(sql) if header is not None else sql


def cursor_fetch(adapter: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run *sql* on the raw DB-API cursor of the adapter's open connection.

    The fast path of model unit tests: it skips dbt's per-query events (about 1 ms per
    statement), not the query comment. Adapters whose connection has no DB-API cursor go
    through :func:`fetch`.
    """
    connection = adapter.connections.get_thread_connection()
    handle = connection.handle
    if not hasattr(handle, "cursor"):
        return fetch(adapter, sql)
    # Not closed afterwards: some adapters (dbt-duckdb) hand out the connection's own cursor.
    cursor = handle.cursor()
    cursor.execute(with_comment(adapter, sql))
    description = cursor.description or []
    columns = [str(col[0]) for col in description]
    data = [tuple(row) for row in cursor.fetchall()] if description else []
    return columns, data


def fetch_one_select(adapter: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """:func:`cursor_fetch`, and whether *sql* ran as one ``SELECT`` by the warehouse's own
    parser (a ``SELECT`` writes nothing; a ``;`` followed by an ``ATTACH`` makes two).

    DuckDB: the SQL is parsed once (``extract_statements``) and, when it is exactly one
    statement of type ``SELECT``, that parsed statement runs (no second parse); anything
    else runs as text, as :func:`cursor_fetch` runs it (its errors unchanged). Any other
    adapter: :func:`cursor_fetch`, and False.
    """
    handle = adapter.connections.get_thread_connection().handle
    if str(adapter.type()) != "duckdb" or not hasattr(handle, "cursor"):
        return (*cursor_fetch(adapter, sql), False)
    import duckdb

    cursor = handle.cursor()  # dbt-duckdb's: the connection's own cursor, not closed
    text = with_comment(adapter, sql)
    try:
        statements = cursor.extract_statements(text)
    except Exception:  # noqa: BLE001 - run as text: the database says why, as before
        statements = []
    one = len(statements) == 1 and statements[0].type == duckdb.StatementType.SELECT
    cursor.execute(statements[0] if one else text)
    description = cursor.description or []
    columns = [str(col[0]) for col in description]
    data = [tuple(row) for row in cursor.fetchall()] if description else []
    return columns, data, one


def execute(adapter: Any, sql: str) -> None:
    """Run a statement (DDL or DML) on *adapter*'s open connection and commit it."""
    adapter.execute(sql, auto_begin=True, fetch=False)
    commit_if_open(adapter)


def commit_if_open(adapter: Any) -> None:
    """Commit the open transaction of the adapter's current connection, if there is one."""
    connection = adapter.connections.get_if_exists()
    if connection is not None and connection.transaction_open:
        adapter.connections.commit()


def rollback_if_open(adapter: Any) -> None:
    """Roll back an open transaction of the adapter's current connection (after an error)."""
    connection = adapter.connections.get_if_exists()
    if connection is not None and connection.transaction_open:
        adapter.connections.rollback_if_open()


def try_advisory_lock(adapter: Any, key: int) -> bool:
    """PostgreSQL: take the advisory lock *key* exclusively on the adapter's open
    connection if no other session holds it (shared or not); True when taken."""
    _, rows = fetch(adapter, f"select pg_try_advisory_lock({int(key)}) as taken")
    return bool(rows and rows[0][0])


# -- connections dbt does not manage -------------------------------------------------


def open_dedicated_connection(adapter: Any, name: str) -> Any:
    """A connection of the adapter's own kind, opened with its credentials, that the
    adapter does not manage: dbt's releases and resets never close it. Close it with
    :func:`close_dedicated_connection`."""
    from dbt.adapters.contracts.connection import Connection

    credentials = adapter.config.credentials
    connection = Connection(type=credentials.type, name=name, credentials=credentials)
    return type(adapter.connections).open(connection)


def execute_on(connection: Any, sql: str) -> None:
    """Run *sql* on a dedicated connection (autocommitted where the driver allows)."""
    handle = connection.handle
    if hasattr(handle, "autocommit") and not handle.autocommit:
        handle.commit()  # what opening ran (dbt-postgres's `set role`) stays
        handle.autocommit = True
    cursor = handle.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def execute_dedicated(connection: Any, sql: str) -> None:
    """Run *sql* on a dedicated connection as it is (no autocommit switch, its cursor kept
    open: dbt-duckdb's connection has a single cursor, which closing would end)."""
    connection.handle.cursor().execute(sql)


def fetch_dedicated(connection: Any, sql: str) -> list[tuple[Any, ...]]:
    """The rows of *sql* on a dedicated connection (its cursor kept open, as
    :func:`execute_dedicated` keeps it)."""
    cursor = connection.handle.cursor()
    cursor.execute(sql)
    return [tuple(row) for row in cursor.fetchall()]


def fetch_dedicated_rows(connection: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and rows of *sql* on a dedicated connection (its cursor kept
    open, as :func:`execute_dedicated` keeps it)."""
    cursor = connection.handle.cursor()
    cursor.execute(sql)
    description = cursor.description or []
    data = [tuple(row) for row in cursor.fetchall()] if description else []
    return [str(column[0]) for column in description], data


def close_dedicated_connection(connection: Any) -> None:
    """Close a connection from :func:`open_dedicated_connection` (errors ignored)."""
    with suppress(Exception):  # closing a dead connection is not an error
        connection.handle.close()


def open_own_connection(adapter: Any, name: str, credentials: Any = None) -> Any:
    """A new driver connection, opened as dbt opens *adapter*'s (every profile option
    applied; *credentials*, when given, instead of the adapter's), in autocommit mode;
    the caller keeps it and closes it.

    dbt closes its connections when released, so a caller that queries often (the
    guard) would otherwise pay a new connection per query.
    """
    from dbt.adapters.contracts.connection import Connection

    credentials = adapter.config.credentials if credentials is None else credentials
    connection = Connection(type=adapter.type(), name=name, credentials=credentials)
    type(adapter.connections).open(connection)
    handle = connection.handle
    # Keep what opening ran (dbt-postgres's `set role` opens a transaction) before autocommit.
    handle.commit()
    handle.autocommit = True
    return handle
