"""Manifest facts about the project's models, for agents: names, columns, tests, lineage.

Nothing here reads data or connects: every fact comes from dbt's parsed manifest, and
a model is named only by its manifest name (:func:`model_node` refuses anything else).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dbtproof.agents.pii import PiiRule
from dbtproof.errors import DbtproofError
from dbtproof.project.nodes import graph_nodes, resource_type


class ToolRefusal(DbtproofError):
    """A tool call an agent made that dbtproof refuses (bad argument, no approval...)."""


@dataclass(frozen=True)
class ModelSummary:
    """One model in a list: its name, what it is, and how tested it is."""

    name: str
    description: str
    materialized: str
    columns: int
    data_tests: int
    unit_tests: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (no data, no credential)."""
        return asdict(self)


@dataclass(frozen=True)
class ColumnFacts:
    """A documented column: its name, description, declared type and PII flag."""

    name: str
    description: str
    data_type: str | None
    pii: bool


@dataclass(frozen=True)
class TestFacts:
    """A data test or unit test attached to a model (name, kind, column if any)."""

    name: str
    kind: str
    column: str | None = None


@dataclass(frozen=True)
class ModelFacts:
    """Everything the manifest says of one model that an agent may see."""

    name: str
    description: str
    materialized: str
    path: str
    columns: list[ColumnFacts] = field(default_factory=list)
    tests: list[TestFacts] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (no data, no credential)."""
        return asdict(self)


def project_models(manifest: Any, project: str) -> dict[str, Any]:
    """The models of the root project (not of installed packages), by name."""
    found: dict[str, Any] = {}
    for node in manifest.nodes.values():
        if resource_type(node) == "model" and node.package_name == project:
            found[node.name] = node
    return dict(sorted(found.items()))


def relation_names(manifest: Any, project: str) -> list[str]:
    """The bare names a proposed singular test may read: the root project's models,
    seeds and snapshots."""
    return sorted(
        node.name
        for node in manifest.nodes.values()
        if resource_type(node) in {"model", "seed", "snapshot"} and node.package_name == project
    )


def model_node(manifest: Any, project: str, name: str) -> Any:
    """The root project's model called *name*; anything else is refused."""
    node = project_models(manifest, project).get(name)
    if node is None:
        raise ToolRefusal(
            "refused: the model name must be exactly one of the project's models (see list_models)."
        )
    return node


def _display(node: Any) -> str:
    """How a parent or child shows: a model's or seed's name, a source as source.table."""
    if resource_type(node) == "source":
        return f"source:{node.source_name}.{node.name}"
    return f"{resource_type(node)}:{node.name}"


def _tests_of(manifest: Any, unique_id: str) -> list[TestFacts]:
    tests = []
    for node in manifest.nodes.values():
        if resource_type(node) != "test" or unique_id not in _parents_of(node):
            continue
        if getattr(node, "attached_node", None) not in (None, unique_id):
            continue
        metadata = getattr(node, "test_metadata", None)
        kind = metadata.name if metadata is not None else "singular"
        tests.append(TestFacts(node.name, kind, getattr(node, "column_name", None)))
    for test in manifest.unit_tests.values():
        if unique_id in _parents_of(test):
            tests.append(TestFacts(test.name, "unit_test"))
    return sorted(tests, key=lambda t: (t.kind, t.name))


def _parents_of(node: Any) -> list[str]:
    """The unique ids a node depends on (none for a node without node dependencies)."""
    return list(getattr(getattr(node, "depends_on", None), "nodes", None) or ())


def _lineage(manifest: Any, unique_id: str) -> tuple[list[str], list[str]]:
    """The model's parents (models, seeds, snapshots, sources) and children (models,
    seeds, snapshots), as shown names."""
    everything = {**graph_nodes(manifest), **manifest.sources}
    shown = {"model", "seed", "snapshot", "source"}
    node = everything[unique_id]
    parents = {
        _display(everything[uid])
        for uid in _parents_of(node)
        if uid in everything and resource_type(everything[uid]) in shown
    }
    children = {
        _display(other)
        for other in graph_nodes(manifest).values()
        if resource_type(other) in shown and unique_id in _parents_of(other)
    }
    return sorted(parents), sorted(children)


def summaries(manifest: Any, project: str) -> list[ModelSummary]:
    """Every model of the root project in a short form."""
    result = []
    for name, node in project_models(manifest, project).items():
        tests = _tests_of(manifest, node.unique_id)
        result.append(
            ModelSummary(
                name=name,
                description=node.description or "",
                materialized=str(node.config.materialized),
                columns=len(node.columns),
                data_tests=sum(1 for t in tests if t.kind != "unit_test"),
                unit_tests=sum(1 for t in tests if t.kind == "unit_test"),
            )
        )
    return result


def describe(manifest: Any, project: str, name: str, pii: PiiRule) -> ModelFacts:
    """The manifest's facts of model *name*: columns (PII as *pii* marks it), tests,
    parents and children."""
    node = model_node(manifest, project, name)
    parents, children = _lineage(manifest, node.unique_id)
    columns = [
        ColumnFacts(
            name=column.name,
            description=column.description or "",
            data_type=column.data_type,
            pii=pii.marks(column),
        )
        for column in node.columns.values()
    ]
    return ModelFacts(
        name=node.name,
        description=node.description or "",
        materialized=str(node.config.materialized),
        path=node.original_file_path,
        columns=columns,
        tests=_tests_of(manifest, node.unique_id),
        parents=parents,
        children=children,
    )
