"""Aggregates of a model's columns on the sample, never its rows.

For each column: the row count, the share of nulls and the number of distinct values;
min and max only for a numeric or date column that is not PII. A model with fewer rows
than the minimum group size gives nothing but the column names (so that no figure
describes a handful of records), and a PII column (:meth:`Workspace.pii_columns`)
gives nothing but its name.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import asdict, dataclass
from typing import Any

from dbtproof.agents.workspace import Workspace
from dbtproof.quoting import quote

#: Fewer rows than this and a model's columns get no figures.
MIN_GROUP_SIZE = 5

_NUMERIC = ("int", "numeric", "decimal", "double", "real", "float", "number")
_DATES = ("date", "timestamp", "time")


@dataclass(frozen=True)
class ColumnProfile:
    """Aggregates of one column; None where withheld (see ``withheld``)."""

    name: str
    data_type: str
    pii: bool
    row_count: int | None = None
    null_share: float | None = None
    distinct_count: int | None = None
    min: Any = None
    max: Any = None
    #: Why figures are missing: ``"pii"``, ``"below minimum group size"``, or None.
    withheld: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data (dates as ISO text, decimals as numbers)."""
        return {key: _json_safe(value) for key, value in asdict(self).items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def kind_of(data_type: str) -> str:
    """``"number"``, ``"date"``, ``"boolean"`` or ``"text"`` for a warehouse type name."""
    lowered = data_type.lower()
    if lowered.startswith("bool"):
        return "boolean"
    if any(lowered.startswith(word) for word in _DATES):
        return "date"
    if any(word in lowered for word in _NUMERIC) and "interval" not in lowered:
        return "number"
    return "text"


def profile_columns(
    ws: Workspace, model: str, *, min_group_size: int = MIN_GROUP_SIZE
) -> list[ColumnProfile]:
    """The :class:`ColumnProfile` of each column of *model* on the sample."""
    relation = ws.relation(model)
    columns = ws.column_types(model)
    pii = ws.pii_columns(model)
    parts = ["count(*) as n"]
    for index, (name, data_type) in enumerate(columns):
        if name.lower() in pii:
            continue
        column = quote(name)
        parts += [f"count({column}) as c{index}", f"count(distinct {column}) as d{index}"]
        if kind_of(data_type) in ("number", "date"):
            parts += [f"min({column}) as lo{index}", f"max({column}) as hi{index}"]
    figures = ws.query(f"select {', '.join(parts)} from {relation}")[0]
    total = int(figures["n"])
    profiles = []
    for index, (name, data_type) in enumerate(columns):
        if name.lower() in pii:
            profiles.append(ColumnProfile(name, data_type, True, withheld="pii"))
            continue
        if total < min_group_size:
            profiles.append(
                ColumnProfile(name, data_type, False, withheld="below minimum group size")
            )
            continue
        present = int(figures[f"c{index}"])
        profiles.append(
            ColumnProfile(
                name,
                data_type,
                False,
                row_count=total,
                null_share=round((total - present) / total, 4),
                distinct_count=int(figures[f"d{index}"]),
                min=figures.get(f"lo{index}"),
                max=figures.get(f"hi{index}"),
            )
        )
    return profiles
