"""``dbtproof propose``: tests proposed from the sample, each run and scored first.

For each selected model (:func:`propose`): data tests (:mod:`~dbtproof.agents.datatests`)
and one native unit test (given: a few rows of each direct upstream, read from the
workspace; expected: what dbtproof's engine computes from them). Every proposal is run
before it is offered (``passes``), then against each mutant of the model
(:mod:`~dbtproof.agents.mutations`): a data test on the mutant's table built in the
namespace, a unit test on the mutant run by the engine; ``kills`` names the mutants it
catches, and one that catches none says so.

A proposal's ``to_dict()`` holds no credential. It holds data in two places only: an
accepted_values test lists the values of a low-cardinality, non-PII column, and a unit
test's YAML carries the rows it was given and expects, read from the (masked) sample.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from dbtproof.agents.datatests import (
    DBT_UTILS_EXPRESSION,
    DataTest,
    candidates,
    existing_tests,
    wants_values,
)
from dbtproof.agents.mutations import Mutation, mutate, mutations_of, rewriter
from dbtproof.agents.profiling import ColumnFacts, column_facts
from dbtproof.agents.workspace import Workspace
from dbtproof.engine.request import ModelRunRequest
from dbtproof.errors import DbtproofError
from dbtproof.plugin.native_unit import parse_input
from dbtproof.project.nodes import is_ephemeral, resource_type
from dbtproof.safety.guard import watch
from dbtproof.safety.quoting import literal, quote

#: Rows of each direct upstream a proposed unit test is given.
UNIT_ROWS = 5


@dataclass
class Proposal:
    """One proposed test (see the module for what ``to_dict`` may hold)."""

    id: str
    model: str
    kind: str  # "data_test" | "unit_test"
    #: The YAML it adds: the column's test entry, or the ``unit_tests:`` entry.
    yaml: str
    passes: bool
    #: The mutants it catches (names of :class:`Mutation`).
    kills: list[str]
    #: Every mutant of the model it was run against.
    mutants: list[str]
    column: str | None = None
    #: The data test (None for a unit test).
    test: DataTest | None = field(default=None, repr=False)
    #: The ``unit_tests:`` entry (None for a data test).
    unit: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def kills_nothing(self) -> bool:
        """Whether no mutant made it fail (it would not catch such a change)."""
        return not self.kills

    def summary(self) -> str:
        """One line for people."""
        what = f"{self.column}: {self.test.test}" if self.test else f"unit test {self.unit_name}"
        verdict = "passes" if self.passes else "FAILS"
        caught = (
            f"kills {len(self.kills)}/{len(self.mutants)} mutants ({', '.join(self.kills)})"
            if self.kills
            else f"kills none of {len(self.mutants)} mutants"
        )
        return f"{self.model}: {what}: {verdict}, {caught}"

    @property
    def unit_name(self) -> str | None:
        """The unit test's name (None for a data test)."""
        return None if self.unit is None else str(self.unit["name"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data (see the module)."""
        return {
            "id": self.id,
            "model": self.model,
            "kind": self.kind,
            "column": self.column,
            "test": self.test.test if self.test else None,
            "yaml": self.yaml,
            "passes": self.passes,
            "kills": list(self.kills),
            "mutants": list(self.mutants),
            "kills_nothing": self.kills_nothing,
            "summary": self.summary(),
        }


@dataclass(frozen=True)
class ProposalVerdict:
    """The outcome of running one proposal on the sample: no rows."""

    id: str
    passed: bool
    failures: int
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data."""
        return {
            "id": self.id,
            "passed": self.passed,
            "failures": self.failures,
            "summary": self.summary,
        }


def json_value(value: Any) -> Any:
    """A warehouse value as YAML/JSON writes it in a unit test (dates as ISO text)."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


def _selected(ws: Workspace, selector: str | None) -> list[Any]:
    """The root project's models *selector* (dbt's syntax) picks; all without one."""
    models = [ws.model(name) for name in ws.model_names()]
    if selector is None:
        return models
    picked = set(ws.session.commands.runner_list(selector, None, ["model"]))
    return [node for node in models if node.unique_id in picked]


def propose(ws: Workspace, selector: str | None = None) -> list[Proposal]:
    """Proposals for the models *selector* picks, each run and scored (see the module);
    kept in ``ws.proposals`` for :func:`run_proposal`."""
    ws.ensure_built()
    found: list[Proposal] = []
    for node in _selected(ws, selector):
        if is_ephemeral(node) or not getattr(node, "relation_name", None):
            continue
        found.extend(_for_model(ws, node))
    for proposal in found:
        ws.proposals[proposal.id] = proposal
    return found


def _for_model(ws: Workspace, node: Any) -> Iterator[Proposal]:
    dialect = ws.session.adapter_type
    tests = _data_tests(ws, node)
    relation = str(node.relation_name)
    passes = [_failures(ws, t, relation) == 0 for t in tests]
    compiled = ws.session.commands.compile(node.name)
    mutations = mutations_of(compiled, dialect)
    kills: list[list[str]] = [[] for _ in tests]
    viable: list[Mutation] = []
    mutant = f"{quote(str(node.database))}.{quote(str(node.schema))}.{quote('dbtproof_mutant')}"
    for mutation in mutations:
        try:
            sql = mutate(compiled, mutation, dialect)
            ws.session.connections.execute(f"drop table if exists {mutant}")
            ws.session.connections.execute(f"create table {mutant} as {sql}")
        except (ValueError, DbtproofError):
            continue  # a mutant the warehouse refuses is no change a test must catch
        viable.append(mutation)
        for index, test in enumerate(tests):
            if _failures(ws, test, mutant) > 0:
                kills[index].append(mutation.name)
    if viable:
        ws.session.connections.execute(f"drop table if exists {mutant}")
    names = [m.name for m in viable]
    for index, test in enumerate(tests):
        yield Proposal(
            id=f"{node.name}.{test.column}.{test.test}",
            model=node.name,
            kind="data_test",
            yaml=yaml.safe_dump([test.yaml_entry()], sort_keys=False),
            passes=passes[index],
            kills=kills[index],
            mutants=names,
            column=test.column,
            test=test,
        )
    unit = _unit_test(ws, node, viable)
    if unit is not None:
        yield unit


def _failures(ws: Workspace, test: DataTest, relation: str) -> int:
    return int(ws.query(test.failures_sql(relation))[0]["failures"])


def _data_tests(ws: Workspace, node: Any) -> list[DataTest]:
    """The candidate tests of *node* it does not have yet."""
    facts = column_facts(ws, node.name)
    pii = ws.pii_columns(node.name)
    relation = str(node.relation_name)
    values = {}
    for column in facts:
        if wants_values(column, pii):
            name = quote(column.name)
            rows = ws.query(
                f"select distinct {name} as v from {relation} where {name} is not null order by 1"
            )
            values[column.name] = [json_value(row["v"]) for row in rows]
    has_utils = DBT_UTILS_EXPRESSION in ws.session.manifest.macros
    found = candidates(facts, pii, values, has_utils)
    found += _relationships(ws, node, facts)
    have = existing_tests(ws.session.manifest, node.unique_id)
    return [t for t in found if (t.column.lower(), t.test) not in have]


def _upstream(ws: Workspace, node: Any) -> list[Any]:
    """*node*'s upstream models and seeds with a relation, nearest first."""
    nodes = ws.session.manifest.nodes
    order, seen, queue = [], {node.unique_id}, list(node.depends_on.nodes)
    while queue:
        unique_id = queue.pop(0)
        if unique_id in seen or unique_id not in nodes:
            continue
        seen.add(unique_id)
        parent = nodes[unique_id]
        queue.extend(getattr(getattr(parent, "depends_on", None), "nodes", None) or [])
        if resource_type(parent) in ("model", "seed") and not is_ephemeral(parent):
            order.append(parent)
    return order


def _relationships(ws: Workspace, node: Any, facts: list[ColumnFacts]) -> list[DataTest]:
    """relationships for each ``*_id`` column whose values are all in an upstream's key."""
    found = []
    parents = _upstream(ws, node)
    columns_of: dict[str, set[str]] = {}
    for column in facts:
        if not column.name.lower().endswith("id") or column.rows == column.nulls:
            continue
        for parent in parents:
            relation = str(parent.relation_name)
            if parent.unique_id not in columns_of:
                described = ws.query(f"select * from {relation} where 1 = 0").columns
                columns_of[parent.unique_id] = {c.lower() for c in described}
            if column.name.lower() not in columns_of[parent.unique_id]:
                continue
            key = quote(column.name)
            repeats = ws.query(f"select count({key}) - count(distinct {key}) as r from {relation}")[
                0
            ]["r"]
            if int(repeats) != 0:
                continue
            test = DataTest(
                column.name,
                "relationships",
                {"to": f"ref('{parent.name}')", "field": column.name, "relation": relation},
            )
            if _failures(ws, test, str(node.relation_name)) == 0:
                found.append(test)
                break
    return found


def _given_rows(ws: Workspace, parents: list[Any]) -> list[tuple[Any, list[Any]]]:
    """Up to :data:`UNIT_ROWS` rows of each parent that meet: when two parents share a
    column (an ``*id`` one first), the first one's rows ordered by it (repeats side by
    side, so aggregates see groups), the others' rows with those values and one without
    (so an outer join has a row to keep)."""
    columns = {
        p.unique_id: list(ws.query(f"select * from {p.relation_name} where 1 = 0").columns)
        for p in parents
    }
    counts: dict[str, int] = {}
    for names in columns.values():
        for name in {n.lower() for n in names}:
            counts[name] = counts.get(name, 0) + 1
    shared = [n for n, c in counts.items() if c > 1]
    key = min(shared, key=lambda n: (not n.endswith("id"), n)) if shared else None
    values: list[Any] | None = None
    chosen = []
    for parent in parents:
        relation = str(parent.relation_name)
        names = {n.lower(): n for n in columns[parent.unique_id]}
        first = f"select * from {relation} order by 1 limit {UNIT_ROWS}"
        if key is None or key not in names:
            rows = list(ws.query(first))
        elif values is None:
            column = quote(names[key])
            ordered = f"select * from {relation} order by {column}, 1 limit {UNIT_ROWS}"
            rows = list(ws.query(ordered))
            values = sorted({row[names[key]] for row in rows} - {None}, key=str)
        elif not values:
            rows = list(ws.query(first))
        else:
            column, listed = quote(names[key]), ", ".join(_literal(v) for v in values)
            rows = list(
                ws.query(
                    f"select * from {relation} where {column} in ({listed}) "
                    f"order by 1 limit {UNIT_ROWS - 1}"
                )
            ) + list(
                ws.query(
                    f"select * from {relation} where {column} not in ({listed}) order by 1 limit 1"
                )
            )
        chosen.append((parent, rows))
    return chosen


def _literal(value: Any) -> str:
    """A value read from the sample as a SQL literal (numbers as they are)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return literal(str(json_value(value)))
    return str(value)


def _input_text(parent: Any) -> str:
    if str(parent.unique_id).startswith("source."):
        return f"source('{parent.source_name}', '{parent.name}')"
    return f"ref('{parent.name}')"


def _unit_test(ws: Workspace, node: Any, mutations: list[Mutation]) -> Proposal | None:
    """A unit test of *node* from rows of its direct upstreams (None when one is
    ephemeral, or the model gives no row on them)."""
    manifest = ws.session.manifest
    given_yaml = []
    parents = set(node.depends_on.nodes)
    relocation = ws.session.relocation
    feeders = relocation.feeders if relocation is not None else {}
    # a seed read through a source it feeds (a `-- depends_on:` hint) is given once, as it
    parents -= {feeders[uid] for uid in parents if uid in feeders}
    nodes = []
    for unique_id in sorted(parents):
        parent = manifest.nodes.get(unique_id) or manifest.sources.get(unique_id)
        if parent is None or is_ephemeral(parent) or not getattr(parent, "relation_name", None):
            return None
        nodes.append(parent)
    for parent, rows in _given_rows(ws, nodes):
        data = [{k: json_value(v) for k, v in row.items()} for row in rows]
        given_yaml.append({"input": _input_text(parent), "rows": data})
    if not given_yaml:
        return None
    given = _given(given_yaml, node.name)
    actual = _run(ws, node.name, given, None)
    expect = [{k: json_value(v) for k, v in row.items()} for row in actual]
    if not expect:
        return None
    names = {str(t.name) for t in getattr(manifest, "unit_tests", {}).values()}
    name = f"{node.name}_from_sample"
    while name in names:
        name += "_"
    entry: dict[str, Any] = {"name": name, "model": node.name}
    if str(getattr(node.config, "materialized", "")) == "incremental":
        # dbt requires it; the engine ran the model as a full build
        entry["overrides"] = {"macros": {"is_incremental": False}}
    entry.update(given=given_yaml, expect={"rows": expect})
    proposal = Proposal(
        id=f"{node.name}.unit_test",
        model=node.name,
        kind="unit_test",
        yaml=yaml.safe_dump([entry], sort_keys=False),
        passes=unit_failures(ws, entry) == 0,
        kills=[],
        mutants=[m.name for m in mutations],
        unit=entry,
    )
    for mutation in mutations:
        if unit_failures(ws, entry, mutation) > 0:
            proposal.kills.append(mutation.name)
    return proposal


def _given(given_yaml: list[dict[str, Any]], model: str) -> dict[Any, Any]:
    where = f"the unit test proposed for {model}"
    return {parse_input(item["input"], where): item["rows"] for item in given_yaml}


def _run(ws: Workspace, model: str, given: dict[Any, Any], mutation: Mutation | None) -> Any:
    rewrite = None if mutation is None else rewriter(mutation, ws.session.adapter_type)
    with watch(ws.session.guard, f"dbtproof propose: run_model({model!r})"):
        return ws.session.engine.run_model(ModelRunRequest(model, given, rewrite=rewrite))


def unit_failures(ws: Workspace, entry: dict[str, Any], mutation: Mutation | None = None) -> int:
    """How many rows a unit test entry's expectation and the model's output differ by
    (the model mutated by *mutation*, if given); a mutant that fails to run counts 1."""
    model = str(entry["model"])
    given = _given(entry["given"], model)
    rewrite = None if mutation is None else rewriter(mutation, ws.session.adapter_type)
    try:
        with watch(ws.session.guard, f"dbtproof propose: unit test of {model}"):
            actual, expected = ws.session.engine.run_unit_test(
                ModelRunRequest(model, given), entry["expect"]["rows"]
            )
            if rewrite is not None:
                actual = ws.session.engine.run_model(ModelRunRequest(model, given, rewrite=rewrite))
    except (DbtproofError, ValueError):
        if mutation is None:
            raise
        return 1
    if actual == expected:
        return 0
    return max(1, abs(len(actual) - len(expected)) or len(expected))


def run_proposal(ws: Workspace, proposal_or_id: Proposal | str) -> ProposalVerdict:
    """Run one proposal (or the one of that id made in *ws*) on the sample: passed,
    the failure count and one line; no rows."""
    proposal = proposal_or_id
    if isinstance(proposal_or_id, str):
        found = ws.proposals.get(proposal_or_id)
        if found is None:
            raise DbtproofError(
                f"dbtproof: no proposal {proposal_or_id[:80]!r} in this workspace. Ask for "
                f"proposals first (propose); their ids are like 'orders.order_id.unique'."
            )
        proposal = found
    assert isinstance(proposal, Proposal)
    if proposal.test is not None:
        failures = _failures(ws, proposal.test, ws.relation(proposal.model))
    else:
        assert proposal.unit is not None
        failures = unit_failures(ws, proposal.unit)
    passed = failures == 0
    what = "passed" if passed else f"failed ({failures} failing row(s))"
    return ProposalVerdict(proposal.id, passed, failures, f"{proposal.id}: {what} on the sample")
