"""How cells and rows compare: canonical keys, the numeric policy, tolerances and matching.

:mod:`dbtproof.rows` documents the rules for users; this module implements them.

**Keys.** :func:`cell_key` turns a cell into a hashable key, so that equal keys mean
equal cells. A number's key holds the number itself (an ``int``, ``Decimal``,
``Fraction`` or ``float``): Python compares and hashes these exactly by value across
types, so ``1``, ``1.0`` and ``Decimal("1.00")`` share a key and
``Decimal("1.1231")`` and ``Decimal("1.1234")`` do not. Dates, times and timestamps
(and the strings that spell them) share keys; see :mod:`dbtproof.rows`.

**The numeric policy.** Two keys are equal cells when they are equal, or when they
are numbers (also inside lists, tuples and dict values) that one of these declares
equal (:func:`cells_equal`):

* a ``float`` on at least one side, both finite: ``|x - y| <= 1e-12 * max(|x|, |y|)``
  (:data:`FLOAT_REL`; symmetric; no absolute part, so ``0.0`` equals only zero);
* a :class:`Tolerance` asked for with ``rows.approx(...)``, with the meaning of
  :func:`pytest.approx`: ``|actual - expected| <= max(rel * |expected|, abs)``.

Both are decided exactly, on the exact values of the numbers (a float's exact binary
value, a Decimal's exact decimal value), with tolerances taken as the decimal numbers
that were written (``1e-12`` is exactly 10**-12, ``0.01`` exactly 1/100). A float
computation in the common case decides, and exact rational arithmetic settles what
is too close to the boundary for it. Integers and Decimals with no float on either
side and no tolerance asked for compare exactly.

**Matching.** With tolerances equality is no longer transitive, so comparing rows as
multisets means finding a one-to-one pairing of the rows in which every pair is equal
(a maximum bipartite matching). :func:`rows_match` and :func:`unmatched_rows` do that:

* when no compared cell holds a float and no tolerance applies, rows are compared by
  hashing their keys (a :class:`~collections.Counter`), in O(n);
* otherwise rows are grouped by a hashable *token* (the exact key of each cell that
  cannot be loose, and only the shape of a loose one), so only rows in the same group
  can be equal; within a group, rows with identical keys form one class, candidate
  pairs of classes are found by sorting on a numeric column and looking in a window
  that the tolerance bounds, and a maximum flow between the classes (greedy, then
  augmenting paths) decides. This is O(n log n) unless many distinct rows lie within
  the tolerance of each other.

This module does not import dbt, pandas or pyarrow.
"""

from __future__ import annotations

import math
import numbers
import re
import uuid
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from typing import Any

from dbtproof.errors import ComparisonSpecError

__all__ = [
    "DEFAULT_ABS",
    "DEFAULT_REL",
    "FLOAT_REL",
    "Approx",
    "Tolerance",
    "approx_spec",
    "cell_key",
    "cells_equal",
    "match_columns",
    "rows_equal",
    "rows_match",
    "unmatched_rows",
]

#: A number a tolerance may be given as.
TolNumber = int | float | Decimal | Fraction
#: A row as the comparison sees it: one key per compared column.
RowKey = tuple[Hashable, ...]

#: Relative tolerance between a float and another number: ``|x-y| <= FLOAT_REL * max(|x|,|y|)``.
FLOAT_REL = Fraction(1, 10**12)
#: pytest.approx's default relative tolerance, used when ``rel`` is not given.
DEFAULT_REL = Fraction(1, 10**6)
#: pytest.approx's default absolute tolerance, used when ``abs`` is not given.
DEFAULT_ABS = Fraction(1, 10**12)

_FLOAT_REL_F = float(FLOAT_REL)
_ZERO = Fraction(0)


# ---------------------------------------------------------------------------
# Keys: every cell becomes a hashable key; equal keys mean equal cells.
# ---------------------------------------------------------------------------

_NAN_KEY = ("nan",)

_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME_PART = r"(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
_TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ]" + _TIME_PART + r"(?: ?(Z|z|[+-]\d{2}(?::?\d{2})?))?"
)
_TIME_RE = re.compile(_TIME_PART)


def _decimal_key(value: Decimal) -> Hashable:
    """A Decimal keeps its exact value (``Decimal("1.10")`` and ``1.1`` decimal are one key)."""
    if value.is_nan():  # also sNaN, which cannot be hashed or compared
        return _NAN_KEY
    return ("num", value)


def _int_key(value: int) -> Hashable:
    return ("num", value)


def _float_key(value: float) -> Hashable:
    if value != value:
        return _NAN_KEY
    return ("num", value)


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


_KEY_BY_TYPE: dict[type, Callable[[Any], Hashable]] = {
    str: _str_key,
    int: _int_key,
    float: _float_key,
    Decimal: _decimal_key,
    bool: _bool_key,
    type(None): _none_key,
    datetime: _datetime_key,
    date: _date_key,
    time: _time_key,
}


def cell_key(value: Any) -> Hashable:
    """The canonical hashable key of one cell: equal keys mean equal cells.

    Numbers keep their exact value and type (see the module documentation); use
    :func:`cells_equal` to compare keys, which also applies the float tolerance.
    """
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
        return _decimal_key(value)
    if isinstance(value, float):
        return _float_key(float(value))
    if isinstance(value, numbers.Integral):
        return ("num", int(value))
    if isinstance(value, numbers.Rational):
        return ("num", Fraction(int(value.numerator), int(value.denominator)))
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
        return ("seq", tuple(cell_key(item) for item in value))
    if isinstance(value, Mapping):
        return ("map", frozenset((cell_key(k), cell_key(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return ("set", frozenset(cell_key(item) for item in value))
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        item = value.item()
        if type(item).__module__ != "numpy":
            return cell_key(item)
    try:
        hash(value)
    except TypeError:
        return ("repr", type(value).__qualname__, repr(value))
    return ("obj", value)


def _has_float(key: Hashable) -> bool:
    """Whether *key* holds a float that the float tolerance applies to."""
    if key.__class__ is not tuple or not key:
        return False
    tag = key[0]  # type: ignore[index]
    if tag == "num":
        return key[1].__class__ is float  # type: ignore[index]
    if tag == "seq":
        return any(_has_float(item) for item in key[1])  # type: ignore[index]
    if tag == "map":
        return any(_has_float(v) for _, v in key[1])  # type: ignore[index]
    return False


def _has_number(key: Hashable) -> bool:
    """Whether *key* holds a number that a tolerance applies to."""
    if key.__class__ is not tuple or not key:
        return False
    tag = key[0]  # type: ignore[index]
    if tag == "num":
        return True
    if tag == "seq":
        return any(_has_number(item) for item in key[1])  # type: ignore[index]
    if tag == "map":
        return any(_has_number(v) for _, v in key[1])  # type: ignore[index]
    return False


# ---------------------------------------------------------------------------
# Tolerances
# ---------------------------------------------------------------------------


def _tolerance_number(value: object, what: str) -> Fraction:
    """*value* as the exact decimal number it was written as; ComparisonSpecError if unfit."""
    problem = None
    exact: Fraction | None = None
    if isinstance(value, Decimal):
        if value.is_finite():
            exact = Fraction(value)
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        problem = f"a {type(value).__name__}"
    elif isinstance(value, numbers.Rational):
        exact = Fraction(int(value.numerator), int(value.denominator))
    else:
        number = float(value)
        if math.isfinite(number):
            exact = Fraction(repr(number))  # the decimal number written, not its binary value
    if problem is None and exact is None:
        problem = "not finite"
    elif exact is not None and exact < 0:
        problem = "negative"
    if problem is not None:
        raise ComparisonSpecError(
            f"dbtproof: {what} must be a finite number >= 0 (an int, float or Decimal), "
            f"but {value!r} is {problem}"
        )
    assert exact is not None
    return exact


def _to_float(value: Fraction) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


class Tolerance:
    """A tolerance for numbers, with the meaning of :func:`pytest.approx`.

    *actual* equals *expected* when ``|actual - expected| <= max(rel * |expected|,
    abs)``. As in pytest.approx, a ``rel`` left out is ``1e-6`` and an ``abs`` left out
    is ``1e-12``, except that giving only ``abs`` leaves the relative part out; an
    infinite *expected* equals only itself. Unlike pytest.approx the test is exact:
    on the exact values of the numbers, with *rel* and *abs* taken as the decimal
    numbers written (``0.01`` is exactly 1/100).

    :raises ComparisonSpecError: if *rel* or *abs* is not a finite number >= 0.
    """

    __slots__ = ("_abs", "_abs_f", "_rel", "_rel_f", "abs", "rel")

    def __init__(
        self, rel: TolNumber | None = None, abs: TolNumber | None = None, *, what: str = "approx"
    ) -> None:
        #: The relative tolerance as given (None: not given).
        self.rel = rel
        #: The absolute tolerance as given (None: not given).
        self.abs = abs
        exact_rel = None if rel is None else _tolerance_number(rel, f"{what} 'rel'")
        exact_abs = None if abs is None else _tolerance_number(abs, f"{what} 'abs'")
        if exact_rel is None and exact_abs is not None:
            self._rel, self._abs = _ZERO, exact_abs
        else:
            self._rel = DEFAULT_REL if exact_rel is None else exact_rel
            self._abs = DEFAULT_ABS if exact_abs is None else exact_abs
        self._rel_f = _to_float(self._rel)
        self._abs_f = _to_float(self._abs)

    def allows(self, actual: TolNumber, expected: TolNumber) -> bool:
        """Whether *actual* equals *expected* under this tolerance (NaN equals nothing here)."""
        if not (_finite(actual) and _finite(expected)):
            return actual == expected
        if actual == expected:
            return True
        return _within(actual, expected, self._rel, self._abs, self._rel_f, self._abs_f, False)

    def as_dict(self) -> dict[str, TolNumber]:
        """The tolerance as given: ``{"rel": ..., "abs": ...}`` with the keys that were given."""
        given = {"rel": self.rel, "abs": self.abs}
        return {name: value for name, value in given.items() if value is not None}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tolerance):
            return NotImplemented
        return (self._rel, self._abs) == (other._rel, other._abs)

    def __hash__(self) -> int:
        return hash((self._rel, self._abs))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self.as_dict().items())
        return f"Tolerance({inner})"


def _finite(value: TolNumber) -> bool:
    if value.__class__ is float:
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    return True


#: float() of a number is within this relative distance of it (2**-53), with room to spare.
_EPS = 2.0**-50
#: Magnitudes beyond which the float shortcut is not trusted (overflow of sums and products).
_HUGE = 1e300
#: Absolute slack covering numbers that float() turns subnormal or zero.
_TINY = 1e-300


def _within(
    x: TolNumber,
    y: TolNumber,
    rel: Fraction,
    abs_: Fraction,
    rel_f: float,
    abs_f: float,
    symmetric: bool,
) -> bool:
    """Whether ``|x - y| <= max(rel * scale, abs_)``, exactly; x and y are finite.

    *scale* is ``max(|x|, |y|)`` if *symmetric*, else ``|y|``. Decided in floats when
    the float result is clear of the boundary by more than its rounding error, else in
    exact rational arithmetic.
    """
    try:
        xf, yf = float(x), float(y)
    except OverflowError:
        return _within_exact(x, y, rel, abs_, symmetric)
    ax, ay = abs(xf), abs(yf)
    # (a subnormal rel_f would carry too large an error into rel_f * scale)
    if ax <= _HUGE and ay <= _HUGE and (rel_f == 0.0 or rel_f >= _TINY):
        scaled = rel_f * (max(ax, ay) if symmetric else ay)
        if math.isfinite(scaled):
            bound = max(scaled, abs_f)
            distance = abs(xf - yf)
            slack_distance = (ax + ay) * _EPS + _TINY
            slack_bound = bound * _EPS + _TINY
            if distance + slack_distance < bound - slack_bound:
                return True
            if distance - slack_distance > bound + slack_bound:
                return False
    return _within_exact(x, y, rel, abs_, symmetric)


#: Decimals whose exponent is beyond this are compared in wide Decimal arithmetic instead
#: of exact fractions, which would need numbers of that many digits.
_MAX_EXACT_EXPONENT = 100_000
_WIDE = Context(prec=200, rounding=ROUND_HALF_EVEN, Emax=MAX_EMAX, Emin=MIN_EMIN)


def _within_exact(
    x: TolNumber, y: TolNumber, rel: Fraction, abs_: Fraction, symmetric: bool
) -> bool:
    if any(isinstance(v, Decimal) and abs(v.adjusted()) > _MAX_EXACT_EXPONENT for v in (x, y)):
        return _within_wide(x, y, rel, abs_, symmetric)
    fx, fy = Fraction(x), Fraction(y)
    scale = max(abs(fx), abs(fy)) if symmetric else abs(fy)
    return abs(fx - fy) <= max(rel * scale, abs_)


def _within_wide(
    x: TolNumber, y: TolNumber, rel: Fraction, abs_: Fraction, symmetric: bool
) -> bool:
    """:func:`_within_exact` for astronomically large or small Decimals: 200 digits."""

    def dec(value: TolNumber) -> Decimal:
        if isinstance(value, Fraction):
            return _WIDE.divide(Decimal(value.numerator), Decimal(value.denominator))
        return _WIDE.plus(Decimal(value))

    dx, dy = dec(x), dec(y)
    scale = max(abs(dx), abs(dy)) if symmetric else abs(dy)
    distance = _WIDE.abs(_WIDE.subtract(dx, dy))
    return distance <= max(_WIDE.multiply(dec(rel), scale), dec(abs_))


def _numbers_equal(x: TolNumber, y: TolNumber, tolerance: Tolerance | None) -> bool:
    """Whether two numbers (not NaN; *y* the expected one) are equal cells."""
    if x == y:
        return True
    if not (_finite(x) and _finite(y)):
        return False
    if (x.__class__ is float or y.__class__ is float) and _within(
        x, y, FLOAT_REL, _ZERO, _FLOAT_REL_F, 0.0, True
    ):
        return True
    return tolerance is not None and _within(
        x, y, tolerance._rel, tolerance._abs, tolerance._rel_f, tolerance._abs_f, False
    )


def _loose_equal(actual: Hashable, expected: Hashable, tolerance: Tolerance | None) -> bool:
    """Whether two keys that are not equal are equal cells all the same (numbers inside)."""
    if actual.__class__ is not tuple or expected.__class__ is not tuple:
        return False
    if not actual or not expected:
        return False
    tag = actual[0]  # type: ignore[index]
    if tag != expected[0]:  # type: ignore[index]
        return False
    if tag == "num":
        return _numbers_equal(actual[1], expected[1], tolerance)  # type: ignore[index]
    if tag == "seq":
        items, wanted = actual[1], expected[1]  # type: ignore[index]
        return len(items) == len(wanted) and all(
            a == e or _loose_equal(a, e, tolerance) for a, e in zip(items, wanted, strict=True)
        )
    if tag == "map":
        pairs, wanted_pairs = actual[1], expected[1]  # type: ignore[index]
        got, want = dict(pairs), dict(wanted_pairs)
        if len(got) != len(pairs) or len(want) != len(wanted_pairs) or got.keys() != want.keys():
            return False
        return all(got[k] == want[k] or _loose_equal(got[k], want[k], tolerance) for k in got)
    return False


def cells_equal(actual: Hashable, expected: Hashable, tolerance: Tolerance | None = None) -> bool:
    """Whether two cell keys (from :func:`cell_key`) are equal cells.

    Equal keys are equal cells. Different numbers are equal when a float is on one side
    and they are within :data:`FLOAT_REL` of each other, or when *tolerance* allows
    them (relative to *expected*); numbers inside lists, tuples and dict values compare
    the same way.
    """
    return actual == expected or _loose_equal(actual, expected, tolerance)


def rows_equal(
    actual: RowKey, expected: RowKey, tolerances: Sequence[Tolerance | None] | None = None
) -> bool:
    """Whether two rows of cell keys are equal, cell by cell (*tolerances*: one per column)."""
    if actual == expected:
        return True
    if len(actual) != len(expected):
        return False
    if tolerances is None:
        return all(
            a == e or _loose_equal(a, e, None) for a, e in zip(actual, expected, strict=True)
        )
    return all(
        a == e or _loose_equal(a, e, t)
        for a, e, t in zip(actual, expected, tolerances, strict=True)
    )


# ---------------------------------------------------------------------------
# Rows as multisets
# ---------------------------------------------------------------------------


def rows_match(
    actual: Sequence[RowKey],
    expected: Sequence[RowKey],
    tolerances: Sequence[Tolerance | None],
    *,
    ordered: bool = False,
    scale_on_actual: bool = False,
) -> bool:
    """Whether rows of keys are equal: in order, or as multisets (a perfect pairing exists).

    *tolerances* has one entry per column. A tolerance is relative to the expected
    value, or to the actual one if *scale_on_actual*.
    """
    if len(actual) != len(expected):
        return False
    if scale_on_actual:
        actual, expected = expected, actual
    if ordered:
        return all(rows_equal(a, e, tolerances) for a, e in zip(actual, expected, strict=True))
    return _unmatched(actual, expected, tolerances, stop_early=True) is not None


def unmatched_rows(
    actual: Sequence[RowKey],
    expected: Sequence[RowKey],
    tolerances: Sequence[Tolerance | None],
    *,
    scale_on_actual: bool = False,
) -> tuple[list[int], list[int]]:
    """Indexes of the expected rows left unpaired and of the actual rows left unpaired.

    The pairing is a largest one-to-one pairing of equal rows, so the number of
    unpaired rows is the least possible; rows with equal keys are paired first-come.
    """
    if scale_on_actual:
        found = _unmatched(expected, actual, tolerances, stop_early=False)
        assert found is not None
        return found[1], found[0]
    found = _unmatched(actual, expected, tolerances, stop_early=False)
    assert found is not None
    return found


def _unmatched_exact(
    actual: Sequence[RowKey], expected: Sequence[RowKey]
) -> tuple[list[int], list[int]]:
    available = Counter(actual)
    missing = []
    for index, key in enumerate(expected):
        if available[key]:
            available[key] -= 1
        else:
            missing.append(index)
    wanted = Counter(expected)
    unexpected = []
    for index, key in enumerate(actual):
        if wanted[key]:
            wanted[key] -= 1
        else:
            unexpected.append(index)
    return missing, unexpected


def _loose_columns(
    actual: Sequence[RowKey], expected: Sequence[RowKey], tolerances: Sequence[Tolerance | None]
) -> list[bool]:
    """For each column, whether some pair of its cells could be equal without equal keys."""
    loose = []
    for column, tolerance in enumerate(tolerances):
        holds = _has_number if tolerance is not None else _has_float
        loose.append(
            any(holds(row[column]) for row in actual) or any(holds(row[column]) for row in expected)
        )
    return loose


_NUM_TOKEN = ("num?",)


def _token(key: Hashable) -> Hashable:
    """What two keys of a loose column must share to be equal cells: finite numbers blur."""
    if key.__class__ is tuple and key:
        tag = key[0]  # type: ignore[index]
        if tag == "num":
            return _NUM_TOKEN if _finite(key[1]) else key  # type: ignore[index]
        if tag == "seq":
            return ("seq", tuple(_token(item) for item in key[1]))  # type: ignore[index]
        if tag == "map":
            return ("map", frozenset((k, _token(v)) for k, v in key[1]))  # type: ignore[index]
    return key


def _typed(key: Hashable) -> Hashable:
    """*key* with each number marked float or not: keys alike here have the same matches."""
    if key.__class__ is tuple and key:
        tag = key[0]  # type: ignore[index]
        if tag == "num":
            return ("num", key[1], key[1].__class__ is float)  # type: ignore[index]
        if tag == "seq":
            return ("seq", tuple(_typed(item) for item in key[1]))  # type: ignore[index]
        if tag == "map":
            return ("map", frozenset((k, _typed(v)) for k, v in key[1]))  # type: ignore[index]
    return key


def _unmatched(
    actual: Sequence[RowKey],
    expected: Sequence[RowKey],
    tolerances: Sequence[Tolerance | None],
    stop_early: bool,
) -> tuple[list[int], list[int]] | None:
    """(missing, unexpected) of a largest pairing; None if *stop_early* and some row is unpaired."""
    loose = _loose_columns(actual, expected, tolerances)
    if not any(loose):
        if stop_early:
            return ([], []) if Counter(actual) == Counter(expected) else None
        return _unmatched_exact(actual, expected)

    groups: dict[Hashable, tuple[list[int], list[int]]] = {}
    every_column = all(loose)
    for side, rows in ((0, actual), (1, expected)):
        for index, row in enumerate(rows):
            if every_column:
                token = tuple(map(_token, row))
            else:
                token = tuple(
                    [_token(key) if blur else key for key, blur in zip(row, loose, strict=True)]
                )
            entry = groups.get(token)
            if entry is None:
                entry = groups[token] = ([], [])
            entry[side].append(index)
    if stop_early and any(len(a) != len(e) for a, e in groups.values()):
        return None

    loose_columns = [column for column, blur in enumerate(loose) if blur]
    missing: list[int] = []
    unexpected: list[int] = []
    for token, (a_indexes, e_indexes) in groups.items():
        if not a_indexes or not e_indexes:
            unexpected.extend(a_indexes)
            missing.extend(e_indexes)
            continue
        if len(a_indexes) == 1 and len(e_indexes) == 1:  # the common case: a shortcut
            a_row, e_row = actual[a_indexes[0]], expected[e_indexes[0]]
            if not all(
                a_row[c] == e_row[c] or _loose_equal(a_row[c], e_row[c], tolerances[c])
                for c in loose_columns
            ):
                if stop_early:
                    return None
                unexpected.extend(a_indexes)
                missing.extend(e_indexes)
            continue
        group_missing, group_unexpected = _match_group(
            token, a_indexes, e_indexes, actual, expected, tolerances, loose_columns
        )
        if stop_early and (group_missing or group_unexpected):
            return None
        missing.extend(group_missing)
        unexpected.extend(group_unexpected)
    missing.sort()
    unexpected.sort()
    return missing, unexpected


def _classes(
    indexes: list[int], rows: Sequence[RowKey], loose_columns: list[int]
) -> list[tuple[RowKey, list[int]]]:
    """Rows of one group with the same typed keys, as (a row key, its row indexes)."""
    classes: dict[Hashable, tuple[RowKey, list[int]]] = {}
    for index in indexes:
        row = rows[index]
        typed = tuple(_typed(row[column]) for column in loose_columns)
        entry = classes.get(typed)
        if entry is None:
            classes[typed] = (row, [index])
        else:
            entry[1].append(index)
    return list(classes.values())


#: Groups with at most this many pairs of classes are compared pair by pair.
_PAIRWISE_LIMIT = 256


def _match_group(
    token: Hashable,
    a_indexes: list[int],
    e_indexes: list[int],
    actual: Sequence[RowKey],
    expected: Sequence[RowKey],
    tolerances: Sequence[Tolerance | None],
    loose_columns: list[int],
) -> tuple[list[int], list[int]]:
    """(missing, unexpected) of a largest pairing within one group of rows."""
    a_classes = _classes(a_indexes, actual, loose_columns)
    e_classes = _classes(e_indexes, expected, loose_columns)

    def equal(i: int, j: int) -> bool:
        a_row, e_row = a_classes[i][0], e_classes[j][0]
        return all(
            a_row[c] == e_row[c] or _loose_equal(a_row[c], e_row[c], tolerances[c])
            for c in loose_columns
        )

    edges = _candidate_edges(token, a_classes, e_classes, tolerances, loose_columns, equal)
    flows = _max_flow([len(ix) for _, ix in a_classes], [len(ix) for _, ix in e_classes], edges)
    a_used = [0] * len(a_classes)
    e_used = [0] * len(e_classes)
    for (i, j), amount in flows.items():
        a_used[i] += amount
        e_used[j] += amount
    unexpected = [ix for (_, ixs), used in zip(a_classes, a_used, strict=True) for ix in ixs[used:]]
    missing = [ix for (_, ixs), used in zip(e_classes, e_used, strict=True) for ix in ixs[used:]]
    return missing, unexpected


def _pivot_float(value: TolNumber) -> float | None:
    """*value* as a float to sort on, or None if that float would not be trustworthy."""
    try:
        number = float(value)
    except OverflowError:
        return None
    magnitude = abs(number)
    if magnitude > _HUGE or (magnitude < _TINY and value != 0):
        return None
    return number


def _window(value: float, tolerance: Tolerance | None) -> float:
    """A bound on ``|x - y|`` for every number y that could equal a number x near *value*."""
    magnitude = abs(value)
    # float rule: |x-y| <= r*max(|x|,|y|) <= r*(|x|+|x-y|)  =>  |x-y| <= r*|x| / (1-r)
    width = _FLOAT_REL_F * magnitude / (1 - _FLOAT_REL_F)
    if tolerance is not None:
        rel = tolerance._rel_f
        if rel >= 0.5:
            return math.inf
        # |x-y| <= max(r*|y|, a) <= r*(|x|+|x-y|) + a  =>  |x-y| <= (r*|x| + a) / (1-r)
        width = max(width, (rel * magnitude + tolerance._abs_f) / (1 - rel))
    # room for the floats' rounding of x, y and of this computation
    return width * (1 + 1e-6) + (magnitude + width) * 1e-15 + _TINY


def _candidate_edges(
    token: Hashable,
    a_classes: list[tuple[RowKey, list[int]]],
    e_classes: list[tuple[RowKey, list[int]]],
    tolerances: Sequence[Tolerance | None],
    loose_columns: list[int],
    equal: Callable[[int, int], bool],
) -> list[list[int]]:
    """For each actual class, the expected classes it equals."""
    n_actual, n_expected = len(a_classes), len(e_classes)
    pivot = next((c for c in loose_columns if token[c] == _NUM_TOKEN), None)  # type: ignore[index]
    if pivot is None or n_actual * n_expected <= _PAIRWISE_LIMIT:
        return [[j for j in range(n_expected) if equal(i, j)] for i in range(n_actual)]
    sortable: list[tuple[float, int]] = []
    elsewhere: list[int] = []
    for j, (row, _) in enumerate(e_classes):
        number = _pivot_float(row[pivot][1])  # type: ignore[index]
        if number is None:
            elsewhere.append(j)
        else:
            sortable.append((number, j))
    sortable.sort()
    numbers_ = [number for number, _ in sortable]
    tolerance = tolerances[pivot]
    edges = []
    for i, (row, _) in enumerate(a_classes):
        number = _pivot_float(row[pivot][1])  # type: ignore[index]
        if number is None:
            candidates: Iterable[int] = range(n_expected)
        else:
            width = _window(number, tolerance)
            low = bisect_left(numbers_, number - width)
            high = bisect_right(numbers_, number + width)
            candidates = [j for _, j in sortable[low:high]] + elsewhere
        edges.append([j for j in candidates if equal(i, j)])
    return edges


def _max_flow(
    a_capacity: list[int], e_capacity: list[int], edges: list[list[int]]
) -> dict[tuple[int, int], int]:
    """A largest pairing of actual with expected rows, by class: flow[(i, j)] = rows paired.

    Class i holds ``a_capacity[i]`` actual rows, class j ``e_capacity[j]`` expected
    rows; ``edges[i]`` lists the j whose rows equal those of i. Greedy first, then
    augmenting paths (Ford-Fulkerson) until none is left, which makes it largest.
    """
    flow: dict[tuple[int, int], int] = {}
    a_left = list(a_capacity)
    e_left = list(e_capacity)
    for i, targets in enumerate(edges):
        for j in targets:
            if not a_left[i]:
                break
            amount = min(a_left[i], e_left[j])
            if amount:
                flow[(i, j)] = flow.get((i, j), 0) + amount
                a_left[i] -= amount
                e_left[j] -= amount
    sources_of: list[list[int]] = [[] for _ in e_capacity]
    for i, targets in enumerate(edges):
        for j in targets:
            sources_of[j].append(i)
    while any(a_left) and any(e_left):
        # Breadth-first from every actual class with rows left, over forward edges and
        # backwards over edges that carry flow, to an expected class with rows left.
        came_from_e: dict[int, int] = {}  # expected class -> the actual class that reached it
        came_from_a: dict[int, int | None] = {i: None for i, left in enumerate(a_left) if left}
        queue = deque(came_from_a)
        end = None
        while queue and end is None:
            i = queue.popleft()
            for j in edges[i]:
                if j in came_from_e:
                    continue
                came_from_e[j] = i
                if e_left[j]:
                    end = j
                    break
                for back in sources_of[j]:
                    if back not in came_from_a and flow.get((back, j), 0) > 0:
                        came_from_a[back] = j
                        queue.append(back)
        if end is None:
            break
        forward: list[tuple[int, int]] = []
        backward: list[tuple[int, int]] = []
        j = end
        while True:
            i = came_from_e[j]
            forward.append((i, j))
            previous = came_from_a[i]
            if previous is None:
                break
            backward.append((i, previous))
            j = previous
        amount = min([a_left[i], e_left[end]] + [flow[edge] for edge in backward])
        for edge in forward:
            flow[edge] = flow.get(edge, 0) + amount
        for edge in backward:
            flow[edge] -= amount
        a_left[i] -= amount
        e_left[end] -= amount
    return {edge: amount for edge, amount in flow.items() if amount}


# ---------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------


def match_columns(
    left: Sequence[Any], right: Sequence[Any]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair the column names of two sides: exact matches, then case-insensitive ones.

    A name pairs with the same name on the other side. Of the names left over, two
    pair when they are equal case-insensitively and no other left-over name on either
    side folds to the same. The rule is symmetric. Returns the pairs ``(left index,
    right index)`` in left order and the unpaired indexes of each side.
    """
    right_at = {name: i for i, name in enumerate(right)}
    paired: dict[int, int] = {}
    for i, name in enumerate(left):
        j = right_at.get(name)
        if j is not None:
            paired[i] = j
    taken = set(paired.values())

    def folded(names: Sequence[Any], indexes: Iterable[int]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i in indexes:
            if isinstance(names[i], str):
                groups.setdefault(names[i].casefold(), []).append(i)
        return groups

    left_rest = folded(left, (i for i in range(len(left)) if i not in paired))
    right_rest = folded(right, (j for j in range(len(right)) if j not in taken))
    for fold, lefts in left_rest.items():
        rights = right_rest.get(fold)
        if len(lefts) == 1 and rights is not None and len(rights) == 1:
            paired[lefts[0]] = rights[0]
    taken = set(paired.values())
    pairs = sorted(paired.items())
    return (
        pairs,
        [i for i in range(len(left)) if i not in paired],
        [j for j in range(len(right)) if j not in taken],
    )


# ---------------------------------------------------------------------------
# Asking for a tolerance: Approx and approx_spec
# ---------------------------------------------------------------------------

_TOLERANCE_KEYS = ("rel", "abs")


class Approx:
    """The tolerances of ``rows.approx(rel=None, abs=None, columns=None)``.

    ``default`` applies to every column that ``columns`` does not name; it is None (no
    tolerance) when neither *rel* nor *abs* is given but *columns* is, and pytest.approx's
    defaults when nothing at all is given. ``columns`` maps column names to their own
    :class:`Tolerance`, which replaces the default for that column.

    :raises ComparisonSpecError: if a tolerance is malformed (see :func:`approx_spec`).
    """

    __slots__ = ("columns", "default")

    def __init__(
        self,
        rel: TolNumber | None = None,
        abs: TolNumber | None = None,
        columns: Mapping[str, Mapping[str, TolNumber | None] | bool] | None = None,
    ) -> None:
        if columns is None or rel is not None or abs is not None:
            default: Tolerance | None = Tolerance(rel, abs)
        else:
            default = None
        #: The tolerance of the columns that ``columns`` does not name (None: exact).
        self.default = default
        #: Column name -> its tolerance.
        self.columns: dict[str, Tolerance] = {}
        if columns is None:
            return
        if not isinstance(columns, Mapping):
            raise ComparisonSpecError(
                "dbtproof: approx columns= takes a dict of column name to "
                f"{{'rel': ..., 'abs': ...}}, not {_describe(columns)}"
            )
        for name, spec in columns.items():
            self.columns[_column_name(name)] = _column_tolerance(name, spec)

    def tolerances_for(self, names: Sequence[str]) -> list[Tolerance | None]:
        """The tolerance of each of the columns *names* (matched as column names are).

        :raises ComparisonSpecError: if ``columns`` names a column that is not there.
        """
        spec_names = list(self.columns)
        pairs, unpaired, _ = match_columns(spec_names, names)
        if unpaired:
            unknown = [spec_names[i] for i in unpaired]
            have = ", ".join(repr(name) for name in names) or "no columns"
            raise ComparisonSpecError(
                f"dbtproof: approx names {_plural_columns(unknown)} that the rows do not "
                f"have; the rows have {have}"
            )
        found: list[Tolerance | None] = [self.default] * len(names)
        for i, j in pairs:
            found[j] = self.columns[spec_names[i]]
        return found

    def __repr__(self) -> str:
        parts = []
        if self.default is not None:
            parts.extend(f"{k}={v!r}" for k, v in self.default.as_dict().items())
        if self.columns:
            inner = {name: tol.as_dict() for name, tol in self.columns.items()}
            parts.append(f"columns={inner!r}")
        return f"approx({', '.join(parts)})"


def _describe(value: object) -> str:
    return f"{value!r} (a {type(value).__name__})"


def _plural_columns(names: Sequence[str]) -> str:
    word = "column" if len(names) == 1 else "columns"
    return f"{word} " + ", ".join(repr(name) for name in names)


def _column_name(name: object) -> str:
    if not isinstance(name, str):
        raise ComparisonSpecError(
            f"dbtproof: approx columns are named by strings, not {_describe(name)}"
        )
    return name


def _column_tolerance(name: str, spec: object) -> Tolerance:
    """The tolerance of column *name* from ``{"rel": .., "abs": ..}`` (or True: defaults)."""
    if spec is True:
        return Tolerance(what=f"approx for column {name!r}:")
    if not isinstance(spec, Mapping):
        raise ComparisonSpecError(
            f"dbtproof: approx for column {name!r} must be a dict like "
            f"{{'rel': 1e-6, 'abs': 0.01}} (or True for pytest.approx's defaults), "
            f"not {_describe(spec)}; a tolerance for every column is given with the keys "
            "'rel' and 'abs'"
        )
    unknown = [key for key in spec if key not in _TOLERANCE_KEYS]
    if unknown:
        raise ComparisonSpecError(
            f"dbtproof: approx for column {name!r} has unknown key(s) "
            f"{', '.join(repr(k) for k in unknown)}; the keys are 'rel' and 'abs'"
        )
    return Tolerance(spec.get("rel"), spec.get("abs"), what=f"approx for column {name!r}:")


def _is_columns_block(value: object) -> bool:
    return isinstance(value, Mapping) and all(
        v is True or isinstance(v, Mapping) for v in value.values()
    )


def approx_spec(value: object) -> dict[str, Any]:
    """Normalise a user's ``approx=`` argument into keyword arguments of ``rows.approx``.

    Accepted, with pytest.approx's meaning of ``rel`` and ``abs``:

    * ``True``: pytest.approx's default tolerance on every numeric column;
    * ``{"rel": 1e-6, "abs": 0.01}`` (either key, or none): that tolerance on every
      numeric column;
    * ``{"fare": {"abs": 0.01}, "ratio": {"rel": 1e-3}}``: a tolerance per column, the
      other columns exact (a column's ``{}`` or ``True`` means pytest.approx's defaults);
    * a mix: ``{"rel": 1e-9, "fare": {"abs": 0.01}}``: the columns named use their own
      tolerance, the others the global one;
    * ``{"columns": {...}}`` is the same as naming the columns at the top level (a
      column named ``rel``, ``abs`` or ``columns`` can be named only this way).

    Returns ``{"rel": ..., "abs": ..., "columns": {name: {"rel": ..., "abs": ...}}}``
    with the keys given, so that ``rows.approx(**approx_spec(value))`` applies it.

    :raises ComparisonSpecError: for anything else: an unknown key in a column's dict,
        a negative, infinite or non-numeric tolerance, a bare number (say whether it
        is ``rel`` or ``abs``), a column named twice.
    """
    if value is True:
        return {}
    if not isinstance(value, Mapping):
        hint = ""
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            hint = f"; say which tolerance it is, e.g. {{'rel': {value!r}}} or {{'abs': {value!r}}}"
        raise ComparisonSpecError(
            "dbtproof: approx= takes True, {'rel': ..., 'abs': ...} for every column, or "
            "{column: {'rel': ..., 'abs': ...}} per column (or a mix), "
            f"not {_describe(value)}{hint}"
        )
    spec: dict[str, Any] = {}
    columns: dict[str, dict[str, Any]] = {}

    def add_column(name: object, column_spec: object) -> None:
        column = _column_name(name)
        if column in columns:
            raise ComparisonSpecError(f"dbtproof: approx names column {column!r} twice")
        tolerance = _column_tolerance(column, column_spec)
        columns[column] = tolerance.as_dict()

    for key, item in value.items():
        if key in _TOLERANCE_KEYS and not isinstance(item, Mapping):
            if item is not None:
                Tolerance(**{key: item}, what="approx")  # validates
                spec[key] = item
        elif key == "columns" and _is_columns_block(item):
            for name, column_spec in item.items():
                add_column(name, column_spec)
        else:
            add_column(key, item)
    if columns:
        spec["columns"] = columns
    return spec
