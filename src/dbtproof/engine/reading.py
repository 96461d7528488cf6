"""Fixture data for ``run_model`` read into a :class:`Fixture`: rows, CSV, data frames.

:func:`load_fixture` reads what a test gave for one input — a list of dicts, a path to a
CSV file, CSV text, a pandas DataFrame, a pyarrow Table or :class:`dbtproof.Rows` — into
column names and one dict of plain Python values per row (numpy and pandas values as
their Python values, missing ones as None). A float NaN is a value, kept as NaN, except in
a pandas DataFrame, where NaN is how pandas spells a missing value (read as None, as
NaT and NA are); ``bytearray`` and ``memoryview`` values are read as ``bytes``. Large
inputs are looked at with C-level iteration only where their values are plain already
(200,000 dicts in milliseconds).
What cannot be read (ragged or broken CSV, names that are not strings) is refused with
a :class:`~dbtproof.errors.FixtureFormatError`. Typing and writing the rows as SQL is
:mod:`dbtproof.engine.inputs`'s job.

This module does not import dbt.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import Any

from dbtproof.errors import FixtureFormatError


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
    from dbtproof.compare.rows import Rows

    if isinstance(value, Path):
        return _read_csv_file(value, label, search_dirs)
    if isinstance(value, str):
        if "\n" in value or ("," in value and not value.strip().lower().endswith(".csv")):
            return _read_csv_text(value, label, "CSV text")
        return _read_csv_file(Path(value), label, search_dirs)
    if isinstance(value, Rows):
        records = _from_dicts([dict(row) for row in value], label).rows  # memoryview: bytes
        return Fixture(label, "Rows", list(value.columns), records)
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
    """Rows given as dicts. Dicts of plain Python values are kept as they are (looked at
    with C-level iteration only: fixtures of 200,000 rows are read in milliseconds)."""
    if set(map(type, rows)) == {dict}:
        columns = dict.fromkeys(chain.from_iterable(rows))
        kinds = set(map(type, chain.from_iterable(map(dict.values, rows))))
        records = list(rows) if _PLAIN_TYPES.issuperset(kinds) else None
    else:
        columns, records = {}, None
        for index, row in enumerate(rows, start=1):
            if not isinstance(row, Mapping):
                raise FixtureFormatError(
                    f"dbtproof: row {index} of the rows given for {label} is a "
                    f"{type(row).__name__} ({row!r}), not a dict. Give each row as a dict of "
                    "column name to value."
                )
            columns.update(dict.fromkeys(row))
    if records is None:
        records = [{key: plain_value(value) for key, value in row.items()} for row in rows]
    for key in columns:
        if not isinstance(key, str):
            index = next(i for i, row in enumerate(records, start=1) if key in row)
            raise FixtureFormatError(
                f"dbtproof: row {index} of the rows given for {label} has the column name "
                f"{key!r}; column names must be strings."
            )
    names = list(columns)
    if len({name.lower() for name in names}) < len(names):
        names, records = _one_spelling(names, records)
    return Fixture(label, "rows", names, records)


def _one_spelling(
    names: list[str], records: list[dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names that differ only in case from row to row (``{id: 1}``, ``{ID: 2}``) as
    one column, spelled as first given: dbt's unit tests read a row's names
    case-insensitively (``format_row``). A row naming two of them is left as it is (the
    writer refuses the column named twice)."""
    spelling: dict[str, str] = {}
    for name in names:
        spelling.setdefault(name.lower(), name)
    renamed = {name: spelling[name.lower()] for name in names if spelling[name.lower()] != name}
    rows = []
    for row in records:
        if renamed.keys().isdisjoint(row):
            rows.append(row)
        elif len({key.lower() for key in row}) < len(row):
            return names, records
        else:
            rows.append({renamed.get(key, key): value for key, value in row.items()})
    return list(spelling.values()), rows


#: Types of values that are plain already (no pandas/numpy value to unwrap; a NaN is a value).
_PLAIN_TYPES = frozenset({str, int, float, bool, bytes, type(None), Decimal, date, datetime, time})


def _read_csv_text(text: str, label: str, origin: str) -> Fixture:
    reader = csv.reader(io.StringIO(text.strip("\n")), strict=True)
    try:
        lines = list(reader)
    except csv.Error as exc:
        hint = (
            ' A field opened with " is never closed.'
            if "end of data" in str(exc)
            else ' Inside a quoted field write " as "".'
        )
        raise FixtureFormatError(
            f"dbtproof: the {origin} given for {label} is not valid CSV: {exc} (line "
            f"{reader.line_num}).{hint}"
        ) from None
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
            {
                name: (None if cell.strip() == "" else cell)
                for name, cell in zip(header, line, strict=True)
            }
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


def plain_value(value: Any, nan_is_missing: bool = False) -> Any:
    """A pandas/numpy/arrow cell as a plain Python value (missing values as None).

    A float NaN (numpy's too) stays NaN, a value of its own, unless *nan_is_missing* (a
    pandas column, where NaN is how a missing value is spelled); pandas' NA and NaT are
    missing. ``bytearray`` and ``memoryview`` values are ``bytes``.
    """
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None if nan_is_missing else float(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    module = type(value).__module__.split(".")[0]
    if module in ("pandas", "numpy"):
        if not nan_is_missing and getattr(getattr(value, "dtype", None), "kind", "") == "f":
            return value.item()  # a numpy float, NaN or not
        try:
            import pandas

            if pandas.isna(value):
                return None
        except (ImportError, TypeError, ValueError):
            pass
        if hasattr(value, "to_pydatetime"):
            return value.to_pydatetime()
        if hasattr(value, "to_pytimedelta"):
            return value.to_pytimedelta()
        if hasattr(value, "dtype") and value.dtype.kind == "M":
            # numpy keeps nanoseconds, which a Python datetime cannot: .item() gives an int.
            return value.astype("datetime64[us]").item()
        if hasattr(value, "item"):
            return value.item()
    return value


def _from_pandas(frame: Any, label: str) -> Fixture:
    if getattr(frame.columns, "nlevels", 1) > 1:
        raise FixtureFormatError(
            f"dbtproof: the DataFrame given for {label} has a MultiIndex of column names "
            f"({list(frame.columns)[:3]!r} ...); a fixture's columns are single names. Flatten "
            "them first, e.g. frame.columns = ['_'.join(c) for c in frame.columns]."
        )
    odd = [c for c in frame.columns if not isinstance(c, str)]
    if odd:
        raise FixtureFormatError(
            f"dbtproof: the DataFrame given for {label} has column names that are not strings "
            f"({', '.join(repr(c) for c in odd[:5])}); a fixture's columns are named. Give "
            "the DataFrame its column names (pd.DataFrame(data, columns=[...]))."
        )
    columns = list(frame.columns)
    if len(set(columns)) != len(columns):
        raise FixtureFormatError(
            f"dbtproof: the DataFrame given for {label} has repeated column names: {columns}."
        )
    # Column by column (``tolist`` gives Python values at C speed), then one dict per row.
    values = [_series_values(frame.iloc[:, i]) for i in range(len(columns))]
    rows = [dict(zip(columns, record, strict=True)) for record in zip(*values, strict=True)]
    return Fixture(label, "a pandas DataFrame", columns, rows)


def _series_values(series: Any) -> list[Any]:
    """A pandas column's values as plain Python values (missing ones as None)."""
    dtype = series.dtype
    if getattr(dtype, "kind", "") == "M" and getattr(dtype, "tz", None) is None:
        # Naive datetime64 (NaT too): Python datetimes at C speed, to the microsecond.
        return series.to_numpy().astype("datetime64[us]").astype(object).tolist()
    return _plain_values(series.tolist())


def _plain_values(values: list[Any]) -> list[Any]:
    """A pandas column's values as plain Python values (missing ones, NaN among them, as
    None); *values* itself when they are plain already."""
    kinds = set(map(type, values))
    if kinds <= {float, type(None)}:
        return [None if value != value else value for value in values]  # NaN: missing
    if float not in kinds and _PLAIN_TYPES.issuperset(kinds):
        return values
    return [plain_value(value, nan_is_missing=True) for value in values]


def _from_arrow(table: Any, label: str) -> Fixture:
    columns = [str(c) for c in table.column_names]
    rows = [{k: plain_value(v) for k, v in row.items()} for row in table.to_pylist()]
    return Fixture(label, "a pyarrow Table", columns, rows)
