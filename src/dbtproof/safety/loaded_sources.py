"""Sources loaded outside the project: read where dbt reads them.

A source's schema is often rendered from ``target.schema`` (``schema: "{{ target.schema
}}_raw"``), and in a run ``target.schema`` is the namespace. When a node of the project
writes the source's relation (a seed read back as a source), :mod:`dbtproof.safety.relocation`
already points the source at the relocated node. Otherwise something else loaded the
table — an EL tool, or another target of the same profile (dbt-core's own unit-test suite
seeds a source's table with ``dbt seed --target other``) — into the schema the profile's
target names, and that is where dbt reads it. :func:`read_where_loaded` points such a
source there when its relation exists there, so the run reads what dbt reads, read-only
(the guard and the run role's grants treat it as any source outside the namespace). A
source whose relation exists nowhere stays in the namespace, where a test may create it.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any

from dbtproof.safety.namespace import belongs_to
from dbtproof.safety.relocation import Move


def where_loaded(source: Any, namespace: str, target_schema: str) -> tuple[str, str] | None:
    """``(schema, identifier)`` *source* names when ``target.schema`` is *target_schema*
    (the profile's own) instead of *namespace*; None when neither was rendered from it."""
    schema, identifier = str(source.schema), str(source.identifier)
    if not belongs_to(schema, namespace) and namespace not in identifier:
        return None
    return (
        schema.replace(namespace, target_schema),
        identifier.replace(namespace, target_schema),
    )


def read_where_loaded(
    sources: dict[str, Any],
    namespace: str,
    target_schema: str,
    fed: Container[str],
    exists: Callable[[Any, str, str], bool],
    relation_name: Callable[[Any], str],
) -> list[Move]:
    """Point each of *sources* (unique id -> source, changed in place) that no project node
    feeds (*fed*), rendered from ``target.schema`` into *namespace*, at the relation the
    profile's own *target_schema* gives it, when ``exists(database, schema, identifier)``
    there and not in the namespace. Returns one :class:`Move` per source pointed."""
    moved = []
    for unique_id, source in sources.items():
        if unique_id in fed:
            continue
        loaded = where_loaded(source, namespace, target_schema)
        if loaded is None:
            continue
        schema, identifier = loaded
        if exists(source.database, str(source.schema), str(source.identifier)):
            continue  # made in the namespace (by a hook, a test): read there
        if not exists(source.database, schema, identifier):
            continue
        old_schema = str(source.schema)
        source.schema, source.identifier = schema, identifier
        if getattr(source, "relation_name", None):
            source.relation_name = relation_name(source)
        moved.append(
            Move(unique_id, "source", source.database, old_schema, source.database, schema)
        )
    return moved
