"""The project's DAG for the run's report: each model, seed, snapshot and source, what it
depends on, and the dbt tests attached to it (read from dbt's manifest, no dbt import)."""

from __future__ import annotations

from typing import Any

#: Node types drawn in the report.
DRAWN = ("model", "seed", "snapshot", "source")


def _type(entity: Any) -> str:
    kind = getattr(entity, "resource_type", "")
    return str(getattr(kind, "value", kind))


def _parents(entity: Any) -> list[str]:
    return list(getattr(getattr(entity, "depends_on", None), "nodes", None) or [])


def project_dag(manifest: Any) -> dict[str, dict[str, Any]]:
    """``{unique_id: {name, type, parents, tests}}`` of every drawn node of *manifest*;
    ``tests`` holds the unique ids of the data tests and unit tests attached to it."""
    dag: dict[str, dict[str, Any]] = {}
    for collection in ("nodes", "sources"):
        for unique_id, entity in (getattr(manifest, collection, None) or {}).items():
            if _type(entity) in DRAWN:
                dag[unique_id] = {"name": entity.name, "type": _type(entity), "tests": []}
    for unique_id, entity in dag.items():
        source = manifest.nodes.get(unique_id) if unique_id in manifest.nodes else None
        entity["parents"] = [p for p in _parents(source) if p in dag] if source else []
    tests = [
        *(n for n in manifest.nodes.values() if _type(n) == "test"),
        *(getattr(manifest, "unit_tests", None) or {}).values(),
    ]
    for test in tests:
        attached = getattr(test, "attached_node", None)
        parents = [p for p in _parents(test) if p in dag]
        for target in [attached] if attached in dag else parents[-1:]:
            dag[target]["tests"].append(test.unique_id)
    return dag
