"""Rows handed to the database driver as data, through its bulk path, by adapter type.

A fixture of many rows written as SQL text costs the database a parse of every value
(200,000 rows in a ``VALUES`` list: seconds, and gigabytes on DuckDB). Here the rows go to
the driver of the adapter's open connection as data, as columns of text (each the text the
SQL path would have quoted), into a relation of that connection only:

* DuckDB: numpy arrays of the texts registered on the connection's cursor (a view of
  that connection, nothing in the database file);
* PostgreSQL: a temporary table filled with ``COPY ... FROM STDIN`` (psycopg2's
  ``copy_expert``), in the connection's open transaction.

Other adapters have no bulk path here: :func:`stage_rows` returns None and the caller
writes the rows as SQL. The column names are ``c1 .. cN``; the relation's name is the
caller's (a fixed, plain name).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from contextlib import suppress
from types import MappingProxyType
from typing import Any

from dbtproof._dbt_compat.adapter import adapter_type

#: Adapter types with a bulk path.
BULK_ADAPTERS = frozenset({"duckdb", "postgres"})

#: COPY's text format: these characters are written escaped.
_COPY_ESCAPES = MappingProxyType(
    str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
)


def can_stage(adapter: Any) -> bool:
    """Whether *adapter*'s driver has a bulk path here."""
    return adapter_type(adapter) in BULK_ADAPTERS


def stage_rows(adapter: Any, name: str, columns: Iterable[list[str | None]]) -> str | None:
    """Load *columns* (each a list of texts or None, all of one length; read one at a
    time) as relation *name* of the adapter's open connection, with text columns
    ``c1 .. cN``.

    Returns how SQL on that connection names the relation, or None where the adapter
    (or the Python packages at hand) has no bulk path.
    """
    kind = adapter_type(adapter)
    if kind == "duckdb":
        return _stage_duckdb(_handle(adapter), name, columns)
    if kind == "postgres":
        return _stage_postgres(_handle(adapter), name, columns)
    return None


def unstage_rows(adapter: Any, name: str) -> None:
    """Drop relation *name* that :func:`stage_rows` loaded; never raises (a connection
    closed since took it away already)."""
    kind = adapter_type(adapter)
    connection = adapter.connections.get_if_exists()
    if connection is None or connection.handle is None:
        return
    with suppress(Exception):
        cursor = connection.handle.cursor()
        if kind == "duckdb":
            cursor.unregister(name)
        elif kind == "postgres":
            cursor.execute(f"drop table if exists pg_temp.{name}")


def _copy_texts(column: list[str | None]) -> list[str]:
    """A column's texts as COPY's text format writes them (NULL as ``\\N``)."""
    joined = "\x01".join(filter(None, column))
    if any(special in joined for special in "\\\t\n\r"):
        column = [None if value is None else value.translate(_COPY_ESCAPES) for value in column]
    if None in column:
        return ["\\N" if value is None else value for value in column]
    return column  # type: ignore[return-value]


def _handle(adapter: Any) -> Any:
    return adapter.connections.get_thread_connection().handle


def _stage_duckdb(handle: Any, name: str, columns: Iterable[list[str | None]]) -> str | None:
    try:
        import numpy
    except ImportError:
        return None
    # A dict of numpy object arrays: DuckDB scans the strings where they are (no copy into
    # another format, and neither pandas nor pyarrow imported).
    data = {f"c{i}": numpy.array(column, dtype=object) for i, column in enumerate(columns, start=1)}
    # dbt-duckdb's handle hands out the connection's own cursor (a DuckDB connection).
    handle.cursor().register(name, data)
    return name


def _stage_postgres(handle: Any, name: str, columns: Iterable[list[str | None]]) -> str:
    columns = list(columns)
    cursor = handle.cursor()
    try:
        definition = ", ".join(f"c{i} text" for i in range(1, len(columns) + 1))
        cursor.execute(f"drop table if exists pg_temp.{name}")
        cursor.execute(f"create temporary table {name} ({definition})")
        lines = map("\t".join, zip(*map(_copy_texts, columns), strict=True))
        buffer = io.StringIO("\n".join(lines) + "\n")
        cursor.copy_expert(f"copy pg_temp.{name} from stdin", buffer)
    finally:
        cursor.close()
    return f"pg_temp.{name}"
