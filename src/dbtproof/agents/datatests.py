"""Data tests worth proposing for a model, and the SQL that counts each one's failures.

Candidates come from aggregates of the model on the sample: ``not_null`` for a column
without nulls, ``unique`` for one without repeats, ``accepted_values`` for a text column
of few values, ``relationships`` for a column whose values are all found in a unique
column of the same name upstream, ``dbt_utils.expression_is_true`` (``>= 0``) for a
non-negative number when dbt_utils is installed. A test the model already has is never
proposed. The failure count of a test is computed with SQL of dbtproof's own that says
what the generic test says (the proposal is also run through dbt once written: the
tests do); names reach SQL only quoted, values only as literals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dbtproof.agents.profiling import ColumnFacts, kind_of
from dbtproof.safety.quoting import literal, quote

#: accepted_values is proposed for a text column of at most this many values.
MAX_ACCEPTED_VALUES = 10
DBT_UTILS_EXPRESSION = "macro.dbt_utils.test_expression_is_true"


@dataclass(frozen=True)
class DataTest:
    """One generic test on one column of a model."""

    column: str
    test: str
    #: accepted_values: ``values``; relationships: ``to``, ``field`` and the parent's
    #: relation (``relation``, not written to YAML); expression_is_true: ``expression``.
    args: dict[str, Any] = field(default_factory=dict)

    def yaml_entry(self) -> Any:
        """The entry under the column's ``data_tests:``."""
        if self.test in ("not_null", "unique"):
            return self.test
        return {self.test: {k: v for k, v in self.args.items() if k != "relation"}}

    def failures_sql(self, relation: str) -> str:
        """A query of one row, ``failures``: the rows of *relation* the test fails on."""
        column = quote(self.column)
        if self.test == "not_null":
            where = f"{column} is null"
        elif self.test == "unique":
            return (
                f"select count(*) as failures from (select {column} from {relation} where "
                f"{column} is not null group by {column} having count(*) > 1) as dbtproof_t"
            )
        elif self.test == "accepted_values":
            values = ", ".join(literal(str(v)) for v in self.args["values"])
            where = f"cast({column} as varchar) not in ({values})"
        elif self.test == "relationships":
            parent, key = self.args["relation"], quote(self.args["field"])
            return (
                f"select count(*) as failures from {relation} as dbtproof_c where "
                f"dbtproof_c.{column} is not null and not exists (select 1 from {parent} as "
                f"dbtproof_p where dbtproof_p.{key} = dbtproof_c.{column})"
            )
        else:  # dbt_utils.expression_is_true on a column: `<column> >= 0`
            where = f"not ({column} >= 0)"
        return f"select count(*) as failures from {relation} where {where}"


def existing_tests(manifest: Any, unique_id: str) -> set[tuple[str, str]]:
    """``(column, test name)`` (lower case) of the generic tests *unique_id* has."""
    found = set()
    for node in manifest.nodes.values():
        metadata = getattr(node, "test_metadata", None)
        if metadata is None or getattr(node, "attached_node", None) != unique_id:
            continue
        namespace = getattr(metadata, "namespace", None)
        name = f"{namespace}.{metadata.name}" if namespace else str(metadata.name)
        found.add((str(getattr(node, "column_name", "") or "").lower(), name))
    return found


def candidates(
    facts: list[ColumnFacts],
    pii: set[str],
    values: dict[str, list[Any]],
    has_dbt_utils: bool,
) -> list[DataTest]:
    """The tests *facts* support (relationships are found apart: :func:`relationship`);
    *values* holds the distinct values of the low-cardinality text columns."""
    found: list[DataTest] = []
    for column in facts:
        if column.rows == 0:
            continue
        if column.nulls == 0:
            found.append(DataTest(column.name, "not_null"))
        if column.distinct == column.rows - column.nulls and column.rows >= 2:
            found.append(DataTest(column.name, "unique"))
        if column.name.lower() in pii:
            continue
        if column.name in values:
            found.append(DataTest(column.name, "accepted_values", {"values": values[column.name]}))
        if (
            has_dbt_utils
            and kind_of(column.data_type) == "number"
            and column.minimum is not None
            and column.minimum >= 0
        ):
            found.append(
                DataTest(column.name, "dbt_utils.expression_is_true", {"expression": ">= 0"})
            )
    return found


def wants_values(column: ColumnFacts, pii: set[str]) -> bool:
    """Whether *column*'s distinct values are read for an accepted_values test."""
    return (
        column.name.lower() not in pii
        and kind_of(column.data_type) == "text"
        and 1 < column.distinct <= MAX_ACCEPTED_VALUES
        and column.rows >= 2 * column.distinct
    )
