"""What a test asks for with ``rows.approx(...)`` or ``approx=``: a tolerance per column.

:class:`Approx` holds the tolerances of ``rows.approx(rel=None, abs=None,
columns=None)`` (a default and one per named column, matched to the rows' columns as
column names are); :func:`approx_spec` turns a user's ``approx=`` argument into those
keywords. What a tolerance means for two numbers is :class:`dbtproof.compare.cells.Tolerance`.

This module does not import dbt, pandas or pyarrow.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from dbtproof.compare.cells import Tolerance, TolNumber
from dbtproof.compare.pairing import match_columns
from dbtproof.errors import ComparisonSpecError

__all__ = ["Approx", "approx_spec"]


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
