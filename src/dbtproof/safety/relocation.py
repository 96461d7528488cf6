"""Relocation: every relation the project writes is moved into the run's namespace.

Real projects say where their relations land — a ``generate_schema_name`` macro that
uses custom schemas as they are, seeds configured into a ``raw`` schema, snapshots
with ``target_schema='snapshots'``, a ``database:`` config. dbtproof does not ask
anyone to edit that. After dbt has parsed the project, :func:`relocate` rewrites
the parsed manifest (the one every later invocation reuses):

* every model, seed, snapshot, user-defined function (dbt 1.11's ``functions:``) and
  data test (whose failures may be stored) lands in the target's database, in the
  namespace: the namespace itself for the target schema, ``<namespace>_<schema>`` for
  any other schema (and ``<namespace>_<database>_<schema>`` when it named another
  database), shortened with a hash past the identifier limit;
* a source whose relation is one the project itself writes (a seed loaded into
  ``raw`` and read back as ``source('ecom', 'raw_orders')``) reads the relocated
  relation, and remembers which node feeds it; every other source stays where it
  is, read-only.

``ref()``, ``source()``, ``this`` and dbt's materializations all build relations
from these fields, so dbt itself then writes and reads only inside the namespace.

A manifest parsed against the warm parse's placeholder schema (see
:mod:`dbtproof.session.parse_cache`) first goes through :func:`from_parse_schema`, which makes
it the manifest a parse with the namespace as the target schema gives; :func:`relocate`
then treats both alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.errors import IsolationError
from dbtproof.project.nodes import WRITING, graph_nodes, is_function, resource_type
from dbtproof.safety.namespace import MAX_IDENTIFIER, belongs_to

#: Nodes whose relation dbt may create: tests too, as ``--store-failures`` can be
#: switched on per invocation.
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_]+")
_HASH_LENGTH = 8


def relocated_schema(namespace: str, schema: str, database: str | None = None) -> str:
    """Where *schema* (of another *database*, if given) goes inside *namespace*.

    The namespace and its own ``<namespace>_...`` schemas stay as they are; any other
    schema becomes ``<namespace>_<schema>`` (``<namespace>_<database>_<schema>`` for
    another database), with characters other than letters, digits and ``_`` folded to
    ``_``, and shortened with a hash of the original when longer than the identifier
    limit (63 bytes, PostgreSQL's).
    """
    if database is None and belongs_to(schema, namespace):
        return schema
    original = schema if database is None else f"{database}_{schema}"
    suffix = _NAME_SAFE.sub("_", original).strip("_") or "schema"
    name = f"{namespace}_{suffix}"
    if len(name.encode()) <= MAX_IDENTIFIER and suffix == original:
        return name
    digest = hashlib.sha256(original.encode()).hexdigest()[:_HASH_LENGTH]
    room = MAX_IDENTIFIER - len(namespace.encode()) - 2 - _HASH_LENGTH
    short = suffix.encode()[: max(room, 0)].decode(errors="ignore").strip("_")
    return f"{namespace}_{short}_{digest}" if short else f"{namespace}_{digest}"


@dataclass(frozen=True)
class Move:
    """One relation moved: where the project said it goes, and where it goes in this run."""

    unique_id: str
    resource_type: str
    database: str | None
    schema: str
    to_database: str | None
    to_schema: str

    @property
    def moved(self) -> bool:
        """True when the node's database or schema changed."""
        return (self.database, self.schema) != (self.to_database, self.to_schema)


@dataclass
class Relocation:
    """What :func:`relocate` did to a manifest."""

    namespace: str
    database: str | None
    #: Every writing node, moved or not.
    moves: list[Move] = field(default_factory=list)
    #: Sources that read a relation the project writes: source unique id -> its feeder.
    feeders: dict[str, str] = field(default_factory=dict)
    #: Sources moved with their feeders.
    source_moves: list[Move] = field(default_factory=list)
    #: Sources read where they were loaded outside the project
    #: (:mod:`dbtproof.safety.loaded_sources`).
    loaded: list[Move] = field(default_factory=list)

    def summary(self) -> list[str]:
        """One line per original schema that was moved, for the run's header."""
        by_schema: dict[tuple[str | None, str, str], dict[str, int]] = {}
        for move in [*self.moves, *self.source_moves]:
            if not move.moved or move.resource_type == "test":
                continue
            key = (move.database, move.schema, move.to_schema)
            counts = by_schema.setdefault(key, {})
            counts[move.resource_type] = counts.get(move.resource_type, 0) + 1
        lines = []
        for (database, schema, to_schema), counts in sorted(by_schema.items(), key=str):
            where = f"{database}.{schema}" if database and database != self.database else schema
            what = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in counts.items())
            lines.append(f"{where} -> {to_schema} ({what})")
        for move in self.loaded:
            name = move.unique_id.split(".", 2)[-1]
            lines.append(
                f"source {name}: read in {move.to_schema}, where it was loaded outside the "
                "project (read-only)"
            )
        return lines


def _key(database: Any, schema: Any, identifier: Any) -> tuple[str, str, str]:
    return (str(database or "").casefold(), str(schema).casefold(), str(identifier).casefold())


def _writing_nodes(manifest: Any) -> Iterable[Any]:
    for node in graph_nodes(manifest).values():
        if resource_type(node) in WRITING:
            yield node


def _is_relational(node: Any) -> bool:
    """Whether *node* writes a relation (a table or view a source could name)."""
    kind = resource_type(node)
    if kind == "test" or is_function(node):
        return False
    return getattr(node.config, "materialized", None) != "ephemeral"


def _landing_key(node: Any, database: Any, schema: Any) -> tuple[str, ...]:
    """What two nodes must not share in the namespace: a relation's name, or a function's
    (a function and a table of one name live side by side, as in the warehouse)."""
    return (*_key(database, schema, _identifier(node)), "function" if is_function(node) else "")


def _identifier(node: Any) -> str:
    return str(getattr(node, "alias", None) or getattr(node, "identifier", None) or node.name)


def relocate(
    manifest: Any, adapter: Any, config: Any, namespace: str, database: str | None
) -> Relocation:
    """Move every relation *manifest* writes into *namespace* (in *database*), in place.

    Sources the project writes follow their feeders. Raises :class:`IsolationError`
    naming the nodes when two of them would land on one relation.
    """
    plan = Relocation(namespace=namespace, database=database)
    written: dict[tuple[str, str, str], Any] = {}
    landing: dict[tuple[str, ...], list[str]] = {}
    for node in _writing_nodes(manifest):
        if getattr(node, "schema", None) is None:
            continue
        old_database, old_schema = node.database, str(node.schema)
        other_database = (
            old_database
            if old_database and database and str(old_database).casefold() != database.casefold()
            else None
        )
        new_schema = relocated_schema(namespace, old_schema, other_database)
        new_database = database if database is not None else old_database
        if _is_relational(node):
            written[_key(old_database, old_schema, _identifier(node))] = node
        if _is_relational(node) or is_function(node):
            landing.setdefault(_landing_key(node, new_database, new_schema), []).append(
                node.unique_id
            )
        node.database, node.schema = new_database, new_schema
        if getattr(node, "relation_name", None):
            node.relation_name = str(compat.node_relation(adapter, config, node))
        plan.moves.append(
            Move(
                node.unique_id,
                resource_type(node),
                old_database,
                old_schema,
                new_database,
                new_schema,
            )
        )
    clashes = {k: ids for k, ids in landing.items() if len(ids) > 1}
    if clashes:
        lines = "\n".join(
            f"  - {', '.join(sorted(ids))} would all be {'.'.join(k for k in key[:3] if k)}"
            for key, ids in clashes.items()
        )
        raise IsolationError(
            f"dbtproof: cannot move this project into the run's namespace '{namespace}': "
            f"relations that live in different databases or schemas would land on one "
            f"relation:\n{lines}\nGive these nodes distinct aliases (config `alias:`)."
        )
    for source in manifest.sources.values():
        feeder = written.get(_key(source.database, source.schema, _identifier(source)))
        if feeder is None:
            continue
        old_database, old_schema = source.database, str(source.schema)
        source.database, source.schema = feeder.database, feeder.schema
        source.identifier = _identifier(feeder)
        if getattr(source, "relation_name", None):
            source.relation_name = str(compat.node_relation(adapter, config, source))
        plan.feeders[source.unique_id] = feeder.unique_id
        plan.source_moves.append(
            Move(
                source.unique_id,
                "source",
                old_database,
                old_schema,
                source.database,
                source.schema,
            )
        )
    return plan


def move_to_database(
    manifest: Any,
    plan: Relocation,
    database: str | None,
    adapter: Any,
    config: Any,
    tests_namespace: str,
) -> None:
    """Put every relation *plan* moved (nodes, and the sources that follow their feeders)
    in *database*, in place: the run-level build's DuckDB catalog
    (:mod:`dbtproof.session.shared_build`), whose schemas are named as the namespace's
    (None: they stay in their database, PostgreSQL's run-level schemas).

    Data tests (which write only their stored failures) go to *tests_namespace* instead,
    in their own database: each worker stores its tests' failures in its own
    namespace, the run-level place being read-only to it.
    """
    for move in [*plan.moves, *plan.source_moves]:
        node = graph_nodes(manifest).get(move.unique_id) or manifest.sources.get(move.unique_id)
        if node is None:
            continue
        if move.resource_type == "test":
            # the namespace's prefix swapped: `<ns>_dbt_test__audit` -> `<worker>_dbt_test__audit`
            node.schema = tests_namespace + move.to_schema[len(plan.namespace) :]
        elif database is not None:
            node.database = database
        if getattr(node, "relation_name", None):
            node.relation_name = str(compat.node_relation(adapter, config, node))


#: Node and source attributes dbt renders from ``target.schema`` at parse time (besides
#: ``config``, ``tags`` and ``meta``, which are walked whole).
_RENDERED_FIELDS = ("database", "schema", "alias", "identifier")


def _swapped(value: Any, pairs: tuple[tuple[str, str], ...], depth: int = 0) -> Any:
    """*value* with every placeholder of *pairs* replaced in its strings (lists, dicts
    and config objects changed in place); returned as is when nothing changed."""
    if isinstance(value, str):
        for old, new in pairs:
            if old in value:
                value = value.replace(old, new)
        return value
    if depth > 6:
        return value
    if isinstance(value, list):
        for index, item in enumerate(value):
            swapped = _swapped(item, pairs, depth + 1)
            if swapped is not item:
                value[index] = swapped
    elif isinstance(value, dict):
        for key, item in value.items():
            swapped = _swapped(item, pairs, depth + 1)
            if swapped is not item:
                value[key] = swapped
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for key, item in list(vars(value).items()):
            swapped = _swapped(item, pairs, depth + 1)
            if swapped is not item:
                setattr(value, key, swapped)
    return value


def from_parse_schema(
    manifest: Any, placeholder: str, namespace: str, adapter: Any, config: Any
) -> int:
    """Turn a manifest parsed with *placeholder* as ``target.schema`` into the one a parse
    with *namespace* gives, in place; returns how many nodes and sources changed.

    dbt renders ``target.schema`` at parse time into schemas (the default
    ``generate_schema_name``: ``<target.schema>_<custom>``; a config such as
    ``schema=target.schema ~ '_x'``; a macro override), aliases, databases, sources'
    ``schema: "{{ target.schema }}"``, and other configs, tags and meta. The placeholder
    is a name no project writes, so each occurrence of it (as written, upper- or
    lower-cased) is where ``target.schema`` went: it is replaced by the namespace, and
    relation names are built anew. What a project computes from the schema other than by
    including it (its length, a comparison) is not reproduced: such a project sees the
    placeholder's outcome.
    """
    pairs = tuple(
        dict.fromkeys(
            (
                (placeholder, namespace),
                (placeholder.upper(), namespace.upper()),
                (placeholder.lower(), namespace.lower()),
            )
        )
    )
    changed = 0
    groups = (
        manifest.nodes,
        compat.functions(manifest),
        manifest.sources,
        getattr(manifest, "unit_tests", None) or {},
    )
    for group in groups:
        for node in group.values():
            moved = False
            for name in _RENDERED_FIELDS:
                value = getattr(node, name, None)
                if isinstance(value, str):
                    swapped = _swapped(value, pairs)
                    if swapped != value:
                        setattr(node, name, swapped)
                        moved = True
            for name in ("config", "tags", "meta"):
                value = getattr(node, name, None)
                if value is not None:
                    _swapped(value, pairs)
            if moved:
                changed += 1
                if getattr(node, "relation_name", None):
                    node.relation_name = str(compat.node_relation(adapter, config, node))
    return changed


#: dbt-duckdb configs that write outside DuckDB's files through something dbtproof
#: cannot redirect: a plugin's store (Excel, SQLAlchemy, ...) or the AWS Glue catalog.
_UNMOVABLE_EXTERNAL = ("plugin", "glue_register")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _located(location: str, root: Path) -> Path:
    """Where *location* (a path, absolute or not, or a URL) goes under *root*."""
    scheme = _SCHEME.match(location)
    rest = location[scheme.end() :] if scheme else location
    parts = [p for p in re.split(r"[/\\]+", rest) if p not in ("", ".", "..")]
    if len(parts) > 0 and re.fullmatch(r"[A-Za-z]:", parts[0]):  # a Windows drive
        parts[0] = parts[0][0]
    return root.joinpath(*([scheme.group(1)] if scheme else []), *parts)


def relocate_external_locations(
    manifest: Any, root: Path, spell_out_defaults: bool = False
) -> list[Move]:
    """Move the files of dbt-duckdb ``external`` models under *root*, in place.

    A model without a ``location`` config writes under the profile's ``external_root``,
    which the derived profile already points into the run's folder; with
    *spell_out_defaults* (the run-level build, whose profile is a worker's) it is given the
    location dbt-duckdb's ``external_location`` macro would give it, under *root*. A ``location``
    outside *root* (``s3://lake/x.parquet``, ``/data/x.parquet``, ``out/x.csv``) becomes
    ``<root>/s3/lake/x.parquet``, ``<root>/data/x.parquet``, ``<root>/out/x.csv``.
    Raises :class:`IsolationError` naming the models whose writes cannot be moved: a
    location dbt renders only at run time, a plugin's store, a Glue registration.
    """
    moves: list[Move] = []
    refused: list[str] = []
    resolved_root = root.resolve()
    for node in manifest.nodes.values():
        config = getattr(node, "config", None)
        if getattr(config, "materialized", None) != "external":
            continue
        where = f"{node.unique_id} ({getattr(node, 'original_file_path', '?')})"
        unmovable = [key for key in _UNMOVABLE_EXTERNAL if config.get(key)]
        if unmovable:
            refused.append(f"{where} writes through `{unmovable[0]}: {config.get(unmovable[0])}`")
            continue
        location = config.get("location")
        if not location:
            if spell_out_defaults:
                name = str(getattr(node, "alias", None) or node.name)
                if (config.get("options") or {}).get("partition_by") is None:
                    name += "." + str(config.get("format") or "parquet")
                root.mkdir(parents=True, exist_ok=True)
                config["location"] = str(root / name)
            continue
        location = str(location)
        if "{{" in location or "{%" in location:
            refused.append(f"{where} has location {location!r}, known only at run time")
            continue
        absolute = not _SCHEME.match(location) and Path(location).is_absolute()
        if absolute and Path(location).resolve().is_relative_to(resolved_root):
            continue
        new = _located(location, root)
        new.parent.mkdir(parents=True, exist_ok=True)
        config["location"] = str(new)
        moves.append(Move(node.unique_id, "external", None, location, None, str(new)))
    if refused:
        lines = "\n".join(f"  - {line}" for line in refused)
        raise IsolationError(
            f"dbtproof: refusing to run: {len(refused)} external model(s) would write files "
            f"outside this run's folder {root}, and dbtproof cannot move them there:\n{lines}\n"
            f"Give them a literal `location` (dbtproof moves it into the run's folder) or "
            f"leave it out (then it lands in external_root, which dbtproof redirects), and "
            f"write through plugins or Glue only outside tests (e.g. only when "
            f"target.name is not the test target)."
        )
    return moves
