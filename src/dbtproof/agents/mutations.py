"""Simple mutants of a model's SQL (sqlglot): does a proposed test notice a change?

Each mutation changes one place of the statement: a filter dropped (``WHERE`` /
``HAVING``), a join's type changed (left to inner, inner to left), an aggregate swapped
(``sum``/``avg`` to ``max``, ``min`` and ``max`` to each other). Places are counted in
the order sqlglot walks the statement, skipping any inside a CTE whose name starts with
``__dbtproof__`` (the fixtures dbtproof's engine puts in front of a model's SQL), so the
same mutation names the same place in the compiled model and in the statement a unit
test runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import sqlglot
from sqlglot import exp

#: Fixture CTEs of dbtproof's engine (:func:`dbtproof.engine.render.cte_name`).
FIXTURE_CTE_PREFIX = "__dbtproof__"
_SWAPS: Mapping[type[exp.Expression], type[exp.Expression]] = MappingProxyType(
    {exp.Sum: exp.Max, exp.Avg: exp.Max, exp.Min: exp.Max, exp.Max: exp.Min}
)


@dataclass(frozen=True)
class Mutation:
    """One mutant: a name (``drop_filter_1``) and what it changes."""

    name: str
    description: str


def _in_fixture(node: exp.Expression) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.CTE) and parent.alias.startswith(FIXTURE_CTE_PREFIX):
            return True
        parent = parent.parent
    return False


def _sites(tree: exp.Expression) -> Iterator[tuple[str, str, exp.Expression]]:
    """``(kind, description, node)`` for every place a mutation can change."""
    for node in tree.walk(bfs=False):
        if _in_fixture(node):
            continue
        if isinstance(node, (exp.Where, exp.Having)):
            yield "drop_filter", f"{node.key} dropped: {node.this.sql()[:60]}", node
        elif isinstance(node, exp.Join) and node.kind.upper() in ("", "INNER", "LEFT"):
            side = (node.side or "").upper()
            if side == "LEFT":
                yield "join_type", "left join made inner", node
            elif not side and node.args.get("on") is not None:
                yield "join_type", "inner join made left", node
        elif type(node) in _SWAPS:
            to = _SWAPS[type(node)].key
            yield "aggregate_swap", f"{node.key}() swapped for {to}()", node


def _parse(sql: str, dialect: str) -> exp.Expression | None:
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return None
    return tree


def mutations_of(sql: str, dialect: str) -> list[Mutation]:
    """The mutations of *sql* (none when sqlglot cannot read it)."""
    tree = _parse(sql, dialect)
    if tree is None:
        return []
    counts: dict[str, int] = {}
    found = []
    for kind, description, _ in _sites(tree):
        counts[kind] = counts.get(kind, 0) + 1
        found.append(Mutation(f"{kind}_{counts[kind]}", description))
    return found


def mutate(sql: str, mutation: Mutation, dialect: str) -> str:
    """*sql* with *mutation* applied; a :class:`ValueError` when it names no place."""
    tree = _parse(sql, dialect)
    if tree is None:
        raise ValueError("sqlglot cannot read the statement")
    counts: dict[str, int] = {}
    for kind, _, node in list(_sites(tree)):
        counts[kind] = counts.get(kind, 0) + 1
        if f"{kind}_{counts[kind]}" != mutation.name:
            continue
        _change(kind, node)
        return tree.sql(dialect=dialect)
    raise ValueError(f"no place {mutation.name} in the statement")


def _change(kind: str, node: exp.Expression) -> None:
    if kind == "drop_filter":
        node.pop()
    elif kind == "join_type":
        if (node.side or "").upper() == "LEFT":
            node.set("side", None)
        else:
            node.set("side", "LEFT")
        node.set("kind", None)
    else:
        swapped = _SWAPS[type(node)](this=node.this)
        node.replace(swapped)


def rewriter(mutation: Mutation, dialect: str) -> Callable[[str], str]:
    """A function that applies *mutation* to a statement (for the engine's ``rewrite``)."""
    return lambda sql: mutate(sql, mutation, dialect)
