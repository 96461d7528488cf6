"""Query results as :class:`Rows`, and the rules for comparing them with what a test expects.

A :class:`Rows` is a read-only sequence of rows, each seen as a ``dict`` from column
name to value. It compares with ``==`` against a list of dicts (or another
:class:`Rows`) the way a test about table contents wants:

* **Order is ignored; duplicates count.** The rows are compared as a multiset.
  ``rows.ordered == expected`` compares in order instead.
* **Only the columns that ``expected`` names are compared.** Extra columns of the
  actual rows are ignored. Every dict of ``expected`` must name the same columns
  (else :class:`ValueError`). A column that ``expected`` names but the rows do not
  have makes the comparison false. A column name matches exactly or, when that
  finds nothing, case-insensitively if exactly one column matches that way (some
  warehouses upper-case unquoted names).
* **Numbers compare by value.** ``1``, ``1.0`` and ``Decimal("1")`` are equal;
  ``bool`` is not a number, so ``True != 1``. Integers (ints, integral Decimals and
  floats that hold an exact integer) compare exactly, so big ids stay exact. Every
  other number is rounded to 12 significant digits first, so ``0.1 + 0.2`` equals
  ``0.3`` and a warehouse's ``numeric`` average equals the Python float ratio.
  That is a relative tolerance of about 1e-12, done by rounding (so each cell has a
  hashable key and the comparison stays O(n)); two values just either side of a
  rounding boundary can still differ. ``NaN`` equals ``NaN``.
* **Dates, times and timestamps also equal their ISO strings.** ``date(2024, 1, 2)
  == "2024-01-02"``; ``datetime(2024, 1, 2, 3, 4, 5)`` equals both
  ``"2024-01-02T03:04:05"`` and ``"2024-01-02 03:04:05"``; ``time(3, 4) ==
  "03:04:00"``. Timezone-aware values compare by instant (``"...+01:00"`` and
  ``"...Z"`` strings too) and never equal naive ones. A date never equals a
  timestamp. As a consequence two strings that spell the same timestamp differently
  are equal too.
* ``None`` equals only ``None``. UUIDs equal their canonical string. Bytes,
  ``bytearray`` and ``memoryview`` compare by content; lists, tuples, dicts and sets
  (array and JSON columns) compare element-wise under these same rules.

When a comparison fails, :func:`diff_rows` explains it row by row; the dbtproof
pytest plugin shows that explanation through :func:`explain_comparison`.

This module does not import dbt, and imports pandas or pyarrow only when
:meth:`Rows.to_pandas` or :meth:`Rows.to_arrow` is called.
"""

from __future__ import annotations

import importlib
import numbers
import re
import uuid
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, overload

__all__ = ["OrderedRows", "Rows", "diff_rows", "explain_comparison"]

#: Rows shown per section of a diff before "... and N more".
MAX_DIFF_ROWS = 20
#: Rows shown by ``repr(rows)``.
MAX_REPR_ROWS = 10
#: Characters of a value's repr shown in a diff or a repr before it is cut.
MAX_VALUE_WIDTH = 60
#: Missing and unexpected rows considered (per side) when pairing them as changed rows.
MAX_PAIRING_ROWS = 250


# ---------------------------------------------------------------------------
# Cell normalisation: every cell becomes a hashable key; equal keys mean equal cells.
# ---------------------------------------------------------------------------

_ROUNDING = Context(prec=12, rounding=ROUND_HALF_EVEN)
_NAN_KEY = ("nan",)

_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME_PART = r"(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
_TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ]" + _TIME_PART + r"(?: ?(Z|z|[+-]\d{2}(?::?\d{2})?))?"
)
_TIME_RE = re.compile(_TIME_PART)


def _number_key(value: Decimal) -> Hashable:
    """Key of a number given as a Decimal: exact if integral, else 12 significant digits."""
    if value.is_nan():
        return _NAN_KEY
    if value.is_infinite() or value == value.to_integral_value():
        return ("num", value)
    return ("num", _ROUNDING.plus(value))


def _int_key(value: int) -> Hashable:
    return ("num", value)


def _float_key(value: float) -> Hashable:
    if value != value:
        return _NAN_KEY
    if value.is_integer():
        return ("num", int(value))
    # repr() is the shortest decimal that round-trips, i.e. the literal a person wrote.
    return _number_key(Decimal(repr(value)))


def _bool_key(value: bool) -> Hashable:
    return ("bool", value)


def _none_key(value: None) -> Hashable:
    return None


def _timestamp_key(
    fields: tuple[int, int, int, int, int, int], nanos: int, offset: timedelta | None
) -> Hashable:
    """Key of a timestamp: naive fields as they are, aware ones converted to UTC."""
    if offset is None:
        return ("ts", *fields, nanos)
    utc = datetime(*fields) - offset
    return ("tstz", utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, nanos)


def _datetime_key(value: datetime) -> Hashable:
    if value != value:  # pandas.NaT
        return _NAN_KEY
    nanos = value.microsecond * 1000 + int(getattr(value, "nanosecond", 0) or 0)
    fields = (value.year, value.month, value.day, value.hour, value.minute, value.second)
    return _timestamp_key(fields, nanos, value.utcoffset())


def _date_key(value: date) -> Hashable:
    return ("date", value.year, value.month, value.day)


def _time_key(value: time) -> Hashable:
    nanos = value.microsecond * 1000
    offset = value.utcoffset()
    if offset is None:
        return ("time", value.hour, value.minute, value.second, nanos)
    return ("timetz", value.hour, value.minute, value.second, nanos, offset)


def _nanos(fraction: str | None) -> int:
    return int(fraction.ljust(9, "0")) if fraction else 0


def _parse_offset(text: str | None) -> timedelta | None:
    if text is None:
        return None
    if text in ("Z", "z"):
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:]) if len(digits) > 2 else 0)
    return timedelta(minutes=sign * minutes)


def _str_key(value: str) -> Hashable:
    """A string is its own key, unless it spells a date, a time or a timestamp."""
    if len(value) < 5 or not value[0].isdigit():
        return value
    try:
        if value[4:5] == "-":
            if len(value) == 10:
                if _DATE_RE.fullmatch(value):
                    parsed = date.fromisoformat(value)
                    return ("date", parsed.year, parsed.month, parsed.day)
                return value
            match = _TIMESTAMP_RE.fullmatch(value)
            if match:
                year, month, day, hour, minute, second, fraction, offset = match.groups()
                fields = tuple(map(int, (year, month, day, hour, minute, second or 0)))
                datetime(*fields)  # validates the fields
                if offset is not None:
                    offset_delta = _parse_offset(offset)
                    timezone(offset_delta)  # validates the offset
                    return _timestamp_key(fields, _nanos(fraction), offset_delta)
                return _timestamp_key(fields, _nanos(fraction), None)
        elif value[2:3] == ":":
            match = _TIME_RE.fullmatch(value)
            if match:
                hour, minute, second, fraction = match.groups()
                parsed = time(int(hour), int(minute), int(second or 0))
                return ("time", parsed.hour, parsed.minute, parsed.second, _nanos(fraction))
    except ValueError:
        pass
    return value


_KEY_BY_TYPE: dict[type, Any] = {
    str: _str_key,
    int: _int_key,
    float: _float_key,
    Decimal: _number_key,
    bool: _bool_key,
    type(None): _none_key,
    datetime: _datetime_key,
    date: _date_key,
    time: _time_key,
}


def _cell_key(value: Any) -> Hashable:
    """Return the canonical hashable key of one cell (see the module docstring)."""
    key_of = _KEY_BY_TYPE.get(type(value))
    if key_of is not None:
        return key_of(value)
    return _other_key(value)


def _other_key(value: Any) -> Hashable:
    """Key of a cell whose exact type is not in the fast table (subclasses, numpy, ...)."""
    if isinstance(value, bool):
        return ("bool", bool(value))
    if isinstance(value, str):
        return _str_key(str(value))
    if isinstance(value, Decimal):
        return _number_key(value)
    if isinstance(value, float):
        return _float_key(float(value))
    if isinstance(value, numbers.Integral):
        return ("num", int(value))
    if isinstance(value, numbers.Rational):
        return _number_key(Decimal(value.numerator) / Decimal(value.denominator))
    if isinstance(value, numbers.Real):
        return _float_key(float(value))
    if isinstance(value, datetime):
        return _datetime_key(value)
    if isinstance(value, date):
        return _date_key(value)
    if isinstance(value, time):
        return _time_key(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ("bytes", bytes(value))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_cell_key(item) for item in value))
    if isinstance(value, Mapping):
        return ("map", frozenset((_cell_key(k), _cell_key(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return ("set", frozenset(_cell_key(item) for item in value))
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        item = value.item()
        if type(item).__module__ != "numpy":
            return _cell_key(item)
    try:
        hash(value)
    except TypeError:
        return ("repr", type(value).__qualname__, repr(value))
    return ("obj", value)


# ---------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------


class Rows(Sequence[dict[str, Any]]):
    """A read-only sequence of rows, each seen as a ``dict`` of column name to value.

    ``Rows(columns, data)`` takes the column names in order and the rows as
    sequences of values in that order; :meth:`from_dicts` builds one from dicts.
    ``rows[i]`` is a fresh ``dict`` (changing it does not change the rows),
    ``rows[i:j]`` is a :class:`Rows`, and ``len``, iteration, ``in`` and ``reversed``
    work as for a list of dicts.

    ``rows == expected`` compares with a list of dicts or another :class:`Rows`,
    ignoring row order and comparing only the columns that ``expected`` names; see
    the module documentation for how values compare. ``rows.ordered == expected``
    also checks the order. ``{"id": 1} in rows`` uses the same rules: it is true when
    some row matches on the columns the dict names.

    :raises TypeError: if *columns* is a string or holds a non-string name.
    :raises ValueError: if a column name repeats or a row has the wrong number of values.
    """

    __slots__ = ("_columns", "_data")
    __hash__ = None  # type: ignore[assignment]  # defines __eq__, and its contents compare loosely

    def __init__(self, columns: Sequence[str], data: Iterable[Sequence[Any]]) -> None:
        if isinstance(columns, str):
            raise TypeError(f"Rows() takes a sequence of column names, not the string {columns!r}")
        names = tuple(columns)
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"column names must be strings, got {name!r}")
        if len(set(names)) != len(names):
            repeated = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(
                f"column names must be unique, but {_join_names(repeated)} appear(s) more "
                "than once; give the columns distinct aliases in the query"
            )
        width = len(names)
        rows = []
        for index, row in enumerate(data):
            values = tuple(row)
            if len(values) != width:
                raise ValueError(
                    f"row {index} has {len(values)} value(s) but there are {width} "
                    f"column(s): {_join_names(names)}"
                )
            rows.append(values)
        self._columns: tuple[str, ...] = names
        self._data: tuple[tuple[Any, ...], ...] = tuple(rows)

    @classmethod
    def from_dicts(
        cls, rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None
    ) -> Rows:
        """Build :class:`Rows` from dicts, one per row.

        Without *columns*, the columns are the keys of the first dict, in its order,
        and every dict must have exactly those keys. With *columns*, every dict must
        have a value for each of them; other keys are left out.

        :raises TypeError: if an item is not a mapping.
        :raises ValueError: if a dict lacks a column (or, without *columns*, has other keys
            than the first one).
        """
        records = list(rows)
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise TypeError(
                    f"Rows.from_dicts() takes mappings, but item {index} is a "
                    f"{type(record).__name__}: {record!r}"
                )
        if columns is None:
            names = tuple(records[0]) if records else ()
            _check_same_columns(records, "Rows.from_dicts(): the dicts")
        else:
            if isinstance(columns, str):
                raise TypeError(f"columns must be a sequence of names, not the string {columns!r}")
            names = tuple(columns)
            for index, record in enumerate(records):
                absent = [name for name in names if name not in record]
                if absent:
                    raise ValueError(
                        f"Rows.from_dicts(): dict {index} has no value for {_join_names(absent)}"
                    )
        return cls(names, (tuple(record[name] for name in names) for record in records))

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names, in order."""
        return self._columns

    @property
    def ordered(self) -> OrderedRows:
        """A view of these rows whose ``==`` also checks the row order."""
        return OrderedRows(self)

    def __len__(self) -> int:
        return len(self._data)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Rows: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | Rows:
        """Row *index* as a fresh dict, or a slice of the rows as :class:`Rows`."""
        if isinstance(index, slice):
            return self._with_data(self._data[index])
        try:
            values = self._data[index]
        except IndexError:
            raise IndexError(
                f"row index {index} out of range for {len(self._data)} row(s)"
            ) from None
        return dict(zip(self._columns, values, strict=True))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        columns = self._columns
        for values in self._data:
            yield dict(zip(columns, values, strict=True))

    def __contains__(self, item: object) -> bool:
        """Whether some row matches the dict *item* on the columns it names."""
        return next(self._matching(item), None) is not None

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        """Index of the first row that matches the dict *value* on the columns it names.

        :raises ValueError: if no row matches.
        """
        for found in self._matching(value, start, stop):
            return found
        raise ValueError(f"no row matches {value!r}")

    def count(self, value: Any) -> int:
        """Number of rows that match the dict *value* on the columns it names."""
        return sum(1 for _ in self._matching(value))

    def _matching(self, value: object, start: int = 0, stop: int | None = None) -> Iterator[int]:
        """Indexes of the rows that match the mapping *value* on the columns it names."""
        if not isinstance(value, Mapping):
            return
        positions = self._positions(tuple(value))
        if positions is None:
            return
        wanted = tuple(_cell_key(v) for v in value.values())
        for index in range(*slice(start, stop).indices(len(self._data))):
            row = self._data[index]
            if tuple(_cell_key(row[p]) for p in positions) == wanted:
                yield index

    def _positions(self, names: Sequence[str]) -> list[int] | None:
        """Positions of *names* among the columns, or None if one is missing."""
        positions = _resolve_columns(self._columns, names)
        if any(p is None for p in positions):
            return None
        return positions  # type: ignore[return-value]

    def _with_data(self, data: tuple[tuple[Any, ...], ...]) -> Rows:
        new = object.__new__(type(self))
        new._columns = self._columns
        new._data = data
        return new

    def __eq__(self, other: object) -> bool:
        """Compare with a list of dicts or a :class:`Rows`, ignoring row order.

        :raises ValueError: if *other* is a list whose items are not all dicts naming
            the same columns.
        """
        if isinstance(other, OrderedRows):
            return NotImplemented
        expected = _Expected.parse(other)
        if expected is None:
            return NotImplemented
        return _Comparison(self, expected).equal(ordered=False)

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def to_pandas(self) -> Any:
        """The rows as a :class:`pandas.DataFrame` with the same columns.

        :raises ImportError: if pandas is not installed.
        """
        pandas = _import_optional("pandas", "to_pandas")
        return pandas.DataFrame.from_records(list(self._data), columns=list(self._columns))

    def to_arrow(self) -> Any:
        """The rows as a :class:`pyarrow.Table` with the same columns (types are inferred).

        :raises ImportError: if pyarrow is not installed.
        """
        pyarrow = _import_optional("pyarrow", "to_arrow")
        return pyarrow.table(
            {name: [row[i] for row in self._data] for i, name in enumerate(self._columns)}
        )

    def __repr__(self) -> str:
        return "\n".join(self._repr_lines("Rows"))

    def _repr_lines(self, title: str) -> list[str]:
        n_rows, n_cols = len(self._data), len(self._columns)
        head = f"<{title}: {_plural(n_rows, 'row')}, {_plural(n_cols, 'column')}>"
        if not n_cols:
            return [head]
        shown = self._data[:MAX_REPR_ROWS]
        cells = [[_short_repr(v, 40) for v in row] for row in shown]
        widths = [
            max([len(name)] + [len(line[i]) for line in cells])
            for i, name in enumerate(self._columns)
        ]
        lines = [head, _table_line(self._columns, widths)]
        lines.append("-+-".join("-" * w for w in widths))
        lines.extend(_table_line(line, widths) for line in cells)
        if n_rows > len(shown):
            lines.append(f"... {_plural(n_rows - len(shown), 'more row')}")
        return lines


class OrderedRows:
    """The view ``rows.ordered``: its ``==`` compares like :class:`Rows` but in order.

    ``rows.ordered == expected`` is true when *expected* has the same number of
    rows and each row equals the expected row at the same position, under the same
    value and column rules as ``rows == expected``.
    """

    __slots__ = ("rows",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, rows: Rows) -> None:
        #: The :class:`Rows` this view compares.
        self.rows = rows

    def __eq__(self, other: object) -> bool:
        """Compare with a list of dicts or a :class:`Rows`, in order.

        :raises ValueError: if *other* is a list whose items are not all dicts naming
            the same columns.
        """
        expected = _Expected.parse(other)
        if expected is None:
            return NotImplemented
        return _Comparison(self.rows, expected).equal(ordered=True)

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return "\n".join(self.rows._repr_lines("Rows.ordered"))


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------


class _Expected:
    """The right-hand side of a comparison: column names, value tuples, and where it came from."""

    __slots__ = ("columns", "data")

    def __init__(self, columns: tuple[str, ...], data: Sequence[tuple[Any, ...]]) -> None:
        self.columns = columns
        self.data = data

    @classmethod
    def parse(cls, other: object) -> _Expected | None:
        """Read *other* as expected rows; None if it is not something rows compare with."""
        if isinstance(other, OrderedRows):
            other = other.rows
        if isinstance(other, Rows):
            return cls(other.columns, other._data)
        if not isinstance(other, (list, tuple)):
            return None
        for index, record in enumerate(other):
            if not isinstance(record, Mapping):
                raise ValueError(
                    "rows compare with a list of dicts, one per row, but item "
                    f"{index} of the expected list is a {type(record).__name__}: "
                    f"{_short_repr(record, MAX_VALUE_WIDTH)}"
                )
        _check_same_columns(other, "the expected rows")
        columns = tuple(other[0]) if other else ()
        return cls(columns, [tuple(record[c] for c in columns) for record in other])


def _check_same_columns(records: Sequence[Mapping[str, Any]], what: str) -> None:
    """Raise ValueError unless every mapping in *records* has the keys of the first one."""
    if not records:
        return
    first = records[0].keys()
    for index, record in enumerate(records):
        if record.keys() != first:
            absent = [name for name in first if name not in record]
            extra = [name for name in record if name not in first]
            detail = "; ".join(
                part
                for part in (
                    f"it lacks {_join_names(absent)}" if absent else "",
                    f"it adds {_join_names(extra)}" if extra else "",
                )
                if part
            )
            raise ValueError(
                f"{what} must all name the same columns, but row {index} does not match "
                f"row 0 ({_join_names(list(first))}): {detail}"
            )


def _resolve_columns(actual: Sequence[str], names: Iterable[Any]) -> list[int | None]:
    """Position in *actual* of each of *names*: exact match, else a unique case-insensitive one."""
    exact = {name: i for i, name in enumerate(actual)}
    folded: dict[str, list[int]] = {}
    for i, name in enumerate(actual):
        folded.setdefault(name.casefold(), []).append(i)
    positions: list[int | None] = []
    for name in names:
        if name in exact:
            positions.append(exact[name])
            continue
        candidates = folded.get(name.casefold(), []) if isinstance(name, str) else []
        positions.append(candidates[0] if len(candidates) == 1 else None)
    return positions


class _Comparison:
    """Actual rows against expected rows, on the expected columns the actual rows have."""

    def __init__(self, actual: Rows, expected: _Expected) -> None:
        self.actual = actual
        self.expected = expected
        positions = _resolve_columns(actual.columns, expected.columns)
        #: Expected columns the actual rows do not have.
        self.missing_columns = [
            name for name, pos in zip(expected.columns, positions, strict=True) if pos is None
        ]
        #: (position in expected, position in actual) of each compared column.
        self.pairs = [(i, pos) for i, pos in enumerate(positions) if pos is not None]
        self._actual_keys: list[tuple[Hashable, ...]] | None = None
        self._expected_keys: list[tuple[Hashable, ...]] | None = None

    @property
    def actual_keys(self) -> list[tuple[Hashable, ...]]:
        if self._actual_keys is None:
            cols = [a for _, a in self.pairs]
            self._actual_keys = [
                tuple(_cell_key(row[c]) for c in cols) for row in self.actual._data
            ]
        return self._actual_keys

    @property
    def expected_keys(self) -> list[tuple[Hashable, ...]]:
        if self._expected_keys is None:
            cols = [e for e, _ in self.pairs]
            self._expected_keys = [
                tuple(_cell_key(row[c]) for c in cols) for row in self.expected.data
            ]
        return self._expected_keys

    def equal(self, ordered: bool) -> bool:
        if self.missing_columns or len(self.actual._data) != len(self.expected.data):
            return False
        return self.same_rows(ordered)

    def same_rows(self, ordered: bool) -> bool:
        """Whether the rows match on the compared columns (ignoring missing columns)."""
        if ordered:
            return self.actual_keys == self.expected_keys
        return Counter(self.actual_keys) == Counter(self.expected_keys)

    def unmatched(self) -> tuple[list[int], list[int]]:
        """Indexes of the expected rows not found, and of the actual rows not expected."""
        available = Counter(self.actual_keys)
        missing = []
        for index, key in enumerate(self.expected_keys):
            if available[key]:
                available[key] -= 1
            else:
                missing.append(index)
        wanted = Counter(self.expected_keys)
        unexpected = []
        for index, key in enumerate(self.actual_keys):
            if wanted[key]:
                wanted[key] -= 1
            else:
                unexpected.append(index)
        return missing, unexpected

    def pair_changed(
        self, missing: list[int], unexpected: list[int]
    ) -> list[tuple[int, int, list[int]]]:
        """Pair missing with unexpected rows that agree on at least half the compared columns.

        Greedy, most agreeing cells first. Returns (expected index, actual index,
        positions in ``pairs`` of the differing cells), in expected order.
        """
        width = len(self.pairs)
        if not width:
            return []
        candidates = []
        exp_keys, act_keys = self.expected_keys, self.actual_keys
        for mi, e in enumerate(missing[:MAX_PAIRING_ROWS]):
            ekey = exp_keys[e]
            for ui, a in enumerate(unexpected[:MAX_PAIRING_ROWS]):
                akey = act_keys[a]
                score = sum(1 for x, y in zip(ekey, akey, strict=True) if x == y)
                if 2 * score >= width:
                    candidates.append((-score, mi, ui))
        candidates.sort()
        used_m: set[int] = set()
        used_u: set[int] = set()
        changed = []
        for _, mi, ui in candidates:
            if mi in used_m or ui in used_u:
                continue
            used_m.add(mi)
            used_u.add(ui)
            e, a = missing[mi], unexpected[ui]
            differing = [
                k for k, (x, y) in enumerate(zip(exp_keys[e], act_keys[a], strict=True)) if x != y
            ]
            changed.append((e, a, differing))
        changed.sort()
        return changed

    # -- formatting ---------------------------------------------------------

    def format_expected(self, index: int) -> str:
        row = self.expected.data[index]
        return _format_row(zip(self.expected.columns, row, strict=True))

    def format_actual(self, index: int) -> str:
        row = self.actual._data[index]
        names = self.actual.columns
        if self.pairs:
            return _format_row((names[a], row[a]) for _, a in self.pairs)
        return _format_row(zip(names, row, strict=True))

    def cell_lines(self, e: int, a: int, differing: list[int], indent: str) -> list[str]:
        lines = []
        for k in differing:
            ecol, acol = self.pairs[k]
            name = self.expected.columns[ecol]
            want = _short_repr(self.expected.data[e][ecol], MAX_VALUE_WIDTH)
            got = _short_repr(self.actual._data[a][acol], MAX_VALUE_WIDTH)
            lines.append(f"{indent}{name}: expected {want}, got {got}")
        return lines


def diff_rows(actual: Rows | OrderedRows, expected: Any, ordered: bool = False) -> list[str]:
    """Explain, line by line, how *actual* differs from *expected*.

    *expected* is a list of dicts or a :class:`Rows`; passing ``rows.ordered`` as
    *actual* is the same as ``ordered=True``. The first line sums up the difference
    (this is what pytest prints after ``assert``). Then come: columns that
    *expected* names but the rows lack; for an ordered comparison, the first
    position where the rows differ; then, comparing as multisets, the **changed**
    rows (a missing and an unexpected row that agree on at least half the compared
    columns, with each differing cell as ``column: expected X, got Y``), the
    **missing** rows (expected but not found) and the **unexpected** rows (found but
    not expected), each section capped at :data:`MAX_DIFF_ROWS` rows. Rows are
    written ``{column: value, ...}`` with the ``repr`` of each value.

    If the rows are equal, the single line says so.

    :raises TypeError: if *actual* is not rows or *expected* is not a list or rows.
    :raises ValueError: if *expected* is a list whose items are not all dicts naming
        the same columns.
    """
    if isinstance(actual, OrderedRows):
        actual, ordered = actual.rows, True
    if not isinstance(actual, Rows):
        raise TypeError(f"diff_rows() compares Rows, not {type(actual).__name__}")
    parsed = _Expected.parse(expected)
    if parsed is None:
        raise TypeError(
            f"diff_rows() compares with a list of dicts or Rows, not {type(expected).__name__}"
        )
    cmp = _Comparison(actual, parsed)
    mode = "in order" if ordered else "ignoring order"
    n_actual, n_expected = len(actual), len(parsed.data)
    if cmp.equal(ordered):
        return [f"Rows are equal ({mode}): {_plural(n_actual, 'row')}"]

    missing, unexpected = cmp.unmatched()
    changed = cmp.pair_changed(missing, unexpected)
    paired_e = {e for e, _, _ in changed}
    paired_a = {a for _, a, _ in changed}
    missing = [e for e in missing if e not in paired_e]
    unexpected = [a for a in unexpected if a not in paired_a]

    summary = []
    if cmp.missing_columns:
        summary.append(f"missing {_plural_word(len(cmp.missing_columns), 'column')}")
    if changed:
        summary.append(f"{len(changed)} changed")
    if missing:
        summary.append(f"{len(missing)} missing")
    if unexpected:
        summary.append(f"{len(unexpected)} unexpected")
    if ordered and not (changed or missing or unexpected) and not cmp.missing_columns:
        summary.append("same rows in a different order")
    lines = [
        f"Rows differ ({mode}): got {_plural(n_actual, 'row')}, expected "
        f"{_plural(n_expected, 'row')}" + (f"; {', '.join(summary)}" if summary else "")
    ]

    if cmp.missing_columns:
        have = _join_names(actual.columns) if actual.columns else "no columns"
        lines.append(
            f"Missing {_plural_word(len(cmp.missing_columns), 'column')}: expected names "
            f"{_join_names(cmp.missing_columns)}, but the rows have only {have}"
        )
        if cmp.pairs and cmp.same_rows(ordered):
            compared = [parsed.columns[e] for e, _ in cmp.pairs]
            lines.append(f"On the other columns ({', '.join(compared)}) the rows match.")

    if ordered:
        lines.extend(_first_difference(cmp))
        if changed or missing or unexpected:
            lines.append("Ignoring order:")

    if changed:
        lines.append(f"Changed rows ({len(changed)}):")
        for e, a, differing in changed[:MAX_DIFF_ROWS]:
            lines.append(f"  {cmp.format_expected(e)}")
            lines.extend(cmp.cell_lines(e, a, differing, "      "))
        lines.extend(_more(len(changed)))
    if missing:
        lines.append(f"Missing rows, expected but not found ({len(missing)}):")
        lines.extend(f"  {cmp.format_expected(e)}" for e in missing[:MAX_DIFF_ROWS])
        lines.extend(_more(len(missing)))
    if unexpected:
        lines.append(f"Unexpected rows, found but not expected ({len(unexpected)}):")
        lines.extend(f"  {cmp.format_actual(a)}" for a in unexpected[:MAX_DIFF_ROWS])
        lines.extend(_more(len(unexpected)))

    if parsed.columns:
        used = {a for _, a in cmp.pairs}
        ignored = [name for i, name in enumerate(actual.columns) if i not in used]
        if ignored:
            lines.append(f"Not compared (not named by expected): {', '.join(ignored)}")
    return lines


def _first_difference(cmp: _Comparison) -> list[str]:
    """Lines locating the first position where an ordered comparison differs."""
    akeys, ekeys = cmp.actual_keys, cmp.expected_keys
    common = min(len(akeys), len(ekeys))
    index = next((i for i in range(common) if akeys[i] != ekeys[i]), common)
    if index == common and len(akeys) == len(ekeys):
        return []  # only missing columns differ
    lines = [f"First difference at row {index}:"]
    if index < len(ekeys):
        lines.append(f"  expected: {cmp.format_expected(index)}")
    else:
        lines.append(f"  expected: no more rows (expected has {_plural(len(ekeys), 'row')})")
    if index < len(akeys):
        lines.append(f"  got:      {cmp.format_actual(index)}")
    else:
        lines.append(f"  got:      no more rows (got {_plural(len(akeys), 'row')})")
    if index < common:
        differing = [
            k for k, (x, y) in enumerate(zip(ekeys[index], akeys[index], strict=True)) if x != y
        ]
        if 2 * (len(cmp.pairs) - len(differing)) >= len(cmp.pairs):
            lines.extend(cmp.cell_lines(index, index, differing, "    "))
    return lines


def explain_comparison(op: str, left: object, right: object) -> list[str] | None:
    """The lines explaining a failed ``left == right`` between rows and expected rows.

    This is what the dbtproof plugin's ``pytest_assertrepr_compare`` hook returns. It
    applies when *op* is ``"=="`` and *left* is a :class:`Rows` (or ``rows.ordered``)
    and *right* a list or :class:`Rows` — or the other way round, in which case the
    list is the expected side, as it is for Python's ``==``. Otherwise, or when the
    expected side is malformed, it returns None so pytest explains as usual.
    """
    if op != "==":
        return None
    if isinstance(left, (Rows, OrderedRows)) and isinstance(right, (list, tuple, Rows)):
        actual, expected = left, right
    elif isinstance(right, (Rows, OrderedRows)) and isinstance(left, (list, tuple, Rows)):
        actual, expected = right, left
    elif isinstance(left, OrderedRows) and isinstance(right, OrderedRows):
        actual, expected = left, right.rows
    else:
        return None
    try:
        return diff_rows(actual, expected)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _import_optional(module: str, method: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"Rows.{method}() needs {module}, which is not installed; "
            f"install it with: pip install {module}"
        ) from exc


def _short_repr(value: Any, width: int) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _format_row(cells: Iterable[tuple[str, Any]]) -> str:
    inner = ", ".join(f"{name}: {_short_repr(value, MAX_VALUE_WIDTH)}" for name, value in cells)
    return "{" + inner + "}"


def _table_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def _more(total: int) -> list[str]:
    return [f"  ... and {total - MAX_DIFF_ROWS} more"] if total > MAX_DIFF_ROWS else []


def _plural(count: int, noun: str) -> str:
    return f"{count} {_plural_word(count, noun)}"


def _plural_word(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _join_names(names: Sequence[Any]) -> str:
    return ", ".join(repr(name) for name in names)
