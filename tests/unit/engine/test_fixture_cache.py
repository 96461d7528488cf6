"""The engine's cache of fixture SQL never hands a fixture the SQL of another.

Each case writes fixtures that Python calls equal, or that differ only in what the SQL
is made of (a value's type, a column's type, the columns' order, the dialect), through
one cache, and checks that each gets exactly the SQL written for it alone.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from dbtproof.engine.fixture_cache import FixtureSQLCache
from dbtproof.engine.inputs import Column, Dialect, Schema, fixture_sql
from dbtproof.engine.reading import Fixture


def _dialect(quote_char: str = '"') -> Dialect:
    return Dialect(
        cast=lambda value, data_type: f"cast({value} as {data_type})",
        quote=lambda name: f"{quote_char}{name}{quote_char}",
        quote_char=quote_char,
        decimal_scaled="decimal(38, {scale})",
        binary="blob",
        binary_style="escaped",
    )


def _fixture(rows: list[dict[str, Any]], from_text: bool = False) -> Fixture:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    return Fixture("ref('upstream')", "rows", columns, rows, from_text=from_text)


UNKNOWN = Schema([], complete=False)
DIALECT = _dialect()


def _through_cache(cases: list[tuple[Fixture, Schema, Dialect, str]]) -> None:
    """Each case, written twice through one cache, is the SQL written for it alone."""
    cache = FixtureSQLCache()
    expected = [fixture_sql(*case) for case in cases]
    for _ in range(2):
        got = [cache.sql(*case, fixture_sql) for case in cases]
        assert got == expected


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([1, 1.0, True, Decimal(1)], id="int-float-bool-decimal"),
        pytest.param([Decimal("1.0"), Decimal("1.00"), Decimal("1")], id="decimal-scale"),
        pytest.param([0.0, -0.0, False, 0], id="zeros"),
        pytest.param(
            [date(2024, 1, 2), datetime(2024, 1, 2), "2024-01-02"], id="date-datetime-text"
        ),
    ],
)
def test_values_equal_in_python_but_written_differently(values: list[Any]) -> None:
    cases = [(_fixture([{"x": value}]), UNKNOWN, DIALECT, "ref('upstream')") for value in values]
    assert len({fixture_sql(*case) for case in cases}) == len(values)  # each its own SQL
    _through_cache(cases)


def test_the_same_rows_against_other_column_types() -> None:
    fixture = _fixture([{"x": 1, "y": "a"}])
    schemas = [
        Schema([Column("x", "integer"), Column("y", "varchar")], complete=True),
        Schema([Column("x", "bigint"), Column("y", "varchar")], complete=True),
        Schema([Column("x", "integer"), Column("y", "varchar"), Column("z", "date")], True),
        Schema([Column("x", None, hint="number"), Column("y", "varchar")], complete=False),
    ]
    _through_cache([(fixture, schema, DIALECT, "ref('upstream')") for schema in schemas])


def test_columns_order_text_and_dialect() -> None:
    cases = [
        (_fixture([{"a": 1, "b": 2}]), UNKNOWN, DIALECT, "ref('upstream')"),
        (_fixture([{"b": 2, "a": 1}]), UNKNOWN, DIALECT, "ref('upstream')"),
        (_fixture([{"a": "1", "b": "2"}], from_text=True), UNKNOWN, DIALECT, "ref('upstream')"),
        (_fixture([{"a": 1, "b": 2}]), UNKNOWN, _dialect("`"), "ref('upstream')"),
    ]
    _through_cache(cases)


def test_values_a_repr_may_not_tell_apart_are_written_each_time() -> None:
    cache = FixtureSQLCache()
    calls = []

    def write(*args: Any) -> str:
        calls.append(args)
        return fixture_sql(*args)

    aware = datetime(2024, 1, 2, tzinfo=timezone.utc)
    for rows in ([{"x": [1, 2]}], [{"x": {"k": 1}}], [{"x": aware}]):
        for _ in range(2):
            cache.sql(_fixture(rows), UNKNOWN, DIALECT, "ref('upstream')", write)
    assert len(calls) == 6
    cache.sql(_fixture([{"x": 1}]), UNKNOWN, DIALECT, "ref('upstream')", write)
    cache.sql(_fixture([{"x": 1}]), UNKNOWN, DIALECT, "ref('upstream')", write)
    assert len(calls) == 7  # a plain fixture given again is written once
