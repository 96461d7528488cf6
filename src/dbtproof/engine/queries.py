"""Introspective queries: the SQL a model runs while it renders, answered for ``run_model``.

A model can ask the warehouse something while dbt renders it: ``run_query(...)``,
``{% call statement(...) %}``, or a macro built on them such as
``dbt_utils.get_column_values`` (which first checks with ``adapter.get_relation`` that
its relation exists). Every such query reaches ``adapter.execute``. While ``run_model``
renders a model, dbt's ``adapter`` is wrapped
(:class:`dbtproof._dbt_compat.IntrospectiveAdapter`) so that each query is answered
here, in this order:

1. by the rows ``queries=`` gives for it: a key matches a query when it is a substring
   of the query's SQL (whitespace and case aside) or a compiled regex whose ``search``
   finds it. Two keys matching one query is an error;
2. otherwise, when it reads given inputs (or the given ``this``), on their fixture rows:
   the fixtures are put in front of the query as CTEs, as in front of the model — what
   the query reads in a real run on that data;
3. otherwise as it is, in the warehouse, on the run's connection (``select 1``,
   ``current_date``, the information schema ...).

A query that reads an upstream the test did not give raises
:class:`~dbtproof.errors.MissingInputError`; one that fails raises
:class:`~dbtproof.errors.IntrospectiveQueryError`, which shows it and the ``queries=``
entry that gives its result. After the render, a key that matched no query raises
:class:`~dbtproof.errors.QueryKeyError` (a typo would otherwise pass unnoticed).
``adapter.get_relation`` of a relation standing for a given input returns it: the input
exists, as its upstream does in a real run. ``adapter.get_columns_in_relation`` of one is
answered from its fixture: the columns (and types) of the relation its given rows make,
as the adapter's own Column objects (so ``dbt_utils.star`` or ``union_relations`` render
as on the upstream's table); of an upstream the test did not give, it raises
:class:`~dbtproof.errors.MissingInputError`. Any other relation is asked of the warehouse.

This module does not import dbt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.engine.execute import reason_of
from dbtproof.engine.reading import Fixture, load_fixture
from dbtproof.engine.render import THIS, code_only, inject_ctes
from dbtproof.errors import DbtproofError, IntrospectiveQueryError, MissingInputError, QueryKeyError

#: The CTE a query reads the given ``this`` from, when ``this`` is a table (``apply=True``).
THIS_CTE = "__dbtproof__this"
_SPACE = re.compile(r"\s+")


def _fold(text: str) -> str:
    """*text* with each run of whitespace as one space, lower case (how string keys match)."""
    return _SPACE.sub(" ", text).strip().lower()


def _short(sql: str, limit: int = 160) -> str:
    text = _SPACE.sub(" ", sql).strip()
    return text if len(text) <= limit else text[: limit - 4] + " ..."


@dataclass
class GivenQuery:
    """One entry of ``queries=``: its key and the result rows it gives."""

    key: str | re.Pattern[str]
    fixture: Fixture
    #: How many queries of the current render it answered.
    matched: int = 0

    def describe(self) -> str:
        """The key as written: ``'select distinct x'`` or ``re.compile('...')``."""
        return repr(self.key)

    def matches(self, sql: str, folded: str) -> bool:
        """Whether the key matches the query *sql* (*folded*: as :func:`_fold` makes it)."""
        if isinstance(self.key, str):
            return _fold(self.key) in folded
        return self.key.search(sql) is not None


def load_queries(queries: Any, search_dirs: Sequence[Path] = ()) -> list[GivenQuery]:
    """Read ``queries=``: a mapping of SQL substring or compiled regex to result rows.

    Result rows take every form a fixture takes (rows, ``[]``, CSV text or file, a
    DataFrame, a pyarrow Table, :class:`dbtproof.Rows`).

    :raises QueryKeyError: for a key that is neither a non-empty string nor a regex.
    :raises FixtureFormatError: for result rows that cannot be read.
    """
    if queries is None:
        return []
    if not isinstance(queries, Mapping):
        raise QueryKeyError(
            "dbtproof: queries= takes a dict of a substring of a query's SQL (or a compiled "
            f"regex) to the query's result rows, got a {type(queries).__name__}."
        )
    given = []
    for key, value in queries.items():
        if not (isinstance(key, re.Pattern) or (isinstance(key, str) and key.strip())):
            raise QueryKeyError(
                "dbtproof: a queries= key must be a substring of the query's SQL or a compiled "
                f"regex (re.compile(...)), got {key!r} ({type(key).__name__})."
            )
        fixture = load_fixture(value, f"queries[{key!r}]", search_dirs)
        given.append(GivenQuery(key, fixture))
    return given


@dataclass
class _Ran:
    """A query the model ran while rendering, and how it was answered."""

    sql: str
    how: str


class Introspection:
    """Answers the queries one model runs while it renders (see the module documentation).

    The engine makes one per ``run_model`` call with the given ``queries=`` and a way to
    get each input's fixture SQL (by input id, :data:`~dbtproof.engine.render.THIS` for
    ``this``), asked for only when a query reads an input or a macro asks for its
    columns, and *describe*: a query's columns as the adapter's Column objects.
    :func:`render` tells it which relations stand for what (:meth:`start`) and when the
    render is over (:meth:`stop`).
    """

    def __init__(
        self,
        model: str,
        given: list[GivenQuery],
        fixtures: Callable[[], Mapping[str, str]],
        describe: Callable[[str], list[Any]],
    ) -> None:
        self.model = model
        self.given = given
        self._fixtures = fixtures
        self._describe = describe
        #: The queries the model ran during the render, in order.
        self.ran: list[_Ran] = []
        #: The inputs whose columns the model asked for during the render (the rendered
        #: SQL then depends on the given rows' columns).
        self.asked_columns: list[str] = []
        #: What reached dbt's adapter during this call's renders (``execute`` for a query
        #: run in the warehouse, ``get_relation``, ``create_schema`` ...): from there dbt
        #: may have run any statement. Never reset: one Introspection per call.
        self.reached_dbt: list[str] = []
        self._columns: dict[str, list[Any]] = {}
        self.active = False
        self._ctes: Mapping[str, str] = {}
        self._stand_ins: Mapping[str, Any] = {}
        self._missing: Mapping[str, str] = {}
        self._label: Callable[[str], str] = str
        self._this: Any = None

    def start(
        self,
        ctes: Mapping[str, str],
        stand_ins: Mapping[str, Any],
        missing: Mapping[str, str],
        label: Callable[[str], str],
        this: Any = None,
    ) -> None:
        """Answer queries from now on.

        *ctes*: input id -> the CTE name it renders as; *stand_ins*: name -> the relation
        a ``ref``/``source``/``this`` rendered as (filled during the render); *missing*:
        input id -> the marker an upstream that was not given renders as (likewise);
        *label*: how a message names an input id; *this*: the table standing for ``this``
        (``apply=True``), whose given rows a query reads instead.
        """
        self._ctes, self._stand_ins, self._missing = ctes, stand_ins, missing
        self._label, self._this = label, this
        self.ran = []
        self.asked_columns = []
        self._columns = {}
        for item in self.given:
            item.matched = 0
        self.active = True

    def stop(self) -> None:
        """Leave queries to dbt's adapter from now on (macros called after the render)."""
        self.active = False

    # -- called through dbt's adapter ----------------------------------------------------

    def to_dbt(self, name: str) -> None:
        """Record that the render reached dbt's adapter's *name* (see :attr:`reached_dbt`)."""
        self.reached_dbt.append(name)

    def relation(self, database: Any, schema: Any, identifier: Any) -> Any:
        """``adapter.get_relation``: the relation standing for an input, or None (ask dbt)."""
        if not self.active or identifier is None:
            return None
        if database is None and schema is None:
            found = self._stand_ins.get(identifier)
            if found is None:
                lowered = str(identifier).lower()
                found = next(
                    (r for name, r in self._stand_ins.items() if name.lower() == lowered), None
                )
            if found is not None:
                return found
        this = self._this
        if this is not None:
            wanted = (database, schema, identifier)
            parts = (this.database, this.schema, this.identifier)
            if all(str(a).lower() == str(b).lower() for a, b in zip(wanted, parts, strict=True)):
                return this
        return None

    def columns(self, relation: Any) -> list[Any] | None:
        """``adapter.get_columns_in_relation``: of a relation standing for a given input,
        the columns of its given rows (the adapter's Column objects); None for any other
        relation (dbt's adapter asks the warehouse).

        The warehouse has no relation standing for an input: asked there, it would answer
        no columns, and a macro such as ``dbt_utils.star`` would render SQL without them.

        :raises MissingInputError: for an upstream the test did not give.
        :raises IntrospectiveQueryError: if the given rows cannot be described.
        """
        if not self.active:
            return None
        name = getattr(relation, "identifier", None)
        if name not in self._stand_ins or getattr(relation, "schema", None) is not None:
            return None
        uid = next((u for u, cte in self._ctes.items() if cte == name), None)
        if uid is None:
            absent = next((u for u, marker in self._missing.items() if marker == name), None)
            what = self._label(absent) if absent is not None else name
            where = "this=rows" if absent == THIS else "given="
            raise MissingInputError(
                f"dbtproof: while rendering, {self.model} asks for the columns of {what} "
                "(adapter.get_columns_in_relation, as dbt_utils.star does), which the test did "
                f"not give. Give its rows with {where} (use [] for none): the columns are then "
                "those of the given rows."
            )
        what = self._label(uid)
        self.asked_columns.append(uid)
        if uid in self._columns:  # asked again in this render (smart_union asks twice)
            return list(self._columns[uid])
        try:
            self._columns[uid] = self._describe(self._fixtures()[uid])
            return list(self._columns[uid])
        except DbtproofError:
            raise
        except Exception as exc:
            raise IntrospectiveQueryError(
                f"dbtproof: while rendering, {self.model} asks for the columns of {what} "
                "(adapter.get_columns_in_relation), and the database could not describe its "
                f"given rows:\n{reason_of(exc)}"
            ) from exc

    def execute(self, sql: str, run: Callable[[str], Any], fetch: bool, limit: int | None) -> Any:
        """``adapter.execute``: the given result, or the query run (on the given rows)."""
        if not self.active:
            return run(sql)
        folded = _fold(sql)
        matching = [item for item in self.given if item.matches(sql, folded)]
        if len(matching) > 1:
            keys = " and ".join(item.describe() for item in matching)
            raise QueryKeyError(
                f"dbtproof: {len(matching)} keys of queries= match one query {self.model} ran "
                f"while rendering: {keys}. Make one of them more specific (or use a regex) so "
                f"that each query has one result.\n--- query SQL ---\n{sql.strip()}"
            )
        if matching:
            item = matching[0]
            item.matched += 1
            self.ran.append(_Ran(sql, f"answered by queries[{item.describe()}]"))
            fixture = item.fixture
            return compat.query_result(
                fixture.columns, fixture.rows, fixture.from_text, fetch, limit
            )
        return self._run(sql, run)

    def _run(self, sql: str, run: Callable[[str], Any]) -> Any:
        code = code_only(sql)
        absent = [uid for uid, marker in self._missing.items() if re.search(rf"\b{marker}\b", code)]
        if absent:
            labels = ", ".join(self._label(uid) for uid in absent)
            where = "this=rows" if absent == [THIS] else "given="
            raise MissingInputError(
                f"dbtproof: while rendering, {self.model} ran a query that reads {labels}, "
                f"which the test did not give. Give its rows with {where} (the query then reads "
                "them), or give the query's result in queries=, e.g. "
                f"{self._suggestion(sql)}.\n--- query SQL ---\n{sql.strip()}"
            )
        text = sql
        ctes = dict(self._ctes)
        if self._this is not None and str(self._this) in text:
            text = text.replace(str(self._this), THIS_CTE)
            ctes[THIS] = THIS_CTE
            code = code_only(text)
        read = [uid for uid, cte in ctes.items() if re.search(rf"\b{re.escape(cte)}\b", code)]
        if read:
            fixtures = self._fixtures()
            text = inject_ctes(text, [f"{ctes[uid]} as (\n{fixtures[uid]}\n)" for uid in read])
            how = "ran on the given rows of " + ", ".join(self._label(uid) for uid in read)
        else:
            how = "ran in the warehouse"
        try:
            result = run(text)
        except DbtproofError:
            raise
        except Exception as exc:
            ran = "" if text == sql else f"\n--- SQL that ran (the given rows in front) ---\n{text}"
            raise IntrospectiveQueryError(
                f"dbtproof: while rendering, {self.model} ran a query that failed "
                f"({how.removeprefix('ran ')}):\n{reason_of(exc)}\nqueries= gives no result "
                "for it. Give its result rows, keyed by a distinctive substring of its SQL (or "
                f"a compiled regex):\n    {self._suggestion(sql)}\n"
                f"--- query SQL ---\n{sql.strip()}{ran}"
            ) from exc
        self.ran.append(_Ran(sql, how))
        return result

    def _suggestion(self, sql: str) -> str:
        """``queries={"<the query's first words>": [{"<column>": <value>}, ...]}``."""
        text = _SPACE.sub(" ", sql).strip()
        if len(text) > 60:
            cut = text.rfind(" ", 0, 60)
            text = text[: cut if cut > 20 else 60]
        key = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'queries={{"{key}": [{{"<column>": <value>}}, ...]}}'

    # -- after the render ------------------------------------------------------------------

    def check_unused(self) -> None:
        """:raises QueryKeyError: if a key of ``queries=`` matched no query of the render."""
        unused = [item.describe() for item in self.given if not item.matched]
        if not unused:
            return
        if self.ran:
            listed = "\n".join(
                f"  {number}. {_short(ran.sql)}  ({ran.how})"
                for number, ran in enumerate(self.ran, start=1)
            )
            queries = f"The queries it ran:\n{listed}"
        else:
            queries = "It ran no query while rendering."
        raise QueryKeyError(
            f"dbtproof: {len(unused)} key(s) of queries= matched no query {self.model} ran "
            f"while rendering: {', '.join(unused)}. A string matches a query whose SQL contains "
            "it (whitespace and case aside), a compiled regex one its search() finds. "
            f"{queries}"
        )
