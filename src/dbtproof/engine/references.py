"""The columns a model's SQL reads from each of its inputs, found by parsing it with sqlglot.

Most projects declare in YAML only the columns they test, and a source often has no
table yet where tests run. What a model needs of such an input is what its SQL
reads: ``select id as customer_id from {{ source('ecom', 'raw_customers') }}`` needs
``id``. :func:`read_columns` parses the rendered model (inputs appear as the names of
their fixture CTEs) in the warehouse's dialect and follows every column reference to
the input it comes from, through CTEs, subqueries and ``select *``. Where the SQL's
use of a column implies a type (``subtotal / 100``, ``date_trunc('day', ordered_at)``,
``where is_active``), that type family is kept as a hint for a column no value types.

Parsing is best effort: SQL sqlglot cannot read gives no answer (None), never a
wrong one the caller must trust; callers fall back to what else is known.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

#: sqlglot's dialect for each dbt adapter type (None: sqlglot's own, close to ANSI).
_SQLGLOT_DIALECTS = MappingProxyType(
    {
        "postgres": "postgres",
        "redshift": "redshift",
        "duckdb": "duckdb",
        "snowflake": "snowflake",
        "bigquery": "bigquery",
        "spark": "spark",
        "databricks": "databricks",
        "trino": "trino",
        "athena": "athena",
        "clickhouse": "clickhouse",
        "mysql": "mysql",
        "sqlserver": "tsql",
        "fabric": "tsql",
        "oracle": "oracle",
        "teradata": "teradata",
    }
)


def sqlglot_dialect(adapter_type: str) -> str | None:
    """The sqlglot dialect for a dbt adapter type."""
    return _SQLGLOT_DIALECTS.get(adapter_type)


@dataclass
class References:
    """What a model's SQL reads from its inputs."""

    #: Input (CTE) name -> column name (as the warehouse stores it) -> type family hint.
    columns: dict[str, dict[str, str | None]] = field(default_factory=dict)
    #: Inputs whose columns reach the model's output through a ``*``.
    star_inputs: set[str] = field(default_factory=set)
    #: For each (input, column), the SQL that reads it (for messages).
    where: dict[tuple[str, str], str] = field(default_factory=dict)
    #: False when the SQL could not be parsed (nothing is known of what it reads).
    parsed: bool = True


def read_columns(
    sql: str,
    inputs: Collection[str],
    dialect: str | None,
    known: Mapping[str, Collection[str]] | None = None,
) -> References | None:
    """The columns *sql* reads from each of *inputs* (names of relations it selects from).

    *known* gives, per input, column names already known (lowercase), used to decide
    which input an unqualified column of a join comes from. Returns None when sqlglot
    cannot parse *sql*.
    """
    try:
        import sqlglot
        from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
        from sqlglot.optimizer.scope import build_scope

        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
        if len(statements) != 1:
            return None
        tree = normalize_identifiers(statements[0], dialect=dialect)
        root = build_scope(tree)
    except Exception:  # noqa: BLE001 - sqlglot cannot read it: no answer, not a wrong one
        return None
    if root is None:
        return None
    reader = _Reader({name.lower(): name for name in inputs}, known or {}, dialect)
    try:
        for scope in root.traverse():
            reader.scope(scope)
        reader.output(root)
    except Exception:  # noqa: BLE001 - an AST shape this reader does not know
        return None
    return reader.found


class _Reader:
    """Follows column references of each scope to the inputs they come from."""

    def __init__(
        self, inputs: dict[str, str], known: Mapping[str, Collection[str]], dialect: str | None
    ) -> None:
        self.inputs = inputs
        self.dialect = dialect
        self.known = {name.lower(): {c.lower() for c in cols} for name, cols in known.items()}
        self.found = References()

    # -- per scope ---------------------------------------------------------------------

    def scope(self, scope: Any) -> None:
        from sqlglot import exp

        select = scope.expression
        aliases = _aliases(select)
        for column in scope.columns:
            if isinstance(column.this, exp.Star):
                continue
            if column.find_ancestor(exp.Select) is not select:
                continue  # a subquery's reference to this scope: read with the subquery
            name = column.name.lower()
            if not column.table and name in aliases and _projection_alias(column, select) != name:
                continue  # a select alias (lateral, GROUP BY, ORDER BY), not a column
            hint = usage_family(column)
            text = _context_sql(column, self.dialect)
            if column.table:
                self._qualified(scope, column.table, column.name, hint, text)
            else:
                self._unqualified(scope, column.name, hint, text, top=True)
        for join in scope.expression.args.get("joins") or []:
            for identifier in join.args.get("using") or []:
                name = identifier.name
                for _, source in scope.selected_sources.values():
                    self._into(source, name, None, f"using ({name})")

    def output(self, root: Any) -> None:
        """Record the inputs whose columns reach the output through a ``*``."""
        self._stars(root, set())

    def _stars(self, scope: Any, seen: set[int]) -> None:
        from sqlglot import exp

        if id(scope) in seen:
            return
        seen.add(id(scope))
        for branch in _branches(scope):
            self._stars(branch, seen)
        expression = scope.expression
        if not isinstance(expression, exp.Select):
            return
        for projection in expression.expressions:
            if isinstance(projection, exp.Star):
                sources = [src for _, src in scope.selected_sources.values()]
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                source = scope.sources.get(projection.table)
                sources = [source] if source is not None else []
            else:
                continue
            for source in sources:
                input_name = self._input_of(source)
                if input_name is not None:
                    self.found.star_inputs.add(input_name)
                elif not isinstance(source, exp.Table):
                    self._stars(source, seen)

    # -- resolving a reference -----------------------------------------------------------

    def _qualified(self, scope: Any, table: str, name: str, hint: str | None, text: str) -> None:
        current = scope
        while current is not None:
            source = current.sources.get(table)
            if source is not None:
                self._into(source, name, hint, text)
                return
            current = current.parent
        # Not a relation of any enclosing scope: a struct field or a lateral alias.

    def _unqualified(
        self, scope: Any, name: str, hint: str | None, text: str, top: bool = False
    ) -> None:
        sources = [source for _, source in scope.selected_sources.values()]
        if not sources:
            return
        holders = [s for s in sources if self._provides(s, name)]
        if holders:
            for source in holders:
                self._into(source, name, hint, text)
            return
        if top and scope.parent is not None and _is_subquery(scope):
            return  # may be a correlated reference to an outer query: nothing to invent
        opened = [s for s in sources if self._open(s)]
        if len(opened) == 1:  # the one source that may have it; with several, none is sure
            self._into(opened[0], name, hint, text)

    def _into(self, source: Any, name: str, hint: str | None, text: str) -> None:
        """Follow *name* into *source*: an input records it; a subquery passes it on."""
        from sqlglot import exp

        input_name = self._input_of(source)
        if input_name is not None:
            columns = self.found.columns.setdefault(input_name, {})
            if columns.get(name) is None:
                columns[name] = hint
            self.found.where.setdefault((input_name, name), text)
            return
        if isinstance(source, exp.Table):
            return
        for branch in _branches(source):
            self._into(branch, name, hint, text)
        expression = source.expression
        if not isinstance(expression, exp.Select):
            return
        if name.lower() in {n.lower() for n in expression.named_selects if n != "*"}:
            return  # defined there; its own references are read with that scope
        for projection in expression.expressions:
            if isinstance(projection, exp.Star):
                self._unqualified(source, name, hint, text)
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                self._qualified(source, projection.table, name, hint, text)

    def _input_of(self, source: Any) -> str | None:
        from sqlglot import exp

        if isinstance(source, exp.Table) and not source.args.get("db"):
            return self.inputs.get(source.name.lower())
        return None

    def _provides(self, source: Any, name: str) -> bool:
        """Whether *source* is known to have a column *name*."""
        from sqlglot import exp

        input_name = self._input_of(source)
        if input_name is not None:
            return name.lower() in self.known.get(input_name.lower(), ())
        if isinstance(source, exp.Table):
            return False
        expression = source.expression
        if isinstance(expression, exp.Select):
            return name.lower() in {n.lower() for n in expression.named_selects if n != "*"}
        return False

    def _open(self, source: Any) -> bool:
        """Whether *source* may have columns nobody listed (an input, or a ``*`` over one)."""
        from sqlglot import exp

        if self._input_of(source) is not None:
            return True
        if isinstance(source, exp.Table):
            return False
        expression = source.expression
        if isinstance(expression, exp.Select):
            return any(
                isinstance(p, exp.Star)
                or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
                for p in expression.expressions
            )
        return bool(_branches(source))


def _aliases(select: Any) -> set[str]:
    """The output names of a ``select`` (lowercase), or nothing for other expressions."""
    from sqlglot import exp

    if not isinstance(select, exp.Select):
        return set()
    return {name.lower() for name in select.named_selects if name != "*"}


def _projection_alias(column: Any, select: Any) -> str | None:
    """The output name of the projection of *select* that *column* is part of, if any."""
    node = column
    while node is not None and node.parent is not select:
        node = node.parent
    if node is None or node.arg_key != "expressions":
        return None
    return str(node.alias_or_name).lower()


def _is_subquery(scope: Any) -> bool:
    """Whether *scope* is a subquery in an expression (one that may be correlated)."""
    kind = getattr(scope, "scope_type", None)
    return getattr(kind, "name", "") == "SUBQUERY"


def _branches(scope: Any) -> list[Any]:
    """The scopes of a ``union``/``intersect``/``except`` (named differently across sqlglot)."""
    return list(
        getattr(scope, "set_operation_scopes", None) or getattr(scope, "union_scopes", None) or []
    )


def _context_sql(column: Any, dialect: str | None, limit: int = 80) -> str:
    """The expression around *column*, as SQL, for messages."""
    from sqlglot import exp

    node = column
    parent = node.parent
    while parent is not None and not isinstance(
        parent, (exp.Select, exp.Where, exp.Having, exp.Join, exp.Group, exp.Order, exp.Alias)
    ):
        node, parent = parent, parent.parent
    try:
        text = node.sql(dialect=dialect)
    except Exception:  # noqa: BLE001
        text = column.name
    return text if len(text) <= limit else text[: limit - 3] + "..."


def usage_family(column: Any) -> str | None:
    """The type family (``number``, ``timestamp``, ``date``, ``string``, ``boolean``) the use
    of *column* implies, or None."""
    from sqlglot import exp

    node = column
    parent = node.parent
    while isinstance(parent, exp.Paren):
        node, parent = parent, parent.parent
    if parent is None:
        return None
    if isinstance(parent, (exp.Add, exp.Sub)):
        other = parent.expression if parent.this is node else parent.this
        return "timestamp" if isinstance(other, exp.Interval) else "number"
    number_parents, date_parents, string_parents = _parent_kinds()
    if isinstance(parent, number_parents):
        return "number"
    if isinstance(parent, date_parents) or _is_date_function_argument(node, parent):
        return "timestamp"
    if isinstance(parent, string_parents) and parent.this is node:
        return "string"
    if isinstance(parent, (exp.Where, exp.Having, exp.And, exp.Or, exp.Not)):
        return "boolean"
    if isinstance(parent, exp.If) and parent.this is node:
        return "boolean"
    if isinstance(parent, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        other = parent.expression if parent.this is node else parent.this
        return _value_family(other)
    if isinstance(parent, exp.Between) and parent.this is node:
        return _value_family(parent.args.get("low"))
    if isinstance(parent, exp.Coalesce) or type(parent).__name__ in ("Nvl", "IfNull", "Nullif"):
        others = [parent.this, *(parent.expressions or [])]
        others += [parent.args.get("expression")] if parent.args.get("expression") else []
        for other in others:
            if other is not node:
                family = _value_family(other)
                if family:
                    return family
    return None


def _parent_kinds() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """sqlglot's expression classes whose argument is a number, a timestamp, a string
    (looked up by name: not every sqlglot release has each)."""
    from sqlglot import exp

    def found(*names: str) -> tuple[type, ...]:
        return tuple(getattr(exp, name) for name in names if hasattr(exp, name))

    numbers = found("Mul", "Div", "Mod", "IntDiv", "Neg", "Sum", "Avg", "Round", "Abs")
    numbers += found("Floor", "Ceil", "Sqrt", "Ln", "Pow", "Stddev", "Variance")
    dates = found("DateTrunc", "TimestampTrunc", "Extract", "DateAdd", "DateSub", "DateDiff")
    dates += found("TimestampAdd", "TimestampSub", "TimestampDiff")
    # year(c), hour(c), last_day(c), dayname(c), strftime(c, '%Y'), epoch(c) ...
    dates += found("Year", "Quarter", "Month", "Week", "WeekOfYear", "Day", "DayOfMonth")
    dates += found("DayOfWeek", "DayOfWeekIso", "DayOfYear", "Hour", "Minute", "Second")
    dates += found("LastDay", "Dayname", "Monthname", "TimeToStr", "TimeToUnix")
    strings = found("Lower", "Upper", "Trim", "Length", "Substring", "Like", "ILike", "Initcap")
    return numbers, dates, strings


#: Date/time functions sqlglot reads as plain calls in some dialects (DuckDB's
#: ``date_part('year', c)``): their first argument names a part, the others are timestamps.
_PART_FIRST_FUNCTIONS = frozenset({"date_part", "datepart", "date_trunc", "datetrunc"})
#: Likewise, with every argument a timestamp.
_TIMESTAMP_FUNCTIONS = frozenset({"age", "epoch", "epoch_ms", "isodow", "isoyear", "yearweek"})


def _is_date_function_argument(node: Any, parent: Any) -> bool:
    """Whether *node* is a timestamp argument of a date/time function that sqlglot keeps as
    a plain (``Anonymous``) call."""
    from sqlglot import exp

    if not isinstance(parent, exp.Anonymous) or node.arg_key != "expressions":
        return False
    name = str(parent.name).lower()
    if name in _TIMESTAMP_FUNCTIONS:
        return True
    arguments = parent.expressions or []
    return name in _PART_FIRST_FUNCTIONS and bool(arguments) and arguments[0] is not node


def _value_family(node: Any) -> str | None:
    """The type family of a constant-like expression, or None."""
    from sqlglot import exp

    if isinstance(node, exp.Neg):
        return _value_family(node.this)
    if isinstance(node, exp.Literal):
        return "number" if node.is_number else None
    if isinstance(node, exp.Boolean):
        return "boolean"
    if isinstance(node, exp.Cast):
        from dbtproof.engine.inputs import type_family

        return type_family(node.to.sql())
    if isinstance(node, exp.CurrentDate):
        return "date"
    if isinstance(node, (exp.CurrentTimestamp,)):
        return "timestamp"
    return None
