"""Running the assembled statement through the adapter's connection, and explaining failures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.compare.rows import Rows
from dbtproof.errors import FixtureValueError, ModelSQLError

#: Name of the connection model unit tests run on.
CONNECTION = "dbtproof_run_model"


def reason_of(exc: BaseException) -> str:
    """The database's message for a failed statement, without dbt's decorations."""
    text = str(exc).strip() or type(exc).__name__
    return "\n".join(f"  {line}" for line in text.splitlines())


def run_select(adapter: Any, sql: str, what: str) -> Rows:
    """Run *sql* on the adapter's open connection and return its rows.

    :raises ModelSQLError: when the database refuses it; the message shows the SQL.
    """
    return run_one_select(adapter, sql, what, proof=False)[0]


def run_one_select(adapter: Any, sql: str, what: str, proof: bool = True) -> tuple[Rows, bool]:
    """:func:`run_select`, and (with *proof*) whether *sql* ran as one ``SELECT`` by the
    warehouse's own parser (:func:`dbtproof._dbt_compat.fetch_one_select`: DuckDB only).

    :raises ModelSQLError: when the database refuses it; the message shows the SQL.
    """
    try:
        if proof:
            columns, data, one = compat.fetch_one_select(adapter, sql)
        else:
            (columns, data), one = compat.cursor_fetch(adapter, sql), False
    except Exception as exc:
        compat.release_connection(adapter)
        raise ModelSQLError(
            f"dbtproof: the database rejected the SQL that runs {what}:\n{reason_of(exc)}\n"
            f"--- SQL ---\n{sql}"
        ) from exc
    return Rows(columns, _bytes_as_bytes(data)), one


def _bytes_as_bytes(data: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """*data* with binary values as ``bytes`` (psycopg2 gives a ``memoryview`` of a
    ``bytea``); *data* itself where no column holds one."""
    if not _BINARY_VIEWS & set(map(type, chain.from_iterable(data))):
        return data
    return [
        tuple(bytes(value) if type(value) in _BINARY_VIEWS else value for value in row)
        for row in data
    ]


_BINARY_VIEWS = frozenset({memoryview, bytearray})


def run_statement(adapter: Any, sql: str, what: str) -> None:
    """Run a statement that returns no rows (DDL, DML) on the open connection and commit it.

    :raises ModelSQLError: when the database refuses it; the message shows the SQL.
    """
    try:
        compat.execute(adapter, sql)
    except Exception as exc:
        compat.release_connection(adapter)
        raise ModelSQLError(
            f"dbtproof: the database rejected the SQL that {what}:\n{reason_of(exc)}\n"
            f"--- SQL ---\n{sql}"
        ) from exc


def _reopen(adapter: Any) -> None:
    """Drop a connection a failed statement may have left unusable, and open a fresh one."""
    compat.release_connection(adapter)
    compat.hold_connection(adapter, CONNECTION)


#: A fixture's row count, and the SQL of its rows ``[first, last)`` (from 0).
Slices = tuple[int, Callable[[int, int], str]]


def _fails(adapter: Any, sql: str) -> BaseException | None:
    """Run *sql*; the database's exception if it refuses it (the connection is then fresh)."""
    try:
        compat.cursor_fetch(adapter, sql)
    except Exception as exc:  # noqa: BLE001 - the database's refusal is the answer
        _reopen(adapter)
        return exc
    return None


def find_bad_value(adapter: Any, fixtures: Mapping[str, Slices]) -> None:
    """After a failed statement, find a fixture value the database cannot cast, if any.

    *fixtures* maps a fixture's description to its rows as SQL by slice. Each fixture is
    tried whole, then halved until one failing row is left (a few statements even for
    200,000 rows); the first failing row is reported. A fixture no single row of which
    fails (the rows only fail together) is not blamed.

    :raises FixtureValueError: naming the fixture, the row and the database's reason.
    """
    for description, (count, sql_of) in fixtures.items():
        if not count or _fails(adapter, sql_of(0, count)) is None:
            continue
        first, last = 0, count
        while last - first > 1:
            middle = (first + last) // 2
            if _fails(adapter, sql_of(first, middle)) is not None:
                last = middle
            elif _fails(adapter, sql_of(middle, last)) is not None:
                first = middle
            else:
                break
        else:
            row_sql = sql_of(first, last)
            exc = _fails(adapter, row_sql)
            if exc is not None:
                raise FixtureValueError(
                    f"dbtproof: in the fixture for {description}, row {first + 1} cannot be "
                    f"typed as its upstream's columns:\n{reason_of(exc)}\n--- SQL of that row "
                    f"---\n{row_sql}"
                ) from exc
