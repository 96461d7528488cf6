"""A singular test an agent proposes as SQL: parsed, never run before a person approves.

The agent writes one ``SELECT`` naming the project's models, seeds and snapshots by
their bare names (no Jinja); :func:`parse_singular` parses it with sqlglot, refuses
anything but exactly one ``SELECT`` that reads only those relations (or its own CTEs),
and keeps it as a template: :meth:`SingularTest.dbt_sql` writes each name as dbt's
``{{ ref('...') }}`` (the file a person reviews), :meth:`SingularTest.run_sql` as a
relation of the run namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from dbtproof.agents.arguments import JINJA
from dbtproof.agents.catalog import ToolRefusal

#: Expressions that write, run commands or read files: never in a proposed test.
_FORBIDDEN = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
    exp.Command, exp.Copy, exp.Into, exp.Set, exp.Pragma, exp.Use, exp.Transaction,
    exp.Commit, exp.Rollback, exp.Anonymous, exp.AnonymousAggFunc,
)  # fmt: skip
#: The longest SQL text a proposal may hold.
SQL_LIMIT = 5000
_PLACEHOLDER = "dbtproof_relation_{}"


@dataclass(frozen=True)
class SingularTest:
    """One proposed singular test: its name, its model, and its parsed SELECT."""

    name: str
    model: str
    relations: tuple[str, ...]
    _template: str

    def _render(self, write: Callable[[str], str]) -> str:
        text = self._template
        for index, relation in reversed(list(enumerate(self.relations))):  # 10 before 1
            text = text.replace(_PLACEHOLDER.format(index), write(relation))
        return text

    def dbt_sql(self) -> str:
        """The test as a dbt ``tests/`` file: each relation as ``{{ ref('name') }}``."""
        return self._render(lambda name: "{{ ref('" + name + "') }}") + "\n"

    def run_sql(self, relation_of: Callable[[str], str]) -> str:
        """The SELECT with each relation as *relation_of* gives it (the run namespace's)."""
        return self._render(relation_of)


def _refused(why: str) -> ToolRefusal:
    return ToolRefusal(f"refused: the test's SQL {why}; write exactly one SELECT that reads "
                       f"the project's models by their bare names, without Jinja.")  # fmt: skip


def parse_singular(
    name: str, model: str, sql: str, known: Iterable[str], dialect: str | None
) -> SingularTest:
    """Parse *sql* into a :class:`SingularTest`; refuse anything but one read-only SELECT
    over the relations *known* (bare names) and its own CTEs."""
    if not isinstance(sql, str) or len(sql) > SQL_LIMIT:
        raise _refused(f"must be a text of at most {SQL_LIMIT} characters")
    if JINJA.search(sql):
        raise _refused("holds Jinja")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError:
        raise _refused("does not parse") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Select):
        raise _refused("is not exactly one SELECT")
    tree = statements[0]
    if any(isinstance(node, _FORBIDDEN) for node in tree.walk()):
        raise _refused("writes, runs a command or calls a function dbtproof does not know")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    allowed = set(known)
    order: list[str] = []
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier) or table.db or table.catalog:
            raise _refused("reads something other than a model by its bare name")
        if table.name in ctes:
            continue
        if table.name not in allowed:
            raise _refused("reads a relation that is not one of the project's models")
        if table.name not in order:
            order.append(table.name)
        placeholder = _PLACEHOLDER.format(order.index(table.name))
        table.set("this", exp.to_identifier(placeholder))
    return SingularTest(name, model, tuple(order), tree.sql(dialect=dialect, pretty=True))
