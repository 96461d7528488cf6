"""Fixture data for ``run_model`` typed and written as SQL (or staged through the bulk path).

A fixture, read into a :class:`~dbtproof.engine.reading.Fixture` (column names and rows
of values) by :mod:`dbtproof.engine.reading`, is written as a typed SQL ``select`` by
:func:`fixture_sql` against what is known of the upstream relation's columns
(:class:`Schema`); a large one as a typed select from its rows loaded through the
database driver's bulk path (:attr:`Dialect.stage`).

Values are typed the way dbt's own unit tests type them: each given value becomes a
literal cast to its column's type (strings quoted, numbers as written, ``None`` as
``null``), and a column the fixture leaves out is a ``null`` of its type. Where a
column's type is not known, the literal keeps the type of its Python value (CSV text
is read as dbt reads a seed: integers, decimals, dates, timestamps and booleans are
recognised; ``bytes`` are the warehouse's binary type, where fixtures can write one). Values
that clearly cannot be cast (``"abc"`` for an integer column) are
refused here with the fixture, row and column named; anything subtler is left to the
database.

This module does not import dbt.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from itertools import repeat
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from dbtproof.engine.reading import Fixture, plain_value
from dbtproof.errors import FixtureColumnError, FixtureValueError

# ---------------------------------------------------------------------------
# What is known of a relation's columns
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a relation: its name, its SQL data type when known, and where from.

    ``exact`` says the name is spelled as the warehouse stores it (it came from the
    warehouse, a seed header or a quoted name); a name a person typed (a fixture key, a
    name used unquoted in SQL) is folded as the warehouse folds unquoted names.
    """

    name: str
    data_type: str | None = None
    #: Where the type (or, without a type, the name) was learned, for messages.
    origin: str = ""
    exact: bool = True
    #: Without a type: the type family the SQL's use of the column implies (``number``,
    #: ``timestamp``, ``date``, ``string``, ``boolean``), for values nothing else types.
    hint: str | None = None


@dataclass
class Schema:
    """What is known of an upstream relation's columns without building it.

    ``complete`` says the list is the relation's whole column list (so a fixture
    column outside it is a mistake); ``origin`` says where the knowledge came from.
    """

    columns: list[Column] = field(default_factory=list)
    complete: bool = False
    origin: str = "nothing is known of its columns"
    #: Why the columns could not be worked out from the upstream's SQL, if they could not.
    note: str = ""
    #: Who reads the relation, when every column it can read is in :attr:`columns` (its
    #: SQL parsed, no ``*`` over the relation): a fixture none of whose columns is known
    #: then gives that model nothing but NULLs, which is a mistake (a typo).
    read_by: str = ""

    def find(self, name: str) -> Column | None:
        """The column called *name*, matched case-insensitively."""
        lowered = name.lower()
        for column in self.columns:
            if column.name.lower() == lowered:
                return column
        return None


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------

_INTEGER_TYPES = frozenset({
    "int", "integer", "bigint", "smallint", "tinyint", "int1", "int2", "int4", "int8",
    "int16", "int32", "int64", "int128", "hugeint", "uinteger", "ubigint", "usmallint",
    "utinyint", "uhugeint", "long", "short", "signed", "serial", "bigserial", "smallserial",
})  # fmt: skip
_NUMBER_PREFIXES = ("numeric", "decimal", "number", "real", "double", "float", "money")
_STRING_PREFIXES = ("varchar", "char", "character", "text", "string", "bpchar", "nvarchar", "nchar")
_BOOLEAN_TYPES = frozenset({"bool", "boolean", "logical"})
_BINARY_TYPES = frozenset({"bytea", "blob", "binary", "varbinary", "bytes", "longblob"})

_INT_TEXT = re.compile(r"\s*[+-]?\d+\s*")
#: A number as CSV text spells one, alike in every warehouse: no ``_``, no ``0x``.
_NUMBER_TEXT = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")
#: Words for the floats that are no number; written as PostgreSQL and DuckDB both read them.
_NON_FINITE_TEXT = MappingProxyType(
    {
        "nan": "NaN", "+nan": "NaN", "-nan": "NaN",
        "inf": "Infinity", "+inf": "Infinity", "infinity": "Infinity", "+infinity": "Infinity",
        "-inf": "-Infinity", "-infinity": "-Infinity",
    }
)  # fmt: skip
_BIGINT_RANGE = range(-(2**63), 2**63)
_DATE_TEXT = re.compile(r"\s*\d{4}-\d{1,2}-\d{1,2}\s*")
_TIMESTAMP_TEXT = re.compile(
    r"\s*\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
    r"\s*(Z|z|[+-]\d{2}(:?\d{2})?|UTC)?\s*"
)
_TIME_TEXT = re.compile(r"\s*\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*")
_BOOLEAN_TEXT = frozenset({"true", "false", "t", "f", "yes", "no", "y", "n", "1", "0"})


def type_family(data_type: str | None) -> str | None:
    """The family of a SQL type: ``integer``, ``number``, ``date``, ``timestamp`` ... or None."""
    if not data_type:
        return None
    base = data_type.strip().lower()
    head = base.split("(")[0].strip()
    if head in _INTEGER_TYPES:
        return "integer"
    if head.startswith(_NUMBER_PREFIXES):
        return "number"
    if head == "date":
        return "date"
    if head.startswith(("timestamp", "datetime")):
        return "timestamp"
    if head.startswith("time"):
        return "time"
    if head in _BOOLEAN_TYPES:
        return "boolean"
    if head in _BINARY_TYPES:
        return "binary"
    if head.startswith(_STRING_PREFIXES):
        return "string"
    return None


def _castable(value: Any, family: str | None) -> bool:
    """Whether *value* can be cast to a type of *family* (unknown: the database decides)."""
    if isinstance(value, Decimal) and value.is_snan():
        return False  # a signalling NaN is no number any warehouse stores
    if value is None:
        return True
    if isinstance(value, bytes):
        return family == "binary"  # as text it would be its repr, b'...'
    if family in (None, "string"):
        return True
    if family == "binary":
        return isinstance(value, str)  # text the database reads as bytes, or refuses
    if isinstance(value, bool):
        return family in ("boolean", "string")
    if family == "integer":
        if isinstance(value, int):
            return True
        if isinstance(value, (float, Decimal)):
            return math.isfinite(value) and value == int(value)
        return isinstance(value, str) and bool(_INT_TEXT.fullmatch(value))
    if family == "number":
        if isinstance(value, (int, float, Decimal)):
            return True
        if isinstance(value, str):
            return _is_number_text(value) or value.strip().lower() in _NON_FINITE_TEXT
        return False
    if family == "date":
        if isinstance(value, date):
            return True
        return isinstance(value, str) and bool(_TIMESTAMP_TEXT.fullmatch(value))
    if family == "timestamp":
        if isinstance(value, date):
            return True
        return isinstance(value, str) and bool(_TIMESTAMP_TEXT.fullmatch(value))
    if family == "time":
        if isinstance(value, time):
            return True
        return isinstance(value, str) and bool(_TIME_TEXT.fullmatch(value))
    if family == "boolean":
        if isinstance(value, int):
            return value in (0, 1)
        return isinstance(value, str) and value.strip().lower() in _BOOLEAN_TEXT
    return True


def _is_number_text(text: str) -> bool:
    """Whether *text* spells a finite number the same way for every warehouse."""
    return bool(_NUMBER_TEXT.fullmatch(text))


def infer_text_type(values: Iterable[str | None]) -> str | None:
    """The type a seed would get for CSV text values: dbt's agate inference, in short."""
    present = [v.strip() for v in values if v is not None and v.strip() != ""]
    if not present:
        return None
    if all(_INT_TEXT.fullmatch(v) and int(v) in _BIGINT_RANGE for v in present):
        return "integer"
    if all(_is_number_text(v) for v in present):
        return "number"
    if all(_DATE_TEXT.fullmatch(v) for v in present):
        return "date"
    if all(_TIMESTAMP_TEXT.fullmatch(v) for v in present):
        return "timestamp"
    if all(v.lower() in ("true", "false") for v in present):
        return "boolean"
    return None


# ---------------------------------------------------------------------------
# Writing a fixture as SQL
# ---------------------------------------------------------------------------

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Dialect:
    """How the warehouse spells casts, quoted names, string literals and default types.

    Built once per session from the adapter (see ``ModelEngine``). Fixture data is
    never code: names are quoted with the adapter's quote character doubled inside
    them, string literals double ``'`` (and ``\\`` where the connection treats it as
    an escape), and what cannot be written safely (a NUL, a name too long for the
    warehouse) is refused before any SQL runs.

    ``values`` says the warehouse takes ``(values (...), ...) as t(c1, ...)``: fixtures
    are then written as one ``VALUES`` list cast once per column, which databases plan
    much faster than a ``union all`` of one ``select`` per row.
    """

    cast: Callable[[str, str], str]
    #: The adapter's own quoting of a name (it wraps; escaping is :meth:`identifier`'s job).
    quote: Callable[[str], str]
    values: bool = True
    #: The character the adapter quotes names with.
    quote_char: str = '"'
    #: String literals treat a backslash as an escape (PostgreSQL with
    #: ``standard_conforming_strings = off``, Snowflake, Spark, Redshift).
    backslash_escapes: bool = False
    #: How a ``'`` is written inside a string literal: ``''`` (SQL) or ``\'`` (BigQuery).
    quote_escape: str = "''"
    #: How the warehouse folds unquoted names: ``"lower"``, ``"upper"`` or ``""`` (keeps them).
    fold: str = "lower"
    #: Longest name the warehouse keeps whole, in bytes (PostgreSQL: 63), or None.
    max_identifier_bytes: int | None = None
    #: Types a value gets when nothing is known of its column (literals never narrow one).
    bigint: str = "bigint"
    double: str = "double precision"
    decimal: str = "numeric"
    #: ``decimal`` with a ``{scale}`` placeholder, where the warehouse has no unconstrained one.
    decimal_scaled: str = ""
    text: str = "text"
    boolean: str = "boolean"
    #: The binary type (``bytea``, ``blob``) and how a ``bytes`` value is spelled as text
    #: its cast reads: ``"hex"`` (``\\x`` and two hex digits a byte: PostgreSQL) or
    #: ``"escaped"`` (``\\xHH`` for each byte: DuckDB); "" where fixtures cannot write one.
    binary: str = ""
    binary_style: str = ""
    #: ``varchar`` needs a length here (Spark): a limit is dropped by casting to :attr:`text`.
    varying_needs_length: bool = False
    #: A type that marks a column nothing types in an empty relation, so that a model
    #: passing it on is seen to (its described type is :meth:`is_unknown`); "" for none.
    unknown: str = ""
    #: Loads columns of texts through the driver's bulk path and returns the relation's
    #: SQL name (None: no bulk path); fixtures of :attr:`bulk_rows` rows or more use it.
    stage: Callable[[Iterable[list[str | None]]], str | None] | None = None
    bulk_rows: int = 1000

    def name_problem(self, name: str) -> str | None:
        """Why *name* cannot be used as a column name here, or None when it can."""
        if not name:
            return "it is empty"
        if "\x00" in name:
            return "it contains a NUL character, which no warehouse takes in a name"
        if self.quote_char != '"' and (self.quote_char in name or "\\" in name):
            which = self.quote_char if self.quote_char in name else "\\"
            return f"it contains {which}, which this warehouse cannot quote safely in a name"
        limit = self.max_identifier_bytes
        if limit is not None and len(name.encode("utf-8")) > limit:
            return (
                f"it is {len(name.encode('utf-8'))} bytes long and this warehouse keeps only "
                f"{limit} (a longer name would be cut silently)"
            )
        return None

    def identifier(self, name: str, exact: bool = True) -> str:
        """*name* as a quoted identifier, with the quote character escaped inside it.

        With ``exact=False`` a plain name (letters, digits, ``_``) is first folded the
        way the warehouse folds an unquoted name, so it means what the model's SQL
        means when it writes the name unquoted.
        """
        if not exact and _PLAIN_NAME.fullmatch(name):
            name = name.lower() if self.fold == "lower" else name.upper() if self.fold else name
        if self.quote_char in name:
            name = name.replace(self.quote_char, self.quote_char * 2)
        return self.quote(name)

    def string(self, text: str) -> str:
        """*text* as a SQL string literal.

        :raises ValueError: for a NUL character, which no warehouse's text type holds.
        """
        if "\x00" in text:
            raise ValueError("it contains a NUL character, which SQL text cannot hold")
        escaped = text.replace("\\", "\\\\") if self.backslash_escapes else text
        escaped = escaped.replace("'", self.quote_escape)
        return f"'{escaped}'"

    def binary_text(self, value: bytes) -> str:
        """*value* as the text the warehouse's binary type is cast from (no NUL in it).

        :raises ValueError: where fixtures cannot write a binary value on this warehouse.
        """
        if self.binary_style == "hex":
            return "\\x" + value.hex()
        if self.binary_style == "escaped":
            return "".join(map(_ESCAPED_BYTE.__getitem__, value))
        raise ValueError(
            "bytes values are not supported on this warehouse (no binary type dbtproof can "
            "write); give the value as text, or its hex digits and decode them in SQL"
        )

    def binary_type(self) -> str:
        """The binary type, for a column of ``bytes`` nothing else types.

        :raises ValueError: where fixtures cannot write a binary value on this warehouse.
        """
        if not self.binary or not self.binary_style:
            self.binary_text(b"")  # raises, saying so
        return self.binary

    def is_unknown(self, data_type: str) -> bool:
        """Whether a described type is the mark of a column nothing typed."""
        lowered = data_type.strip().strip('"').lower()
        return lowered == "null" or bool(self.unknown) and lowered == self.unknown_described

    @property
    def unknown_described(self) -> str:
        """How the warehouse describes :attr:`unknown` (``character varying(N)``)."""
        return self.unknown.lower().replace("varchar", "character varying")

    def family_type(self, family: str | None) -> str | None:
        """A type of *family* for a column whose values say nothing (NULLs)."""
        return {
            # An unconstrained exact number where there is one (PostgreSQL has no
            # round(double precision, int)), else double.
            "number": self.decimal if not self.decimal_scaled else self.double,
            "integer": self.bigint,
            "string": self.text,
            "boolean": self.boolean,
            "date": "date",
            "timestamp": "timestamp",
            "time": "time",
        }.get(family or "")

    def decimal_type(self, scale: int, digits: int = 0) -> str:
        """An exact number type holding *digits* digits before the point and *scale* after.

        :raises ValueError: where the warehouse's exact numbers hold fewer digits (DuckDB,
            Snowflake: 38), rather than round or turn the number into a float.
        """
        if self.decimal_scaled:
            if digits + scale > _MAX_DECIMAL_DIGITS:
                raise ValueError(
                    f"its numbers need {digits + scale} digits ({digits} before the point, "
                    f"{scale} after) and an exact number holds at most {_MAX_DECIMAL_DIGITS} "
                    "here: give them as floats or strings, or declare the column's data_type "
                    "in YAML"
                )
            return self.decimal_scaled.format(scale=max(scale, 0))
        return self.decimal


def _decimal_text(value: Decimal) -> str:
    """A finite Decimal written without an exponent (``1E+3`` is a float in some warehouses)."""
    return format(value, "f")


def _decimal_scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _integer_digits(value: int | Decimal) -> int:
    """How many digits *value* (finite) has before the point."""
    if isinstance(value, int):
        return len(str(abs(value))) if value else 0
    return value.adjusted() + 1 if value and value.adjusted() >= 0 else 0


#: The most digits the exact number type of a warehouse with a ``decimal(38, s)`` holds.
_MAX_DECIMAL_DIGITS = 38


#: Each byte as ``\\xHH`` (DuckDB's text form of a blob), by byte value.
_ESCAPED_BYTE = tuple(f"\\x{byte:02x}" for byte in range(256))

#: Implied kinds of Python values (for columns of unknown type).
_K_INT, _K_FLOAT, _K_DECIMAL, _K_BOOL, _K_TEXT = "int", "float", "decimal", "bool", "text"
_K_BYTES = "bytes"
_K_DATE, _K_TIME, _K_TS, _K_TSTZ = "date", "time", "timestamp", "timestamptz"


def _kind(value: Any) -> tuple[str, int]:
    """The kind of a non-null Python value, and its decimal scale (for Decimals)."""
    if isinstance(value, bool):
        return _K_BOOL, 0
    if isinstance(value, int):
        return _K_INT, 0
    if isinstance(value, float):
        return _K_FLOAT, 0
    if isinstance(value, Decimal):
        return (_K_DECIMAL, _decimal_scale(value)) if value.is_finite() else (_K_FLOAT, 0)
    if isinstance(value, datetime):
        return (_K_TSTZ if value.tzinfo is not None else _K_TS), 0
    if isinstance(value, date):
        return _K_DATE, 0
    if isinstance(value, time):
        return _K_TIME, 0
    if isinstance(value, bytes):
        return _K_BYTES, 0
    return _K_TEXT, 0


def _implied_type(values: Iterable[Any], dialect: Dialect) -> str | None:
    """The type a column of unknown type gets from its given values (never narrower).

    Integers are ``bigint`` (an exact number beyond its range), floats ``double``,
    Decimals an exact number wide enough for every value, strings text, bytes binary;
    integers with floats are ``double``, integers with Decimals exact; dates with
    timestamps are timestamps; other values written as quoted text (strings, dates,
    times, JSON) mixed are text. A column of one Python type is typed at C speed
    (:func:`_one_kind_type`), value by value otherwise.

    :raises ValueError: for numbers, booleans or bytes mixed with other kinds (no one type
        holds them alike, and databases differ on what they make of them), for numbers an
        exact type of the warehouse cannot hold, and for bytes where it has no binary type
        fixtures can write.
    """
    values = values if isinstance(values, list) else list(values)
    types = set(map(type, values))
    types.discard(type(None))
    if len(types) == 1:
        typed = _one_kind_type(next(iter(types)), values, dialect)
        if typed is not None:
            return typed
    return _implied_type_by_value(values, dialect)


def _implied_type_by_value(values: Iterable[Any], dialect: Dialect) -> str | None:
    """:func:`_implied_type`, looking at each value in turn."""
    kinds: set[str] = set()
    scale = digits = 0
    wide = False
    for value in values:
        if value is None:
            continue
        kind, value_scale = _kind(value)
        kinds.add(kind)
        if kind in (_K_INT, _K_DECIMAL):
            scale = max(scale, value_scale)
            digits = max(digits, _integer_digits(value))
            wide = wide or kind == _K_INT and value not in _BIGINT_RANGE
    if not kinds:
        return None
    if kinds <= {_K_INT} and not wide:
        return dialect.bigint
    if kinds <= {_K_INT, _K_DECIMAL}:
        return dialect.decimal_type(scale, digits)
    if kinds <= {_K_INT, _K_FLOAT, _K_DECIMAL}:
        return dialect.double
    if len(kinds) > 1:
        if kinds & {_K_INT, _K_FLOAT, _K_DECIMAL, _K_BOOL, _K_BYTES}:
            raise ValueError(
                f"it mixes {' and '.join(sorted(kinds))} values, which no one type holds "
                "alike: give one kind of value per column (or all strings), or declare the "
                "column's data_type in YAML"
            )
        if kinds <= {_K_DATE, _K_TS}:
            return "timestamp"
        if kinds <= {_K_DATE, _K_TS, _K_TSTZ}:
            return "timestamp with time zone"
        return dialect.text
    kind = next(iter(kinds))
    if kind == _K_BYTES:
        return dialect.binary_type()
    return {
        _K_BOOL: dialect.boolean,
        _K_TEXT: dialect.text,
        _K_DATE: "date",
        _K_TIME: "time",
        _K_TS: "timestamp",
        _K_TSTZ: "timestamp with time zone",
    }[kind]


def _one_kind_type(kind: type, values: list[Any], dialect: Dialect) -> str | None:
    """:func:`_implied_type` of *values*, all of Python type *kind* or None, worked out
    with C-level iteration (200,000 values in milliseconds); None where the value-by-value
    path decides (Decimals that are not finite, datetimes with and without a time zone,
    integers beyond ``bigint``, other types)."""
    simple = {
        str: dialect.text,
        float: dialect.double,
        bool: dialect.boolean,
        date: "date",
        time: "time",
    }.get(kind)
    if simple is not None:
        return simple
    if kind is bytes:
        return dialect.binary_type()
    present = [value for value in values if value is not None]
    if kind is int:
        low, high = min(present), max(present)
        return dialect.bigint if low in _BIGINT_RANGE and high in _BIGINT_RANGE else None
    if kind is datetime:
        zones = set(map(_TZINFO, present))
        if zones == {None}:
            return "timestamp"
        return "timestamp with time zone" if None not in zones else None
    if kind is Decimal and all(map(Decimal.is_finite, present)):
        exponent = min(map(_EXPONENT, map(Decimal.as_tuple, present)))
        adjusted = max(map(Decimal.adjusted, filter(None, present)), default=-1)
        return dialect.decimal_type(max(-exponent, 0), max(adjusted + 1, 0))
    return None


_TZINFO = attrgetter("tzinfo")
_EXPONENT = attrgetter("exponent")


def _literal(value: Any, dialect: Dialect) -> str:
    """The SQL literal of a non-null Python value (its type comes from the column's cast).

    :raises ValueError: for a string the warehouse cannot hold (a NUL).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return dialect.string(dialect.binary_text(value))
    if isinstance(value, int):
        return int.__repr__(int(value))
    if isinstance(value, float) and math.isfinite(value):
        return float.__repr__(float(value))
    if isinstance(value, Decimal) and value.is_finite():
        return _decimal_text(value)
    if isinstance(value, (float, Decimal)):
        # Typed here, not by the column's cast only: beside a number in a VALUES list, a
        # string would make the database read the whole column as that number's type.
        return dialect.cast(dialect.string(_non_finite_text(value)), dialect.double)
    if isinstance(value, datetime):
        return dialect.string(value.isoformat(sep=" "))
    if isinstance(value, (date, time)):
        return dialect.string(value.isoformat())
    if isinstance(value, (dict, list, tuple)):
        return dialect.string(json.dumps(value, default=_json_value))
    return dialect.string(str(value))


def _non_finite_text(value: float | Decimal) -> str:
    """A NaN or infinity as PostgreSQL and DuckDB both read it (a signalling NaN as it is:
    no warehouse takes it, and the database says so)."""
    if isinstance(value, Decimal) and value.is_snan():
        return str(value)
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _normalised_text(value: str, family: str | None) -> str:
    """A CSV value of a column of unknown type, in a spelling every warehouse reads alike."""
    text = value.strip()
    if family == "integer":
        return str(int(text))
    if family == "number":
        return _decimal_text(Decimal(text))
    if family == "boolean":
        return "true" if text.lower() == "true" else "false"
    return text


def _text_type(family: str | None, values: Iterable[str | None], dialect: Dialect) -> str | None:
    """The type a seed would give CSV text of *family* (wide enough for every value)."""
    if family == "integer":
        return dialect.bigint
    if family == "number":
        numbers = [Decimal(v.strip()) for v in values if v]
        scale = max(map(_decimal_scale, numbers), default=0)
        return dialect.decimal_type(scale, max(map(_integer_digits, numbers), default=0))
    if family in ("date", "timestamp", "boolean"):
        return dialect.boolean if family == "boolean" else family
    return None


def _typed_text(value: Any, family: str | None) -> str:
    """A value of a column of known type, as the text its type's cast accepts."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and family in ("integer", "number"):
        text = value.strip()
        return _NON_FINITE_TEXT.get(text.lower(), text)
    if family == "integer" and isinstance(value, (float, Decimal)):
        return str(int(value))
    if family == "boolean" and isinstance(value, (str, int)):
        return "true" if str(value).strip().lower() in ("true", "t", "yes", "y", "1") else "false"
    if isinstance(value, float):
        number = float(value)
        return float.__repr__(number) if math.isfinite(number) else _non_finite_text(number)
    if isinstance(value, int):
        return int.__repr__(int(value))
    if isinstance(value, Decimal):
        return _decimal_text(value) if value.is_finite() else _non_finite_text(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=_json_value)
    return str(value)


def _json_value(value: Any) -> Any:
    """A value inside a dict or list cell that JSON has no type for: a numpy/pandas number
    or boolean as its Python value, anything else as its text."""
    plain = plain_value(value, nan_is_missing=True)  # JSON has no NaN
    if plain is None or isinstance(plain, (bool, int, float)):
        return plain
    return str(plain)


_VARYING = ("character varying", "varchar", "nvarchar", "varchar2", "string", "text")


def _plain_type(data_type: str, dialect: Dialect) -> str:
    """A type without a varying-length limit, so text values are not silently cut (as dbt
    does); a fixed ``char(n)`` keeps its length (without one it would be ``char(1)``).
    Where the warehouse requires a length of ``varchar`` (Spark), its text type."""
    head = data_type.split("(")[0].strip().lower()
    if head not in _VARYING:
        return data_type
    if "(" in data_type and dialect.varying_needs_length:
        return dialect.text
    return data_type.split("(")[0].strip()


@dataclass(frozen=True)
class _Plan:
    """How one column of a fixture is written: its quoted name, given key and SQL type."""

    name: str
    quoted: str
    key: str | None
    data_type: str | None
    family: str | None
    #: For columns of unknown type: CSV text read as a seed reads it (its family).
    text_family: str | None = None
    #: The type the column is cast to in the statement (None: the literal's own).
    cast_to: str | None = None


def fixture_sql(fixture: Fixture, schema: Schema, dialect: Dialect, upstream: str) -> str:
    """The fixture as one SQL ``select``, typed by *schema*.

    Every column of *schema* is present (a column the fixture leaves out is a typed
    ``null``); a fixture column that *schema* lacks is kept when *schema* is
    incomplete and refused when it is complete. Values of a column of known type are
    cast to it; values of a column of unknown type are cast to a type their values
    imply that never narrows (see :func:`_implied_type`).

    :raises FixtureColumnError: for a column the upstream does not have, a name that
        cannot be quoted safely, or when no column is known at all.
    :raises FixtureValueError: for a value that cannot be cast to its column's type.
    """
    return _FixtureWriter(fixture, schema, dialect, upstream).sql()


@dataclass(frozen=True)
class _FixtureWriter:
    """Writes one fixture as SQL against what is known of its upstream's columns.

    Three steps: the columns the relation gets and the type of each (:meth:`plans`),
    each given value as SQL text (:meth:`written_rows`), then the statement
    (:func:`_values_sql` or :func:`_selects_sql`). Names reach SQL only through
    :meth:`Dialect.identifier`, values only through :func:`_cell`.
    """

    fixture: Fixture
    schema: Schema
    dialect: Dialect
    #: The upstream relation, as messages name it (``ref('orders')``).
    upstream: str

    def sql(self) -> str:
        """The statement: a ``VALUES`` list where the warehouse takes one, else a select per row;
        or, for many rows, a select from the rows loaded through the driver's bulk path."""
        plans = self.plans()
        if self.dialect.stage is not None and len(self.fixture.rows) >= self.dialect.bulk_rows:
            staged = self._staged_sql(plans)
            if staged is not None:
                return staged
        cells = self.written_rows(plans)
        if self.dialect.values and cells and any(plan.key is not None for plan in plans):
            return _values_sql(plans, cells, self.dialect)
        return _selects_sql(plans, cells, self.dialect)

    # -- the columns and their types ------------------------------------------

    def plans(self) -> list[_Plan]:
        """One :class:`_Plan` per column the fixture relation gets: the schema's, then extras."""
        self._check_names()
        columns, key_of = self._columns()
        plans = [self._plan(column, key_of.get(id(column))) for column in columns]
        self._check_distinct(plans)
        return plans

    def _check_names(self) -> None:
        """Refuse a fixture column name the warehouse cannot take as it is."""
        for name in self.fixture.columns:
            problem = self.dialect.name_problem(name)
            if problem is not None:
                raise FixtureColumnError(
                    f"dbtproof: the fixture for {self.fixture.describe()} has a column name "
                    f"{name!r} that cannot be used: {problem}. Rename the column."
                )

    def _columns(self) -> tuple[list[Column], dict[int, str]]:
        """The relation's columns, and the fixture key of each given one (by ``id``).

        A fixture column is the schema's column of that name (case-insensitively), or,
        when the schema is incomplete, a column of its own appended after the schema's.
        """
        fixture, schema, upstream = self.fixture, self.schema, self.upstream
        mapping: dict[str, Column] = {}
        extra: list[Column] = []
        for name in fixture.columns:
            column = schema.find(name)
            if column is None:
                if schema.complete:
                    known = ", ".join(c.name for c in schema.columns)
                    raise FixtureColumnError(
                        f"dbtproof: the fixture for {fixture.describe()} has a column '{name}' "
                        f"that {upstream} does not have. Its columns ({schema.origin}) are: "
                        f"{known}. Remove or rename the column in the fixture."
                    )
                column = Column(name, None, "the fixture", exact=False)
                extra.append(column)
            elif column.name in {c.name for c in mapping.values()}:
                twice = ", ".join(k for k, c in mapping.items() if c is column)
                raise FixtureColumnError(
                    f"dbtproof: the fixture for {fixture.describe()} names column "
                    f"'{column.name}' of {upstream} twice (as {twice} and {name}); names that "
                    "differ only in case are the same column there."
                )
            mapping[name] = column
        if extra and len(extra) == len(fixture.columns) and schema.read_by and fixture.rows:
            known = ", ".join(c.name for c in schema.columns)
            raise FixtureColumnError(
                f"dbtproof: the fixture for {fixture.describe()} has none of the columns "
                f"{schema.read_by} can read from {upstream}: it gives "
                f"{', '.join(repr(c.name) for c in extra)}, and the known columns are {known} "
                f"({schema.origin}, and what {schema.read_by}'s SQL reads). Rename the "
                "fixture's columns."
            )
        columns = [*schema.columns, *extra]
        if not columns:
            raise FixtureColumnError(
                f"dbtproof: the fixture for {fixture.describe()} names no column, and the "
                f"columns of {upstream} are not known ({schema.origin}). Give the fixture with "
                "its columns (a CSV header, a DataFrame) or declare the columns with their "
                "data_type in the YAML."
            )
        return columns, {id(mapping[name]): name for name in fixture.columns}

    def _plan(self, column: Column, key: str | None) -> _Plan:
        """How *column* is written: given under fixture key *key* (None: left out)."""
        text_family, cast_to = self._column_type(column, key)
        return _Plan(
            name=column.name,
            quoted=self.dialect.identifier(column.name, exact=column.exact),
            key=key,
            data_type=column.data_type,
            family=type_family(column.data_type),
            text_family=text_family,
            cast_to=cast_to,
        )

    def _column_type(self, column: Column, key: str | None) -> tuple[str | None, str | None]:
        """(the family CSV text of an untyped column is read as, the type it is cast to).

        A known type is kept (without a varying-length limit); else CSV text is typed as
        a seed types it, and Python values get a type they imply that never narrows, or
        the hint from the model's use of the column when every value fits it. A column
        with no value at all takes its hint's type.
        """
        dialect, rows = self.dialect, self.fixture.rows
        text_family = cast_to = None
        if column.data_type:
            cast_to = _plain_type(column.data_type, self.dialect)
        elif key is not None and self.fixture.from_text:
            texts = [row.get(key) for row in rows]
            text_family = infer_text_type(texts)
            cast_to = self._typed_by_values(key, _text_type, text_family, texts, dialect)
        elif key is not None:
            values = list(map(dict.get, rows, repeat(key)))
            hint = column.hint
            if hint and hint != "number" and all(_fits_hint(v, hint) for v in values):
                cast_to = dialect.family_type(hint)
            if cast_to is None:
                cast_to = self._typed_by_values(key, _implied_type, values, dialect)
        no_value = key is None or all(row.get(key) is None for row in rows)
        if cast_to is None and column.hint and no_value:
            cast_to = dialect.family_type(column.hint)
        return text_family, cast_to

    def _typed_by_values(self, key: str, typer: Callable[..., str | None], *args: Any) -> Any:
        """``typer(*args)``: the type column *key*'s values imply, or a clear error."""
        try:
            return typer(*args)
        except ValueError as exc:
            raise FixtureValueError(
                f"dbtproof: in the fixture for {self.fixture.describe()}, column '{key}' "
                f"cannot be typed: {exc}."
            ) from None

    def _check_distinct(self, plans: list[_Plan]) -> None:
        """Refuse two fixture columns that are one column in the warehouse."""
        seen: dict[str, str] = {}
        for plan in plans:
            if plan.quoted in seen:
                raise FixtureColumnError(
                    f"dbtproof: the fixture for {self.fixture.describe()} has the columns "
                    f"'{seen[plan.quoted]}' and '{plan.key or plan.name}', which are one "
                    f"column in {self.upstream} (names that differ only in case are the same "
                    "unquoted name). Give each column once."
                )
            seen[plan.quoted] = plan.key or plan.name

    # -- the values -----------------------------------------------------------

    def written_rows(self, plans: list[_Plan]) -> list[list[str]]:
        """Each row's given values as SQL, in the order of the given columns of *plans*."""
        given = [(plan, plan.key) for plan in plans if plan.key is not None]
        return [
            [self._written(plan, row.get(key), number) for plan, key in given]
            for number, row in enumerate(self.fixture.rows, start=1)
        ]

    def _written(self, plan: _Plan, value: Any, row: int) -> str:
        """*value* of column *plan* in row *row* (from 1) as SQL, once it is known castable.

        :raises FixtureValueError: if it cannot be cast to the column's known type, or
            cannot be written at all (a NUL).
        """
        self._check(plan, value, row)
        try:
            return _cell(plan, value, self.dialect)
        except ValueError as exc:
            raise self._unwritable(plan, value, row, exc) from None

    def _unwritable(self, plan: _Plan, value: Any, row: int, exc: ValueError) -> FixtureValueError:
        """The error for *value* of column *plan* in row *row*, which cannot be written."""
        return FixtureValueError(
            f"dbtproof: in the fixture for {self.fixture.describe()}, row {row}, column "
            f"'{plan.key}': {value!r} cannot be written: {exc}. Fix the value."
        )

    # -- the bulk path ---------------------------------------------------------

    def _staged_sql(self, plans: list[_Plan]) -> str | None:
        """The fixture as a typed select from its rows loaded through the bulk path, each
        value the text the ``VALUES`` path would quote and cast alike; None where no column
        has a value, a column has no type to cast to (mixed kinds: the database types the
        literals) or the driver has no bulk path.

        A given column of NULLs only that nothing types is a bare ``null``, as in the
        ``VALUES`` list (not a reason to write 200,000 rows as SQL text)."""
        given = []
        for plan in plans:
            if plan.key is None:
                continue
            if plan.cast_to is not None or self._all_text(plan.key):
                given.append(plan)
            elif any(row.get(plan.key) is not None for row in self.fixture.rows):
                return None
        if not given:
            return None
        assert self.dialect.stage is not None
        relation = self.dialect.stage(self._texts(plan) for plan in given)
        if relation is None:
            return None
        aliases = {id(plan): f"c{i}" for i, plan in enumerate(given, start=1)}
        outer = []
        for plan in plans:
            sql = aliases.get(id(plan), "null")
            if plan.cast_to:
                sql = self.dialect.cast(sql, plan.cast_to)
            outer.append(f"{sql} as {plan.quoted}")
        return f"select {', '.join(outer)}\nfrom {relation}"

    def _all_text(self, key: str | None) -> bool:
        """Whether column *key* holds text only (CSV text, or strings and at least one)."""
        if self.fixture.from_text:
            return True
        kinds = {type(row.get(key)) for row in self.fixture.rows}
        return str in kinds and kinds <= {str, type(None)}

    def _texts(self, plan: _Plan) -> list[str | None]:
        """Column *plan*'s values as the texts the ``VALUES`` path quotes (checked alike).

        A column of one Python type that needs no check is converted at C speed (``map``);
        any other goes value by value through :meth:`_check` and :func:`_text`.
        """
        key = plan.key
        values = list(map(dict.get, self.fixture.rows, repeat(key)))
        kinds = set(map(type, values))
        nulls = type(None) in kinds
        kinds.discard(type(None))
        fast = _fast_texts(plan, self.dialect)
        convert = fast.get(next(iter(kinds))) if len(kinds) == 1 else None
        present = [v for v in values if v is not None] if nulls else values
        if convert is _finite_decimal_text and all(map(Decimal.is_finite, present)):
            convert = "{:f}".format
        elif convert is _float_text and all(map(math.isfinite, present)):
            convert = float.__repr__
        if convert is str.__str__:
            texts: list[str | None] = values
        elif convert is not None and not nulls:
            texts = list(map(convert, values))
        elif convert is not None:
            texts = [None if v is None else convert(v) for v in values]
        else:
            texts = [self._slow_text(plan, fast, v, n) for n, v in enumerate(values, start=1)]
        if "\x00" in "\x01".join(filter(None, texts)):
            number = next(i for i, t in enumerate(texts, start=1) if t and "\x00" in t)
            raise FixtureValueError(
                f"dbtproof: in the fixture for {self.fixture.describe()}, row {number}, column "
                f"'{plan.key}': {values[number - 1]!r} cannot be written: it contains a NUL "
                "character, which SQL text cannot hold. Fix the value."
            )
        return texts

    def _slow_text(
        self, plan: _Plan, fast: Mapping[type, Callable[[Any], str]], value: Any, row: int
    ) -> str | None:
        """One value of a column of mixed kinds as its text (checked where it needs it)."""
        if value is None:
            return None
        convert = fast.get(type(value))
        if convert is not None:
            try:
                return convert(value)
            except ValueError:
                pass  # checked below, which says what is wrong with it
        self._check(plan, value, row)
        try:
            return _text(plan, value, self.dialect)
        except ValueError as exc:
            raise self._unwritable(plan, value, row, exc) from None

    def _check(self, plan: _Plan, value: Any, row: int) -> None:
        """Refuse a value that clearly cannot be cast to its (known) column type."""
        try:
            castable = plan.data_type is None or _castable(value, plan.family)
        except (ValueError, ArithmeticError):
            castable = False
        if not castable:
            raise FixtureValueError(
                f"dbtproof: in the fixture for {self.fixture.describe()}, row {row}, column "
                f"'{plan.key or plan.name}': {value!r} cannot be cast to {plan.data_type}, the "
                f"column's type in {self.upstream} ({self.schema.origin}). Fix the value."
            )


def _fits_hint(value: Any, family: str) -> bool:
    """Whether casting *value* to a type of *family* (a hint from use) keeps all of it."""
    if value is None:
        return True
    if not _castable(value, family):
        return False
    if family == "date":
        if isinstance(value, str):
            return bool(_DATE_TEXT.fullmatch(value))
        return isinstance(value, date) and not isinstance(value, datetime)
    if family == "timestamp":
        if isinstance(value, datetime):
            return value.tzinfo is None
        if isinstance(value, str):
            return not _OFFSET_TEXT.search(value.strip()[10:])
    return True


_OFFSET_TEXT = re.compile(r"(Z|z|[+-]\d{2}(:?\d{2})?|UTC)$")


def _text(plan: _Plan, value: Any, dialect: Dialect) -> str:
    """A non-null value as the text :func:`_cell` quotes (or writes as a literal)."""
    if isinstance(value, bytes):
        return dialect.binary_text(value)
    if plan.data_type is not None:
        return _typed_text(value, plan.family)
    if plan.text_family is not None and isinstance(value, str):
        return _normalised_text(value, plan.text_family)
    return _typed_text(value, None)


def _finite_decimal_text(value: Decimal) -> str:
    """A Decimal's text; a signalling NaN goes the slow way (it is refused there)."""
    if value.is_finite():
        return _decimal_text(value)
    if value.is_snan():
        raise ValueError("a signalling NaN")
    return _non_finite_text(value)


_BOOL_TEXT = MappingProxyType({True: "true", False: "false"})


def _float_text(value: float) -> str:
    return _typed_text(value, None)


def _fast_texts(plan: _Plan, dialect: Dialect) -> dict[type, Callable[[Any], str]]:
    """Per Python type, how a value of column *plan* becomes its text when it needs no
    check (it is castable to the column's type whatever it is); other types go through
    :meth:`_FixtureWriter._check` and :func:`_text`."""
    family = plan.family if plan.data_type is not None else None
    if plan.data_type is None and plan.text_family is not None:
        return {}
    fast: dict[type, Callable[[Any], str]] = {}
    if family in (None, "string"):
        fast[str] = str.__str__
    if family in (None, "string", "integer", "number"):
        fast[int] = int.__repr__
    if family in (None, "string", "boolean"):
        fast[bool] = _BOOL_TEXT.__getitem__
    if family in (None, "string", "timestamp", "date"):
        fast[datetime] = datetime.__str__  # the ISO form with a space, as _typed_text
    if family in (None, "string", "date"):
        fast[date] = date.isoformat
    if family in (None, "string", "number"):
        fast[float] = _float_text
        fast[Decimal] = _finite_decimal_text
    if family in (None, "binary") and dialect.binary_style:
        fast[bytes] = dialect.binary_text
    return fast


def _cell(plan: _Plan, value: Any, dialect: Dialect) -> str:
    """One value as SQL: typed columns take text (cast by column), others their literal."""
    if value is None:
        return "null"
    if isinstance(value, bytes):
        return dialect.string(dialect.binary_text(value))
    if plan.data_type is not None:
        return dialect.string(_typed_text(value, plan.family))
    if plan.text_family is not None and isinstance(value, str):
        return dialect.string(_normalised_text(value, plan.text_family))
    return _literal(value, dialect)


# -- the statement -------------------------------------------------------------


def _values_sql(plans: list[_Plan], cells: list[list[str]], dialect: Dialect) -> str:
    """The fixture as ``select cast(c1 as t1) ... from (values ...) as t(c1, ...)``.

    Each column is cast once, outside the ``VALUES`` list.
    """
    given = [plan for plan in plans if plan.key is not None]
    aliases = {id(plan): f"c{i}" for i, plan in enumerate(given, start=1)}
    outer = []
    for plan in plans:
        sql = aliases.get(id(plan), "null")
        if plan.cast_to:
            sql = dialect.cast(sql, plan.cast_to)
        outer.append(f"{sql} as {plan.quoted}")
    values = ",\n".join("(" + ", ".join(row) + ")" for row in cells)
    return (
        f"select {', '.join(outer)}\nfrom (values\n{values}\n) as dbtproof_fixture"
        f"({', '.join(aliases.values())})"
    )


def _selects_sql(plans: list[_Plan], cells: list[list[str]], dialect: Dialect) -> str:
    """The fixture as one typed ``select`` per row joined by ``union all`` (no rows: none).

    Every value is cast (where its column has a type) in every row.
    """

    def typed(plan: _Plan, sql: str) -> str:
        return dialect.cast(sql, plan.cast_to) if plan.cast_to else sql

    if not cells:
        nulls = ", ".join(f"{typed(p, 'null')} as {p.quoted}" for p in plans)
        return f"select {nulls} where 1 = 0"
    selects = []
    for written in cells:
        given = iter(written)
        parts = []
        for plan in plans:
            sql = next(given) if plan.key is not None else "null"
            parts.append(f"{typed(plan, sql)} as {plan.quoted}")
        selects.append("select " + ", ".join(parts))
    return "\nunion all\n".join(selects)


def empty_sql(schema: Schema, dialect: Dialect) -> str:
    """An empty relation with *schema*'s columns and types (for working out a model's columns)."""
    cells = []
    for column in schema.columns:
        data_type = column.data_type or dialect.family_type(column.hint) or dialect.unknown
        literal = dialect.cast("null", data_type) if data_type else "null"
        cells.append(f"{literal} as {dialect.identifier(column.name, exact=column.exact)}")
    if not cells:
        cells.append(f"{dialect.cast('null', dialect.bigint)} as __dbtproof_no_column")
    return f"select {', '.join(cells)} where 1 = 0"
