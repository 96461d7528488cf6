"""Query results as :class:`Rows`, and the rules for comparing them with what a test expects.

A :class:`Rows` is a read-only sequence of rows, each seen as a ``dict`` from column
name to value. It compares with ``==`` against a list of dicts or another
:class:`Rows` the way a test about table contents wants:

* **Order is ignored; duplicates count.** The rows are compared as multisets: they
  are equal when they pair up one to one with every pair equal.
  ``rows.ordered == expected`` compares in order instead.
* **Against a list of dicts, only the columns the dicts name are compared.** Extra
  columns of the rows are ignored. Every dict must name the same columns (else
  :class:`ValueError`). A column the dicts name but the rows lack makes them unequal.
* **Against another Rows, every column is compared**, so both must have the same
  columns (in any order); a column on one side only makes them unequal. ``a == b``
  and ``b == a`` always agree, and so do ``rows == [...]`` and ``[...] == rows``.
* **Column names** match exactly; the names left over then match case-insensitively
  when exactly one left-over name on each side folds to the same (some warehouses
  upper-case unquoted names).
* **Integers and Decimals compare exactly, by value.** ``1``, ``1.0`` and
  ``Decimal("1.00")`` are equal, ``Decimal("1.1231")`` and ``Decimal("1.1234")`` are
  not, however many digits they share. ``bool`` is not a number, so ``True != 1``.
  ``NaN`` equals ``NaN``; an infinity equals only itself.
* **A float on either side brings a tolerance of 1e-12, relative to the larger.** A
  float *x* and a number *y* (float, int, Decimal, fraction), both finite, are equal
  when ``|x - y| <= 1e-12 * max(|x|, |y|)``, decided exactly on their values (a
  float's exact binary value; 1e-12 is exactly 10**-12). So ``0.1 + 0.2`` equals
  ``0.3``, the float ``2.675`` equals ``Decimal("2.675")`` and a warehouse's
  ``Decimal("0.3333333333333333333")`` equals ``1 / 3``, while ``1.0`` and
  ``1.000000001`` differ. There is no absolute part: a float equals zero only when it
  is zero. Whole floats are floats too: ``1e15`` equals ``1e15 + 1``.
* **More tolerance only when asked for:** ``rows.approx(rel=None, abs=None,
  columns=None) == expected`` compares numbers (ints, Decimals and floats alike)
  with :func:`pytest.approx`'s rule, ``|actual - expected| <= max(rel * |expected|,
  abs)`` where *expected* is the other side of ``==``: a ``rel`` left out is 1e-6
  and an ``abs`` left out 1e-12, except that giving only ``abs`` leaves the
  relative part out. Decided exactly, with *rel* and *abs* taken as the decimal
  numbers written. *columns* gives columns their own tolerance (``{"fare": {"abs":
  0.01}}``); the columns it does not name use *rel* / *abs* if given, else no
  tolerance; ``rows.approx()`` alone applies pytest.approx's defaults everywhere. A
  tolerance only adds to the rules above (NaN still equals NaN, and what a float's
  tolerance makes equal stays equal). :func:`approx_spec` turns a user's ``approx=``
  argument into ``rows.approx`` keywords.
* **Dates, times and timestamps also equal their ISO strings.** ``date(2024, 1, 2)
  == "2024-01-02"``; ``datetime(2024, 1, 2, 3, 4, 5)`` equals both
  ``"2024-01-02T03:04:05"`` and ``"2024-01-02 03:04:05"``; ``time(3, 4) ==
  "03:04:00"``. Timezone-aware values compare by instant (``"...+01:00"`` and
  ``"...Z"`` strings too) and never equal naive ones. A date never equals a
  timestamp. As a consequence two strings that spell the same timestamp differently
  are equal too. Other strings are compared as strings (``"1" != 1``).
* ``None`` equals only ``None``. UUIDs equal their canonical string. Bytes,
  ``bytearray`` and ``memoryview`` compare by content; lists, tuples and dicts
  (array and JSON columns) compare element-wise under these same rules, sets by
  exact element keys.

Comparing rows as multisets is done by hashing (O(n)) when no compared cell holds a
float and no tolerance applies; otherwise by a largest one-to-one pairing of equal
rows. :mod:`dbtproof.compare.cells` holds the rules for cells, :mod:`dbtproof.compare.pairing` pairs
columns and rows, :mod:`dbtproof.compare.approx` reads what ``approx`` asks for, and this
module's :class:`Comparison` puts them together for ``==``.

When a comparison fails, :func:`dbtproof.compare.diff.diff_rows` explains it row by row from
the same :class:`Comparison`; the dbtproof pytest plugin shows that explanation
through :func:`dbtproof.compare.diff.explain_comparison`. A cell is shown as differing exactly
when it compares unequal.

This module does not import dbt, and imports pandas or pyarrow only when
:meth:`Rows.to_pandas` or :meth:`Rows.to_arrow` is called.
"""

from __future__ import annotations

import importlib
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, overload

from dbtproof.compare.approx import Approx, approx_spec
from dbtproof.compare.cells import Tolerance, TolNumber, cell_key, cells_equal, rows_equal
from dbtproof.compare.pairing import match_columns, rows_match, unmatched_rows
from dbtproof.errors import ComparisonSpecError

__all__ = ["OrderedRows", "Rows", "RowsView", "approx_spec"]

#: Rows shown by ``repr(rows)``.
MAX_REPR_ROWS = 10
#: Characters of a value's repr shown in a diff or a repr before it is cut.
MAX_VALUE_WIDTH = 60


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

    ``rows == expected`` compares with a list of dicts (on the columns the dicts
    name) or another :class:`Rows` (on all columns, which must be the same), ignoring
    row order; see the module documentation for how values compare.
    ``rows.ordered == expected`` also checks the order, ``rows.approx(...) ==
    expected`` allows a tolerance on numbers. ``{"id": 1} in rows`` uses the same
    rules: it is true when some row matches on the columns the dict names.

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

    def approx(
        self,
        rel: TolNumber | None = None,
        abs: TolNumber | None = None,
        columns: Mapping[str, Mapping[str, TolNumber | None] | bool] | None = None,
    ) -> RowsView:
        """A view of these rows whose ``==`` allows a tolerance on numbers, as pytest.approx.

        A number of these rows equals an expected number *e* when ``|actual - e| <=
        max(rel * |e|, abs)``; a ``rel`` left out is 1e-6 and an ``abs`` left out 1e-12,
        except that giving only ``abs`` leaves the relative part out (pytest.approx's
        rules, decided exactly). *e* is always the other side of ``==``.

        *rel* and *abs* apply to every column, *columns* gives columns their own:
        ``columns={"fare": {"abs": 0.01}, "ratio": {"rel": 1e-3}}`` (``{}`` or ``True``
        for a column: pytest.approx's defaults). A column that *columns* names uses
        its own tolerance; the others use *rel* / *abs* if either is given, else
        compare as without ``approx`` — except that ``rows.approx()`` with no argument
        at all applies pytest.approx's defaults to every column. A tolerance only adds
        to the usual rules: what is equal without it stays equal.

        ``rows.approx(...).ordered`` and ``rows.ordered.approx(...)`` also check the
        order; ``rows.approx(**approx_spec(value))`` applies a user's ``approx=``.

        :raises ComparisonSpecError: if a tolerance is not a finite number >= 0, a
            column's dict has other keys than ``rel`` and ``abs``, or *columns* names a
            column these rows do not have.
        """
        return RowsView(self, Approx(rel, abs, columns))

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
        names = list(value)
        pairs, unpaired, _ = match_columns(names, self._columns)
        if unpaired:
            return
        wanted = tuple(cell_key(value[names[i]]) for i, _ in pairs)
        positions = [j for _, j in pairs]
        for index in range(*slice(start, stop).indices(len(self._data))):
            row = self._data[index]
            if rows_equal(tuple(cell_key(row[p]) for p in positions), wanted):
                yield index

    def _with_data(self, data: tuple[tuple[Any, ...], ...]) -> Rows:
        new = object.__new__(type(self))
        new._columns = self._columns
        new._data = data
        return new

    def __eq__(self, other: object) -> bool:
        """Compare with a list of dicts or a :class:`Rows`, ignoring row order.

        A view (``other.ordered``, ``other.approx(...)``) compares through its own
        ``==``, so that ``a == b`` and ``b == a`` always agree.

        :raises ValueError: if *other* is a list whose items are not all dicts naming
            the same columns.
        """
        if isinstance(other, RowsView):
            return NotImplemented
        comparison = Comparison.between(self, other)
        if comparison is None:
            return NotImplemented
        return comparison.equal()

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


class RowsView:
    """A view of :class:`Rows` whose ``==`` compares differently: ``rows.approx(...)``.

    ``view == expected`` compares ``view.rows`` like ``rows == expected`` but with the
    view's tolerance (see :meth:`Rows.approx`); :class:`OrderedRows` also checks the
    order. When both sides of ``==`` are views, the comparison is in order if either
    is ordered; at most one of them may carry a tolerance.
    """

    __slots__ = ("_approx", "rows")
    __hash__ = None  # type: ignore[assignment]
    #: Whether ``==`` checks the row order.
    is_ordered: ClassVar[bool] = False
    _title: ClassVar[str] = "Rows"

    def __init__(self, rows: Rows, approx: Approx | None = None) -> None:
        #: The :class:`Rows` this view compares.
        self.rows = rows
        if approx is not None:
            approx.tolerances_for(rows.columns)  # names a column the rows lack: say so now
        self._approx = approx

    @property
    def tolerance(self) -> Approx | None:
        """The tolerance this view compares with (None: none asked for)."""
        return self._approx

    @property
    def ordered(self) -> OrderedRows:
        """This view, also checking the row order."""
        return OrderedRows(self.rows, self._approx)

    def approx(
        self,
        rel: TolNumber | None = None,
        abs: TolNumber | None = None,
        columns: Mapping[str, Mapping[str, TolNumber | None] | bool] | None = None,
    ) -> RowsView:
        """This view with the tolerance of :meth:`Rows.approx` (replacing any it had)."""
        return type(self)(self.rows, Approx(rel, abs, columns))

    def __eq__(self, other: object) -> bool:
        """Compare with a list of dicts, a :class:`Rows` or a view, as the view says.

        :raises ValueError: if *other* is a list whose items are not all dicts naming
            the same columns.
        :raises ComparisonSpecError: if both sides carry a tolerance.
        """
        comparison = Comparison.between(self, other)
        if comparison is None:
            return NotImplemented
        return comparison.equal()

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        title = "Rows" if self._approx is None else f"Rows.{self._approx!r}"
        if self.is_ordered:
            title += ".ordered"
        return "\n".join(self.rows._repr_lines(title))


class OrderedRows(RowsView):
    """The view ``rows.ordered``: its ``==`` compares like :class:`Rows` but in order.

    ``rows.ordered == expected`` is true when *expected* has the same number of
    rows and each row equals the expected row at the same position, under the same
    value and column rules as ``rows == expected``. ``rows.ordered.approx(...)`` and
    ``rows.approx(...).ordered`` add a tolerance.
    """

    __slots__ = ()
    is_ordered: ClassVar[bool] = True


# ---------------------------------------------------------------------------
# The comparison: what == decides with, and what dbtproof.compare.diff explains
# ---------------------------------------------------------------------------


class _Expected:
    """The expected side of a comparison: column names, value tuples, and its kind."""

    __slots__ = ("columns", "data", "strict")

    def __init__(
        self, columns: tuple[str, ...], data: Sequence[tuple[Any, ...]], strict: bool
    ) -> None:
        self.columns = columns
        self.data = data
        #: True for Rows (every column compared), False for a list of dicts.
        self.strict = strict

    @classmethod
    def parse(cls, other: object) -> _Expected | None:
        """Read *other* as expected rows; None if it is not something rows compare with."""
        if isinstance(other, RowsView):
            other = other.rows
        if isinstance(other, Rows):
            return cls(other.columns, other._data, strict=True)
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
        return cls(columns, [tuple(record[c] for c in columns) for record in other], strict=False)


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


class Comparison:
    """Actual rows against expected rows, on the columns the two sides pair up.

    What ``==`` decides with (:meth:`equal`), and what :mod:`dbtproof.compare.diff` reads to
    explain a difference (:meth:`unmatched`, :meth:`differing`, :meth:`row_equal`), so
    that the two always agree. Made by :meth:`between`.
    """

    @classmethod
    def between(
        cls, actual: Rows | RowsView, expected: object, ordered: bool = False
    ) -> Comparison | None:
        """The comparison of *actual* with *expected*; None if *expected* is not comparable.

        A view on either side brings its order and its tolerance; the side whose view has
        the tolerance is compared relative to the other.

        :raises ValueError: if *expected* is a list whose items are not all dicts naming
            the same columns.
        :raises ComparisonSpecError: if both sides carry a tolerance.
        """
        view = actual if isinstance(actual, RowsView) else None
        rows = actual.rows if view is not None else actual
        assert isinstance(rows, Rows)
        other_view = expected if isinstance(expected, RowsView) else None
        parsed = _Expected.parse(expected)
        if parsed is None:
            return None
        ordered = (
            ordered
            or (view is not None and view.is_ordered)
            or (other_view is not None and other_view.is_ordered)
        )
        approx = view._approx if view is not None else None
        other_approx = other_view._approx if other_view is not None else None
        if approx is not None and other_approx is not None:
            raise ComparisonSpecError(
                f"dbtproof: both sides of == ask for a tolerance ({approx!r} and "
                f"{other_approx!r}); ask on one side only"
            )
        if other_approx is not None:
            return cls(rows, parsed, ordered, other_approx, tolerance_on_expected=True)
        return cls(rows, parsed, ordered, approx, tolerance_on_expected=False)

    def __init__(
        self,
        actual: Rows,
        expected: _Expected,
        ordered: bool,
        approx: Approx | None,
        tolerance_on_expected: bool,
    ) -> None:
        self.actual = actual
        #: The actual rows' value tuples (as ``expected.data`` is the expected side's).
        self.actual_data = actual._data
        self.expected = expected
        self.ordered = ordered
        self.approx = approx
        #: Whether the tolerance is the expected side's (then relative to the actual side).
        self.scale_on_actual = tolerance_on_expected
        pairs, expected_only, actual_only = match_columns(expected.columns, actual.columns)
        #: Expected columns the actual rows do not have.
        self.missing_columns = [expected.columns[i] for i in expected_only]
        #: Actual columns the expected rows do not have, when every column is compared.
        self.extra_columns = [actual.columns[j] for j in actual_only] if expected.strict else []
        #: (position in expected, position in actual) of each compared column.
        self.pairs = pairs
        if approx is None:
            self.tolerances: list[Tolerance | None] = [None] * len(pairs)
        elif tolerance_on_expected:
            by_column = approx.tolerances_for(expected.columns)
            self.tolerances = [by_column[e] for e, _ in pairs]
        else:
            by_column = approx.tolerances_for(actual.columns)
            self.tolerances = [by_column[a] for _, a in pairs]
        self._actual_keys: list[tuple[Hashable, ...]] | None = None
        self._expected_keys: list[tuple[Hashable, ...]] | None = None

    @property
    def actual_keys(self) -> list[tuple[Hashable, ...]]:
        if self._actual_keys is None:
            cols = [a for _, a in self.pairs]
            self._actual_keys = [tuple(cell_key(row[c]) for c in cols) for row in self.actual_data]
        return self._actual_keys

    @property
    def expected_keys(self) -> list[tuple[Hashable, ...]]:
        if self._expected_keys is None:
            cols = [e for e, _ in self.pairs]
            self._expected_keys = [
                tuple(cell_key(row[c]) for c in cols) for row in self.expected.data
            ]
        return self._expected_keys

    def cell_equal(self, k: int, actual: Hashable, expected: Hashable) -> bool:
        """Whether the cells of compared column *k* are equal (keys of both sides)."""
        if self.scale_on_actual:
            return cells_equal(expected, actual, self.tolerances[k])
        return cells_equal(actual, expected, self.tolerances[k])

    def row_equal(self, a: int, e: int) -> bool:
        """Whether actual row *a* and expected row *e* are equal on the compared columns."""
        akey, ekey = self.actual_keys[a], self.expected_keys[e]
        if self.scale_on_actual:
            return rows_equal(ekey, akey, self.tolerances)
        return rows_equal(akey, ekey, self.tolerances)

    def equal(self) -> bool:
        """The verdict of ``==``: same columns, as many rows, and the rows match."""
        if self.missing_columns or self.extra_columns:
            return False
        if len(self.actual_data) != len(self.expected.data):
            return False
        return self.same_rows()

    def same_rows(self) -> bool:
        """Whether the rows match on the compared columns (ignoring unpaired columns)."""
        return rows_match(
            self.actual_keys,
            self.expected_keys,
            self.tolerances,
            ordered=self.ordered,
            scale_on_actual=self.scale_on_actual,
        )

    def unmatched(self) -> tuple[list[int], list[int]]:
        """Indexes of the expected rows not found, and of the actual rows not expected."""
        return unmatched_rows(
            self.actual_keys,
            self.expected_keys,
            self.tolerances,
            scale_on_actual=self.scale_on_actual,
        )

    def differing(self, e: int, a: int) -> list[int]:
        """Positions in ``pairs`` of the cells where expected row *e* and actual row *a* differ."""
        ekey, akey = self.expected_keys[e], self.actual_keys[a]
        return [
            k
            for k, (x, y) in enumerate(zip(ekey, akey, strict=True))
            if not self.cell_equal(k, y, x)
        ]


# ---------------------------------------------------------------------------
# Small helpers (the text ones are shared with dbtproof.compare.diff)
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


def _table_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def _plural(count: int, noun: str) -> str:
    return f"{count} {_plural_word(count, noun)}"


def _plural_word(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _join_names(names: Sequence[Any]) -> str:
    return ", ".join(repr(name) for name in names)
