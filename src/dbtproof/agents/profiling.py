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
from dbtproof.safety.quoting import quote

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


@dataclass
class ColumnFacts:
    """Raw aggregates of one column (for proposals; never handed out as they are)."""

    name: str
    data_type: str
    rows: int
    nulls: int
    distinct: int
    #: min and max: only for a non-PII number or date column, else None.
    minimum: Any = None
    maximum: Any = None


def column_facts(ws: Workspace, model: str) -> list[ColumnFacts]:
    """The :class:`ColumnFacts` of each column of *model* on the sample (one query)."""
    relation = ws.relation(model)
    columns = ws.column_types(model)
    pii = ws.pii_columns(model)
    parts = ["count(*) as n"]
    for index, (name, data_type) in enumerate(columns):
        column = quote(name)
        parts += [f"count({column}) as c{index}", f"count(distinct {column}) as d{index}"]
        if name.lower() not in pii and kind_of(data_type) in ("number", "date"):
            parts += [f"min({column}) as lo{index}", f"max({column}) as hi{index}"]
    figures = ws.query(f"select {', '.join(parts)} from {relation}")[0]
    total = int(figures["n"])
    return [
        ColumnFacts(
            name,
            data_type,
            rows=total,
            nulls=total - int(figures[f"c{index}"]),
            distinct=int(figures[f"d{index}"]),
            minimum=figures.get(f"lo{index}"),
            maximum=figures.get(f"hi{index}"),
        )
        for index, (name, data_type) in enumerate(columns)
    ]


def profile_columns(
    ws: Workspace, model: str, *, min_group_size: int = MIN_GROUP_SIZE
) -> list[ColumnProfile]:
    """The :class:`ColumnProfile` of each column of *model* on the sample."""
    pii = ws.pii_columns(model)
    profiles = []
    for facts in column_facts(ws, model):
        name, data_type = facts.name, facts.data_type
        if name.lower() in pii:
            profiles.append(ColumnProfile(name, data_type, True, withheld="pii"))
        elif facts.rows < min_group_size:
            profiles.append(
                ColumnProfile(name, data_type, False, withheld="below minimum group size")
            )
        else:
            profiles.append(
                ColumnProfile(
                    name,
                    data_type,
                    False,
                    row_count=facts.rows,
                    null_share=round(facts.nulls / facts.rows, 4),
                    distinct_count=facts.distinct,
                    min=facts.minimum,
                    max=facts.maximum,
                )
            )
    return profiles
