"""What is known of an upstream relation's columns, without building anything.

Knowledge is merged from every place that has some, most trusted first:

* an **enforced contract** (its declared ``data_type``\\ s) — complete;
* a **seed**: its CSV header, typed as ``dbt seed`` types it (``column_types``, else
  dbt's inference through the adapter) — complete;
* a **source**: its table in the warehouse when it exists (describing it is a read);
  else the seed that loads that table, when the project has one — complete;
* a **model or snapshot**: its own SQL, rendered with each of *its* upstreams replaced
  by an empty relation of what is known of the upstream's columns (recursively, down
  to seeds and sources; a macro asking for an upstream's columns, as ``dbt_utils.star``
  does, gets that relation's), then described by the warehouse the way dbt's unit tests
  describe a model (an empty temporary table) — complete unless a ``select *`` passes
  through columns of an upstream that are not all known;
* the columns declared in **YAML**, with their ``data_type`` where given — a subset;
* the columns the **reading model's SQL** uses on the input (parsed with sqlglot, see
  :mod:`dbtproof.engine.references`), each with the type family its use implies —
  added per reading model by :meth:`ColumnCatalog.as_read_by`.

Each column says where its type came from. Results are cached per node and per set of
vars/env overrides for the session; ``dbtproof watch`` keeps them from one round to the
next for the nodes a save did not affect (:meth:`ColumnCatalog.known`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.engine.execute import CONNECTION
from dbtproof.engine.inputs import Column, Dialect, Schema, empty_sql
from dbtproof.engine.queries import Introspection
from dbtproof.engine.references import References, read_columns, sqlglot_dialect
from dbtproof.engine.render import Rendered, RenderSpec, cte_name, label_of, render
from dbtproof.errors import DbtproofError
from dbtproof.project.nodes import resource_type

_SNAPSHOT_META = (
    ("dbt_scd_id", "string"),
    ("dbt_updated_at", "timestamp"),
    ("dbt_valid_from", "timestamp"),
    ("dbt_valid_to", "timestamp"),
)


_NO_OVERRIDES = json.dumps([{}, {}])


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(part.strip() for part in str(exc).split("\n") if part.strip())
    text = text.removeprefix("Runtime Error ").removeprefix("dbtproof: ")
    return (text[:limit] + " ...") if len(text) > limit else (text or type(exc).__name__)


def _where(node: Any) -> str:
    patch = getattr(node, "patch_path", None) or ""
    return patch.split("://", 1)[-1] or getattr(node, "original_file_path", "") or "YAML"


def _declared(node: Any) -> list[Column]:
    columns = getattr(node, "columns", None) or {}
    where = _where(node)
    found = []
    for info in columns.values():
        quoted = bool(getattr(info, "quote", False))
        origin = f"declared in {where}" if info.data_type else f"named in {where}"
        found.append(Column(str(info.name), info.data_type or None, origin, exact=quoted))
    return found


def _contract_enforced(node: Any) -> bool:
    contract = getattr(node, "contract", None)
    return bool(getattr(contract, "enforced", False))


def _aliases_translated(columns: list[Column], node: Any, adapter: Any) -> list[Column]:
    """*columns* with each declared type an alias of the adapter's (``string``) translated
    as dbt translates a contract's types (unless the contract sets ``alias_types: false``)."""
    contract = getattr(node, "contract", None)
    if getattr(contract, "alias_types", True) is False:
        return columns
    return [
        replace(c, data_type=compat.translate_type(adapter, c.data_type)) if c.data_type else c
        for c in columns
    ]


def _with_types(columns: list[Column], declared: list[Column]) -> list[Column]:
    """*columns*, each untyped one typed as *declared* says where it does."""
    types = {c.name.lower(): c for c in declared if c.data_type}
    merged = []
    for column in columns:
        known = types.get(column.name.lower())
        if column.data_type is None and known is not None:
            column = Column(column.name, known.data_type, known.origin, column.exact)
        merged.append(column)
    return merged


class ColumnCatalog:
    """Column knowledge of the project's nodes, worked out on demand and cached."""

    def __init__(
        self,
        config: Any,
        manifest: Any,
        dialect: Dialect,
        adapter_type: str,
        caches: compat.RenderCaches,
        known: Mapping[tuple[str, str], Schema] | None = None,
    ) -> None:
        self.config = config
        self.manifest = manifest
        self.dialect = dialect
        #: The engine's render caches, used for every model this renders.
        self.caches = caches
        self.sqlglot_dialect = sqlglot_dialect(adapter_type)
        self._cache: dict[tuple[str, str], Schema] = dict(known or {})
        self._seeds_by_relation: dict[tuple[str, str], list[Any]] | None = None

    def known(self, except_for: Collection[str]) -> dict[tuple[str, str], Schema]:
        """What was worked out so far (keyed by node id and overrides), but for the nodes
        *except_for*: to start another catalog with (see ``known``)."""
        return {key: schema for key, schema in self._cache.items() if key[0] not in except_for}

    def node(self, unique_id: str) -> Any:
        """The manifest node (or source) with *unique_id*, or None."""
        return self.manifest.nodes.get(unique_id) or self.manifest.sources.get(unique_id)

    def schema_of(
        self,
        node: Any,
        adapter: Any,
        vars: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> Schema:
        """What is known of *node*'s columns (the adapter's connection must be open)."""
        overrides = (
            json.dumps([vars or {}, env or {}], sort_keys=True, default=str)
            if vars or env
            else _NO_OVERRIDES
        )
        key = (node.unique_id, overrides)
        if key not in self._cache:
            self._cache[key] = self._work_out(node, adapter, vars or {}, env or {})
        return self._cache[key]

    def references(
        self, rendered: Rendered, inputs: Mapping[str, str], schemas: Mapping[str, Schema]
    ) -> References | None:
        """What the rendered SQL reads of each input whose columns are not all known.

        *inputs* maps an input id to its CTE name; *schemas* what is known of each.
        Cached on *rendered* (None when every input is complete or sqlglot cannot parse).
        """
        if all(
            schemas[uid].complete and all(c.data_type for c in schemas[uid].columns)
            for uid in inputs
            if uid in schemas
        ):
            return None
        if rendered.references is None:
            known = {inputs[uid]: [c.name for c in schemas[uid].columns] for uid in schemas}
            found = read_columns(rendered.sql, list(inputs.values()), self.sqlglot_dialect, known)
            rendered.references = found if found is not None else References(parsed=False)
        return rendered.references

    def as_read_by(
        self, schema: Schema, references: References | None, cte: str, reader: str
    ) -> Schema:
        """*schema* with the columns *reader*'s SQL reads from it (when it is incomplete),
        and a type hint for each untyped column the SQL uses as a type."""
        if references is None:
            return schema
        used = references.columns.get(cte) or {}
        if not used:
            return schema
        columns = list(schema.columns)
        index = {c.name.lower(): i for i, c in enumerate(columns)}
        for name, family in used.items():
            sql = references.where.get((cte, name), name)
            at = index.get(name.lower())
            if at is None and schema.complete:
                continue  # the database will say the column does not exist, as it should
            if at is None:
                origin = f"read by {reader} in `{sql}`"
                if family:
                    origin += f", used as {family}"
                columns.append(Column(name, None, origin, exact=True, hint=family))
                index[name.lower()] = len(columns) - 1
            elif family and columns[at].data_type is None and columns[at].hint is None:
                old = columns[at]
                origin = f"{old.origin}; used as {family} by {reader} in `{sql}`"
                columns[at] = Column(old.name, None, origin, old.exact, hint=family)
        read_by = ""
        if references.parsed and cte not in references.star_inputs:
            read_by = reader  # every column it reads is in the list now
        return Schema(
            columns,
            complete=schema.complete,
            origin=schema.origin,
            note=schema.note,
            read_by=read_by,
        )

    # -- working it out ------------------------------------------------------------------

    def _work_out(
        self, node: Any, adapter: Any, vars: dict[str, Any], env: dict[str, str]
    ) -> Schema:
        kind = resource_type(node)
        declared = _aliases_translated(_declared(node), node, adapter)
        where = _where(node)
        if kind == "seed":
            return self._seed(node, adapter, declared)
        if kind == "source":
            return self._source(node, adapter, declared, where)
        if _contract_enforced(node) and declared and all(c.data_type for c in declared):
            return Schema(declared, complete=True, origin=f"its enforced contract in {where}")
        inferred, complete, reason = self._infer(node, adapter, vars, env)
        if inferred is not None:
            if _contract_enforced(node):
                types = {c.name.lower(): c for c in declared if c.data_type}
                inferred = [types.get(c.name.lower(), c) for c in inferred]
            if not complete:
                inferred = _with_types(inferred, declared)
            return Schema(
                inferred,
                complete=complete,
                origin="worked out from its SQL"
                + ("" if complete else " (a `select *` passes on columns not all known)"),
                note=reason,
            )
        existing = self._in_warehouse(node, adapter)
        if existing:
            return Schema(existing, complete=True, origin=existing[0].origin, note=reason)
        if declared:
            return Schema(
                declared,
                complete=_contract_enforced(node),
                origin=f"declared in {where}",
                note=reason,
            )
        return Schema([], complete=False, origin="nothing is declared in YAML", note=reason)

    def _source(self, node: Any, adapter: Any, declared: list[Column], where: str) -> Schema:
        existing = self._in_warehouse(node, adapter)
        if existing:
            return Schema(existing, complete=True, origin=existing[0].origin)
        seed = self._seed_loading(node)
        if seed is not None:
            schema = self._seed(seed, adapter, _declared(seed))
            if schema.complete:
                origin = f"{schema.origin}, which loads its table"
                return Schema(schema.columns, complete=True, origin=origin)
        if declared:
            return Schema(declared, complete=False, origin=f"declared in {where}")
        return Schema([], complete=False, origin=f"no columns are declared in {where}")

    def _in_warehouse(self, node: Any, adapter: Any) -> list[Column]:
        """The columns of *node*'s relation in the warehouse, if it exists (a read only)."""
        try:
            relation = compat.node_relation(adapter, self.config, node)
            found = compat.columns_in_relation(adapter, relation)
        except Exception:  # noqa: BLE001 - no such relation, or no right to read it
            compat.release_connection(adapter)
            compat.hold_connection(adapter, CONNECTION)
            return []
        origin = f"the relation {relation} in the warehouse"
        return [Column(name, data_type, origin) for name, data_type in found]

    def _seed_loading(self, source: Any) -> Any:
        """The seed whose table is *source*'s table (same name and schema), if exactly one.

        A disabled seed counts (projects often load their raw data from seeds only when a
        var says so): its file still says what the table holds.
        """
        if self._seeds_by_relation is None:
            found: dict[tuple[str, str], list[Any]] = {}
            candidates = [*self.manifest.nodes.values(), *compat.disabled_nodes(self.manifest)]
            for node in candidates:
                if resource_type(node) != "seed":
                    continue
                identifier = str(getattr(node, "alias", None) or node.name).lower()
                schemas = {str(node.schema).lower()}
                custom = node.config.get("schema") if hasattr(node.config, "get") else None
                if custom:
                    schemas.add(str(custom).lower())
                for schema in schemas:
                    found.setdefault((schema, identifier), []).append(node)
            self._seeds_by_relation = found
        identifier = str(getattr(source, "identifier", None) or source.name).lower()
        seeds = self._seeds_by_relation.get((str(source.schema).lower(), identifier), [])
        return seeds[0] if len({s.unique_id for s in seeds}) == 1 else None

    def _seed(self, node: Any, adapter: Any, declared: list[Column]) -> Schema:
        try:
            found = compat.seed_columns(self.config, node, adapter)
        except Exception as exc:  # noqa: BLE001 - an unreadable seed file: fall back to YAML
            return Schema(declared, complete=False, origin=f"seed file unreadable: {exc}")
        types = {c.name.lower(): c.data_type for c in declared if c.data_type}
        origin = f"its seed file {node.original_file_path}"
        exact = compat.seed_columns_quoted(adapter, node)
        columns = [
            Column(name, types.get(name.lower(), data_type), origin, exact=exact)
            for name, data_type in found
        ]
        return Schema(columns, complete=True, origin=origin)

    def _infer(
        self, node: Any, adapter: Any, vars: dict[str, Any], env: dict[str, str]
    ) -> tuple[list[Column] | None, bool, str]:
        """*node*'s columns, described on empty relations of its upstreams' known columns."""
        ctes: dict[str, str] = {}
        schemas: dict[str, Schema] = {}
        for uid in node.depends_on.nodes:
            upstream = self.node(uid)
            if upstream is None:
                continue
            ctes[uid] = cte_name(upstream)
            schemas[uid] = self.schema_of(upstream, adapter, vars, env)
        # A macro asking for an upstream's columns (dbt_utils.star) gets those of its
        # empty relation; a query reading one runs on it.
        empties = {uid: empty_sql(schemas[uid], self.dialect) for uid in ctes}
        answers = Introspection(
            node.name, [], lambda: empties, partial(self._query_columns, node, adapter)
        )
        spec = RenderSpec(node, ctes, vars=vars, env=env, require_inputs=False, queries=answers)
        rendered: Rendered | None = None
        try:
            rendered = render(
                spec, self.config, self.manifest, adapter, self.caches, keep_context=True
            )
            references = self.references(rendered, ctes, schemas)
            fixtures = {}
            complete = True
            for uid, cte in ctes.items():
                schema = self.as_read_by(schemas[uid], references, cte, label_of(node))
                fixtures[uid] = empty_sql(schema, self.dialect)
                if not schema.complete and (
                    references is None
                    or not references.parsed
                    or cte in references.star_inputs
                    or uid in answers.asked_columns  # a column list of what is known only
                ):
                    complete = False
            sql = rendered.assemble(fixtures)
            described = compat.describe_query(rendered.context, adapter, sql)
            columns = self.described(node, described)
            if resource_type(node) == "snapshot":
                columns += self._snapshot_meta(node, columns, rendered.context)
        except DbtproofError as exc:
            compat.release_connection(adapter)
            compat.hold_connection(adapter, CONNECTION)
            return None, False, _one_line(exc)
        except Exception as exc:  # noqa: BLE001 - the warehouse refused: fall back to YAML
            compat.release_connection(adapter)
            compat.hold_connection(adapter, CONNECTION)
            return None, False, _one_line(exc)
        finally:
            if rendered is not None and rendered.context is not None:
                rendered.context.close()
                rendered.context = None
        return columns, complete, ""

    def _query_columns(self, node: Any, adapter: Any, sql: str) -> list[Any]:
        """The columns *sql* returns, as the adapter's Column objects."""
        context = compat.RenderContext(node, self.config, self.manifest, self.caches, lazy=True)
        try:
            return compat.query_columns(context, adapter, sql)
        finally:
            context.close()

    def described(self, node: Any, described: list[tuple[str, str]]) -> list[Column]:
        """Described columns; one that passes on a column nothing typed stays untyped."""
        origin = f"worked out from the SQL of {label_of(node)}"
        unknown = f"passed on by {label_of(node)} from an upstream column nothing types"
        return [
            Column(name, None, unknown)
            if self.dialect.is_unknown(data_type)
            else Column(name, data_type, origin)
            for name, data_type in described
        ]

    def _snapshot_meta(self, node: Any, present: list[Column], context: Any) -> list[Column]:
        names = getattr(node.config, "snapshot_meta_column_names", None)
        renamed = names.to_dict() if hasattr(names, "to_dict") else dict(names or {})
        have = {c.name.lower() for c in present}
        extra = []
        for default, family in _SNAPSHOT_META:
            name = renamed.get(default) or default
            if name.lower() in have:
                continue
            macro = "type_string" if family == "string" else "type_timestamp"
            data_type = str(context.call_macro(macro)).strip()
            extra.append(Column(name, data_type, "dbt's snapshot columns"))
        return extra
