"""Running the assembled statement through the adapter's connection, and explaining failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.errors import FixtureValueError, ModelSQLError
from dbtproof.rows import Rows

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
    try:
        columns, data = compat.cursor_fetch(adapter, sql)
    except Exception as exc:
        compat.release_connection(adapter)
        raise ModelSQLError(
            f"dbtproof: the database rejected the SQL that runs {what}:\n{reason_of(exc)}\n"
            f"--- SQL ---\n{sql}"
        ) from exc
    return Rows(columns, data)


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


def find_bad_value(adapter: Any, fixtures: Mapping[str, tuple[str, list[str]]]) -> None:
    """After a failed statement, find a fixture value the database cannot cast, if any.

    *fixtures* maps a fixture's description to the SQL of each of its rows. Each
    fixture is tried alone, then row by row; the first failing row is reported.

    :raises FixtureValueError: naming the fixture, the row and the database's reason.
    """
    for description, rows in fixtures.items():
        if not rows:
            continue
        try:
            compat.cursor_fetch(adapter, "\nunion all\n".join(rows))
            continue
        except Exception:  # noqa: BLE001 - this fixture is the culprit: narrow it down
            _reopen(adapter)
        for number, row_sql in enumerate(rows, start=1):
            try:
                compat.cursor_fetch(adapter, row_sql)
            except Exception as exc:  # noqa: BLE001
                _reopen(adapter)
                raise FixtureValueError(
                    f"dbtproof: in the fixture for {description}, row {number} cannot be "
                    f"typed as its upstream's columns:\n{reason_of(exc)}\n--- SQL of that row "
                    f"---\n{row_sql}"
                ) from exc
