"""How two cells compare: canonical keys, exact numbers, the float tolerance, approx tolerances.

:mod:`dbtproof.compare.rows` documents the rules for users; this module implements them for one
cell (and for a row, cell by cell). :mod:`dbtproof.compare.pairing` pairs whole rows with them,
:mod:`dbtproof.compare.approx` reads what a test asks for with ``approx``.

**Keys.** :func:`cell_key` turns a cell into a hashable key, so that equal keys mean
equal cells. A number's key holds the number itself (an ``int``, ``Decimal``,
``Fraction`` or ``float``): Python compares and hashes these exactly by value across
types, so ``1``, ``1.0`` and ``Decimal("1.00")`` share a key and
``Decimal("1.1231")`` and ``Decimal("1.1234")`` do not. Dates, times and timestamps
(and the strings that spell them) share keys; see :mod:`dbtproof.compare.rows`.

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

The helpers :mod:`dbtproof.compare.pairing` shares (``_loose_equal``, ``_has_float``,
``_has_number``, ``_finite`` and the float bounds) are private to the package.

This module does not import dbt, pandas or pyarrow.
"""

from __future__ import annotations

import math
import numbers
import re
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from dbtproof.errors import ComparisonSpecError

__all__ = [
    "DEFAULT_ABS",
    "DEFAULT_REL",
    "FLOAT_REL",
    "RowKey",
    "TolNumber",
    "Tolerance",
    "cell_key",
    "cells_equal",
    "rows_equal",
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


#: The key function of each exact type that is common in query results (read-only).
_KEY_BY_TYPE: Mapping[type, Callable[[Any], Hashable]] = MappingProxyType(
    {
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
)


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
#: Significant digits of that wide arithmetic.
_WIDE_DIGITS = 200


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
    """:func:`_within_exact` for astronomically large or small Decimals: 200 digits.

    The context is made per call: a Decimal context records flags as it computes, so a
    shared one would be module-level state that every comparison changes.
    """
    wide = Context(prec=_WIDE_DIGITS, rounding=ROUND_HALF_EVEN, Emax=MAX_EMAX, Emin=MIN_EMIN)

    def dec(value: TolNumber) -> Decimal:
        if isinstance(value, Fraction):
            return wide.divide(Decimal(value.numerator), Decimal(value.denominator))
        return wide.plus(Decimal(value))

    dx, dy = dec(x), dec(y)
    scale = max(abs(dx), abs(dy)) if symmetric else abs(dy)
    distance = wide.abs(wide.subtract(dx, dy))
    return distance <= max(wide.multiply(dec(rel), scale), dec(abs_))


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
