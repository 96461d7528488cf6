"""The SQL of fixtures an engine wrote already, reused for a fixture given again.

Tests of one model (parametrized over vars, or each checking one thing) often give the
same rows to the same upstream; writing a fixture as SQL checks and writes every value
(about a millisecond for a few dozen rows), so the engine keeps what it wrote.

The key is everything the SQL is made of, so that no other fixture, schema, dialect or
upstream can reuse an entry: each field of the :class:`~dbtproof.engine.reading.Fixture`
and of the :class:`~dbtproof.engine.inputs.Schema` (whatever fields they have), the
:class:`~dbtproof.engine.inputs.Dialect` (but for the current call's bulk path), the
upstream, and each value as its exact type and its ``repr`` — not the value itself, since ``1``,
``1.0`` and ``True`` are equal in Python and so are ``Decimal('1.0')`` and
``Decimal('1.00')``, but each is written differently. A fixture holding a value whose
``repr`` may not tell it apart from another (a dict, a list, an object of another type, a
datetime with a time zone) is written each time, as are fixtures loaded through the
driver's bulk path (their SQL names the relation staged for the current call).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import fields, replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from dbtproof.engine.inputs import Dialect, Schema
from dbtproof.engine.reading import Fixture

#: Types whose ``repr`` tells two values apart whenever they are written differently.
_PLAIN_TYPES = frozenset({type(None), bool, int, float, str, bytes, Decimal, date})
#: Types that are plain without a time zone (a tzinfo's ``repr`` may not be faithful).
_NAIVE_TYPES = frozenset({datetime, time})
#: Entries kept at most (the oldest is dropped first); a suite rarely gives this many.
_LIMIT = 4096


class FixtureSQLCache:
    """Fixture SQL by what it was written from (see the module documentation)."""

    def __init__(self) -> None:
        self._written: dict[Hashable, str] = {}

    def clear(self) -> None:
        """Forget every entry (the engine's manifest changed)."""
        self._written.clear()

    def sql(
        self,
        fixture: Fixture,
        schema: Schema,
        dialect: Dialect,
        upstream: str,
        write: Callable[[Fixture, Schema, Dialect, str], str],
    ) -> str:
        """``write(fixture, schema, dialect, upstream)``, or what it returned for the same
        arguments before."""
        key = _key(fixture, schema, dialect, upstream)
        if key is None:
            return write(fixture, schema, dialect, upstream)
        written = self._written.get(key)
        if written is None:
            written = write(fixture, schema, dialect, upstream)
            if len(self._written) >= _LIMIT:
                del self._written[next(iter(self._written))]
            self._written[key] = written
        return written


def _key(fixture: Fixture, schema: Schema, dialect: Dialect, upstream: str) -> Hashable | None:
    """What *fixture*'s SQL is written from, or None where it cannot be told apart safely."""
    if dialect.stage is not None and len(fixture.rows) >= dialect.bulk_rows:
        return None  # the bulk path: the SQL reads what the current call staged
    rows = _rows_key(fixture)
    if rows is None:
        return None
    fixture_fields = tuple(
        _field_key(getattr(fixture, f.name)) for f in fields(fixture) if f.name != "rows"
    )
    schema_fields = tuple(_field_key(getattr(schema, f.name)) for f in fields(schema))
    # The bulk path's function is the current call's: not part of what a small fixture's
    # SQL is written from.
    writing = replace(dialect, stage=None, bulk_rows=0)
    return (fixture_fields, rows, schema_fields, writing, upstream)


def _field_key(value: Any) -> Any:
    """A field's value as a key: a list as a tuple (its items are hashable or it fails)."""
    return tuple(value) if isinstance(value, list) else value


def _rows_key(fixture: Fixture) -> tuple[Any, ...] | None:
    """Each row as ``(column, type, repr)`` of each value; None if a value is not plain."""
    plain, naive = _PLAIN_TYPES, _NAIVE_TYPES
    rows = []
    for row in fixture.rows:
        cells = []
        for name, value in row.items():
            kind = type(value)
            if kind not in plain and not (kind in naive and value.tzinfo is None):
                return None
            cells.append((name, kind, repr(value)))
        rows.append(tuple(cells))
    return tuple(rows)
