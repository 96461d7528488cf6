"""Fixture data for ``run_model``: rows, CSV files or text, data frames — read, checked and typed.

A fixture is read into a :class:`Fixture` (column names and rows of values) by
:func:`load_fixture`, then written as a typed SQL ``select`` by :func:`fixture_sql`
against what is known of the upstream relation's columns (:class:`Schema`).

Values are typed the way dbt's own unit tests type them: each given value becomes a
literal cast to its column's type (strings quoted, numbers as written, ``None`` as
``null``), and a column the fixture leaves out is a ``null`` of its type. Where a
column's type is not known, the literal keeps the type of its Python value (CSV text
is read as dbt reads a seed: integers, decimals, dates, timestamps and booleans are
recognised). Values that clearly cannot be cast (``"abc"`` for an integer column) are
refused here with the fixture, row and column named; anything subtler is left to the
database.

This module does not import dbt.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dbtproof.errors import FixtureColumnError, FixtureFormatError, FixtureValueError

# ---------------------------------------------------------------------------
# What is known of a relation's columns
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a relation: its name and, when known, its SQL data type."""

    name: str
    data_type: str | None = None


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

    def find(self, name: str) -> Column | None:
        """The column called *name*, matched case-insensitively."""
        lowered = name.lower()
        for column in self.columns:
            if column.name.lower() == lowered:
                return column
        return None


# ---------------------------------------------------------------------------
# Reading fixture data
# ---------------------------------------------------------------------------


@dataclass
class Fixture:
    """Fixture data read from what a test gave: column names and one dict per row."""

    label: str
    origin: str
    columns: list[str]
    rows: list[dict[str, Any]]
    #: True when the values are CSV text (strings, empty fields as None).
    from_text: bool = False

    def describe(self) -> str:
        """``ref('x') (rows)``, for messages."""
        return f"{self.label} ({self.origin})"


def load_fixture(value: Any, label: str, search_dirs: Sequence[Path] = ()) -> Fixture:
    """Read the data given for one input of ``run_model``.

    *value* is a list of dicts, ``[]``, a path to a CSV file (``str`` or
    :class:`~pathlib.Path`), CSV text (with a header line), a pandas DataFrame, a
    pyarrow Table or a :class:`dbtproof.Rows`. Relative paths are looked up in
    *search_dirs*, in order.

    :raises FixtureFormatError: if the data cannot be read.
    """
    from dbtproof.rows import Rows

    if isinstance(value, Path):
        return _read_csv_file(value, label, search_dirs)
    if isinstance(value, str):
        if "\n" in value or ("," in value and not value.strip().lower().endswith(".csv")):
            return _read_csv_text(value, label, "CSV text")
        return _read_csv_file(Path(value), label, search_dirs)
    if isinstance(value, Rows):
        return Fixture(label, "Rows", list(value.columns), [dict(row) for row in value])
    module = type(value).__module__.split(".")[0]
    if module == "pandas" and hasattr(value, "to_dict"):
        return _from_pandas(value, label)
    if module == "pyarrow" and hasattr(value, "to_pylist"):
        return _from_arrow(value, label)
    if isinstance(value, (list, tuple)):
        return _from_dicts(value, label)
    raise FixtureFormatError(
        f"dbtproof: cannot read the data given for {label}: a {type(value).__name__} is not a "
        "fixture. Give a list of dicts, [] for no rows, a path to a CSV file, CSV text, a pandas "
        "DataFrame or a pyarrow Table."
    )


def _from_dicts(rows: Sequence[Any], label: str) -> Fixture:
    columns: dict[str, None] = {}
    records: list[dict[str, Any]] = []
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise FixtureFormatError(
                f"dbtproof: row {index} of the rows given for {label} is a {type(row).__name__} "
                f"({row!r}), not a dict. Give each row as a dict of column name to value."
            )
        for key in row:
            if not isinstance(key, str):
                raise FixtureFormatError(
                    f"dbtproof: row {index} of the rows given for {label} has the column name "
                    f"{key!r}; column names must be strings."
                )
            columns.setdefault(key, None)
        records.append(dict(row))
    return Fixture(label, "rows", list(columns), records)


def _read_csv_text(text: str, label: str, origin: str) -> Fixture:
    try:
        lines = list(csv.reader(io.StringIO(text.strip("\n"))))
    except csv.Error as exc:
        raise FixtureFormatError(
            f"dbtproof: the {origin} given for {label} is not valid CSV: {exc}."
        ) from exc
    lines = [line for line in lines if line]
    if not lines:
        raise FixtureFormatError(
            f"dbtproof: the {origin} given for {label} is empty; it needs at least a header line "
            "naming the columns (give [] for no rows of a relation whose columns dbtproof knows)."
        )
    header = [name.strip() for name in lines[0]]
    if any(not name for name in header):
        raise FixtureFormatError(
            f"dbtproof: the header line of the {origin} given for {label} has an empty column "
            f"name: {','.join(lines[0])!r}."
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise FixtureFormatError(
            f"dbtproof: the header line of the {origin} given for {label} names "
            f"{', '.join(repeated)} more than once."
        )
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise FixtureFormatError(
                f"dbtproof: the {origin} given for {label} is ragged: line {number} has "
                f"{len(line)} field(s) but the header has {len(header)} ({', '.join(header)}). "
                "Give every line the same number of fields (an empty field is NULL)."
            )
        rows.append(
            {name: (None if cell == "" else cell) for name, cell in zip(header, line, strict=True)}
        )
    return Fixture(label, origin, header, rows, from_text=True)


def _read_csv_file(path: Path, label: str, search_dirs: Sequence[Path]) -> Fixture:
    candidates = [path] if path.is_absolute() else [Path(d) / path for d in search_dirs]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        looked = ", ".join(str(p) for p in candidates) or str(path)
        raise FixtureFormatError(
            f"dbtproof: the CSV file {str(path)!r} given for {label} was not found (looked for "
            f"{looked}). Relative paths are read from the test file's folder, the dbt project's "
            "folder, then the current folder. To give CSV text instead, include its line breaks."
        )
    try:
        text = found.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FixtureFormatError(
            f"dbtproof: cannot read the CSV file {found} given for {label}: {exc}."
        ) from exc
    return _read_csv_text(text, label, f"CSV file {found}")


def _plain(value: Any) -> Any:
    """A pandas/numpy/arrow cell as a plain Python value (missing values as None)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    module = type(value).__module__.split(".")[0]
    if module in ("pandas", "numpy"):
        try:
            import pandas

            if pandas.isna(value):
                return None
        except (ImportError, TypeError, ValueError):
            pass
        if hasattr(value, "to_pydatetime"):
            return value.to_pydatetime()
        if hasattr(value, "item"):
            return value.item()
    return value


def _from_pandas(frame: Any, label: str) -> Fixture:
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        raise FixtureFormatError(
            f"dbtproof: the DataFrame given for {label} has repeated column names: {columns}."
        )
    rows = [
        {name: _plain(value) for name, value in zip(columns, record, strict=True)}
        for record in frame.itertuples(index=False, name=None)
    ]
    return Fixture(label, "a pandas DataFrame", columns, rows)


def _from_arrow(table: Any, label: str) -> Fixture:
    columns = [str(c) for c in table.column_names]
    rows = [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()]
    return Fixture(label, "a pyarrow Table", columns, rows)


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------

_INTEGER_TYPES = {
    "int", "integer", "bigint", "smallint", "tinyint", "int1", "int2", "int4", "int8",
    "int16", "int32", "int64", "int128", "hugeint", "uinteger", "ubigint", "usmallint",
    "utinyint", "uhugeint", "long", "short", "signed", "serial", "bigserial", "smallserial",
}  # fmt: skip
_NUMBER_PREFIXES = ("numeric", "decimal", "number", "real", "double", "float", "money")
_STRING_PREFIXES = ("varchar", "char", "character", "text", "string", "bpchar", "nvarchar", "nchar")
_BOOLEAN_TYPES = {"bool", "boolean", "logical"}

_INT_TEXT = re.compile(r"\s*[+-]?\d+\s*")
_DATE_TEXT = re.compile(r"\s*\d{4}-\d{1,2}-\d{1,2}\s*")
_TIMESTAMP_TEXT = re.compile(
    r"\s*\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
    r"\s*(Z|z|[+-]\d{2}(:?\d{2})?|UTC)?\s*"
)
_TIME_TEXT = re.compile(r"\s*\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*")
_BOOLEAN_TEXT = {"true", "false", "t", "f", "yes", "no", "y", "n", "1", "0"}


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
    if head.startswith(_STRING_PREFIXES):
        return "string"
    return None


def _castable(value: Any, family: str | None) -> bool:
    """Whether *value* can be cast to a type of *family* (unknown: the database decides)."""
    if value is None or family in (None, "string"):
        return True
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
            try:
                Decimal(value.strip())
            except InvalidOperation:
                return False
            return True
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


def infer_text_type(values: Iterable[str | None]) -> str | None:
    """The type a seed would get for CSV text values: dbt's agate inference, in short."""
    present = [v.strip() for v in values if v is not None and v.strip() != ""]
    if not present:
        return None
    if all(_INT_TEXT.fullmatch(v) for v in present):
        return "integer"
    if all(_castable(v, "number") and not v.lower().startswith(("nan", "inf")) for v in present):
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


@dataclass(frozen=True)
class Dialect:
    """How the warehouse spells a cast and a quoted name (taken from the adapter once).

    ``values`` says the warehouse takes ``(values (...), ...) as t(c1, ...)``: fixtures
    are then written as one ``VALUES`` list cast once per column, which databases plan
    much faster than a ``union all`` of one ``select`` per row.
    """

    cast: Callable[[str, str], str]
    quote: Callable[[str], str]
    values: bool = True


def _quote_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _literal(value: Any) -> tuple[str, str | None]:
    """The SQL literal of a Python value and the type it implies (None: let SQL infer)."""
    if value is None:
        return "null", None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value), None
        return _quote_text({"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]), (
            "double precision"
        )
    if isinstance(value, Decimal):
        return (str(value), None) if value.is_finite() else (_quote_text(str(value)), "numeric")
    if isinstance(value, datetime):
        typ = "timestamp with time zone" if value.tzinfo is not None else "timestamp"
        return _quote_text(value.isoformat(sep=" ")), typ
    if isinstance(value, date):
        return _quote_text(value.isoformat()), "date"
    if isinstance(value, time):
        return _quote_text(value.isoformat()), "time"
    if isinstance(value, str):
        return _quote_text(value), None
    if isinstance(value, uuid.UUID):
        return _quote_text(str(value)), None
    if isinstance(value, (dict, list, tuple)):
        return _quote_text(json.dumps(value, default=str)), None
    return _quote_text(str(value)), None


def _text_literal(value: str, family: str, dialect: Dialect) -> str:
    """A CSV value of a column of unknown type, written as the type a seed would give it."""
    text = value.strip()
    if family in ("integer", "number"):
        return text
    if family == "boolean":
        return "true" if text.lower() == "true" else "false"
    return dialect.cast(_quote_text(text), family)


def _cast_type(data_type: str, value: Any) -> str:
    """The type to cast a value to; strings lose a varchar length, as dbt's unit tests do."""
    if isinstance(value, str) and "varying" in data_type.lower():
        return data_type.split("(")[0]
    return data_type


def fixture_sql(fixture: Fixture, schema: Schema, dialect: Dialect, upstream: str) -> str:
    """The fixture as one SQL ``select`` (``union all`` per row), typed by *schema*.

    Every column of *schema* is present (a column the fixture leaves out is a typed
    ``null``); a fixture column that *schema* lacks is kept when *schema* is
    incomplete and refused when it is complete.

    :raises FixtureColumnError: for a column the upstream does not have, or when no
        column is known at all.
    :raises FixtureValueError: for a value that cannot be cast to its column's type.
    """
    mapping: dict[str, Column] = {}
    extra: list[Column] = []
    for name in fixture.columns:
        column = schema.find(name)
        if column is None:
            if schema.complete:
                known = ", ".join(c.name for c in schema.columns)
                raise FixtureColumnError(
                    f"dbtproof: the fixture for {fixture.describe()} has a column '{name}' that "
                    f"{upstream} does not have. Its columns ({schema.origin}) are: {known}. "
                    "Remove or rename the column in the fixture."
                )
            column = Column(name.lower() if name == name.upper() or name.islower() else name)
            extra.append(column)
        mapping[name] = column
    columns = [*schema.columns, *extra]
    if not columns:
        raise FixtureColumnError(
            f"dbtproof: the fixture for {fixture.describe()} names no column, and the columns of "
            f"{upstream} are not known ({schema.origin}). Give the fixture with its columns (a CSV "
            "header, a DataFrame) or declare the columns with their data_type in the YAML."
        )
    by_column = {mapping[name].name: name for name in fixture.columns}
    types = {column.name: column.data_type for column in columns}
    families = {name: type_family(t) for name, t in types.items()}
    text_families: dict[str, str | None] = {}
    if fixture.from_text:
        for column in columns:
            if column.data_type is None and column.name in by_column:
                key = by_column[column.name]
                text_families[column.name] = infer_text_type(row.get(key) for row in fixture.rows)
    quoted = {column.name: dialect.quote(column.name) for column in columns}

    def check(column: Column, value: Any, row_number: int) -> None:
        """Refuse a value that clearly cannot be cast to its (known) column type."""
        if not _castable(value, families[column.name]):
            raise FixtureValueError(
                f"dbtproof: in the fixture for {fixture.describe()}, row {row_number}, column "
                f"'{by_column.get(column.name, column.name)}': {value!r} cannot be cast to "
                f"{types[column.name]}, the column's type in {upstream} ({schema.origin}). "
                "Fix the value."
            )

    def cell(column: Column, value: Any, row_number: int) -> str:
        data_type = types[column.name]
        family = families[column.name]
        if data_type is None:
            text_family = text_families.get(column.name)
            if text_family is not None and isinstance(value, str):
                return _text_literal(value, text_family, dialect)
            literal, implied = _literal(value)
            return dialect.cast(literal, implied) if implied else literal
        check(column, value, row_number)
        literal, _ = _literal(value)
        if family == "integer" and isinstance(value, (float, Decimal)):
            literal = str(int(value))
        if family == "boolean" and isinstance(value, str):
            literal = "true" if value.strip().lower() in ("true", "t", "yes", "y", "1") else "false"
        return dialect.cast(literal, _cast_type(data_type, value))

    if dialect.values and fixture.rows:
        checked = [
            (column, by_column[column.name])
            for column in columns
            if column.name in by_column and types[column.name] is not None
        ]
        for number, row in enumerate(fixture.rows, start=1):
            for column, key in checked:
                check(column, row.get(key), number)
        return _values_sql(fixture, columns, by_column, types, families, text_families, dialect)
    selects = []
    for number, row in enumerate(fixture.rows, start=1):
        cells = []
        for column in columns:
            key = by_column.get(column.name)
            value = row.get(key) if key is not None else None
            cells.append(f"{cell(column, value, number)} as {quoted[column.name]}")
        selects.append("select " + ", ".join(cells))
    if not selects:
        nulls = ", ".join(f"{cell(c, None, 0)} as {quoted[c.name]}" for c in columns)
        return f"select {nulls} where 1 = 0"
    return "\nunion all\n".join(selects)


def _values_sql(
    fixture: Fixture,
    columns: list[Column],
    by_column: dict[str, str],
    types: dict[str, str | None],
    families: dict[str, str | None],
    text_families: dict[str, str | None],
    dialect: Dialect,
) -> str:
    """The fixture as ``select cast(c1 as t1) ... from (values ...) as t(c1, ...)``.

    Values of a typed column go in as text and are cast once, by column (every
    castable value has a text form its type accepts); values of a column of unknown
    type keep the type of their literal. Values were checked by the caller.
    """
    given = [c for c in columns if c.name in by_column]
    aliases = {c.name: f"c{i}" for i, c in enumerate(given, start=1)}
    rows = []
    for row in fixture.rows:
        cells = []
        for column in given:
            value = row.get(by_column[column.name])
            data_type = types[column.name]
            if data_type is None and isinstance(value, str) and text_families.get(column.name):
                family = text_families[column.name]
                if family in ("integer", "number"):
                    cells.append(value.strip())
                    continue
                if family == "boolean":
                    cells.append("true" if value.strip().lower() == "true" else "false")
                    continue
            cells.append(_value_cell(value, data_type, families[column.name], dialect))
        rows.append("(" + ", ".join(cells) + ")")
    outer = []
    for column in columns:
        name = dialect.quote(column.name)
        data_type = types[column.name]
        if column.name not in aliases:
            literal = dialect.cast("null", data_type) if data_type else "null"
            outer.append(f"{literal} as {name}")
            continue
        alias = aliases[column.name]
        if data_type:
            outer.append(f"{dialect.cast(alias, _plain_type(data_type))} as {name}")
        elif text_families.get(column.name) in ("date", "timestamp"):
            outer.append(f"{dialect.cast(alias, str(text_families[column.name]))} as {name}")
        else:
            outer.append(f"{alias} as {name}")
    values = ",\n".join(rows)
    return (
        f"select {', '.join(outer)}\nfrom (values\n{values}\n) as dbtproof_fixture"
        f"({', '.join(aliases.values())})"
    )


def _plain_type(data_type: str) -> str:
    """A type without a varchar length, so text values are not silently cut (as dbt does)."""
    return data_type.split("(")[0] if "varying" in data_type.lower() else data_type


def _value_cell(value: Any, data_type: str | None, family: str | None, dialect: Dialect) -> str:
    if value is None:
        return "null"
    if data_type is None:
        literal, implied = _literal(value)
        return dialect.cast(literal, implied) if implied else literal
    if isinstance(value, bool):
        return _quote_text("true" if value else "false")
    if family == "integer" and isinstance(value, (float, Decimal)):
        return _quote_text(str(int(value)))
    if family == "boolean" and isinstance(value, (str, int)):
        truthy = str(value).strip().lower() in ("true", "t", "yes", "y", "1")
        return _quote_text("true" if truthy else "false")
    if isinstance(value, float):
        return _quote_text(repr(value) if math.isfinite(value) else _literal(value)[0].strip("'"))
    if isinstance(value, datetime):
        return _quote_text(value.isoformat(sep=" "))
    if isinstance(value, (date, time)):
        return _quote_text(value.isoformat())
    literal, _ = _literal(value)
    return literal if literal.startswith("'") else _quote_text(literal)


def empty_sql(schema: Schema, dialect: Dialect) -> str:
    """An empty relation with *schema*'s columns and types (for working out a model's columns)."""
    cells = []
    for column in schema.columns:
        literal = dialect.cast("null", column.data_type) if column.data_type else "null"
        cells.append(f"{literal} as {dialect.quote(column.name)}")
    return f"select {', '.join(cells)} where 1 = 0"
