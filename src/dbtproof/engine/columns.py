"""What is known of an upstream relation's columns, without building anything.

In order of trust:

* a **seed**: its CSV header, typed as ``dbt seed`` types it (``column_types``, else
  dbt's inference through the adapter) — complete;
* a **model or snapshot**: its own SQL, rendered with each of *its* upstreams replaced
  by an empty relation of the upstream's known columns, then described by the
  warehouse the way dbt's unit tests describe a model (an empty temporary table) —
  complete. Declared ``data_type``\\ s win for models with an enforced contract;
* otherwise (a **source**, or a model whose SQL cannot be described because something
  upstream is unknown): the columns declared in YAML, with their ``data_type`` where
  given — incomplete unless the model's contract is enforced.

Results are cached per node and per set of vars/env overrides for the session.
"""

from __future__ import annotations

import json
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.engine.execute import CONNECTION
from dbtproof.engine.inputs import Column, Dialect, Schema, empty_sql
from dbtproof.engine.render import RenderSpec, cte_name, render
from dbtproof.errors import DbtError

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


def _declared(node: Any) -> list[Column]:
    columns = getattr(node, "columns", None) or {}
    return [Column(str(info.name), info.data_type or None) for info in columns.values()]


def _contract_enforced(node: Any) -> bool:
    contract = getattr(node, "contract", None)
    return bool(getattr(contract, "enforced", False))


class ColumnCatalog:
    """Column knowledge of the project's nodes, worked out on demand and cached."""

    def __init__(self, config: Any, manifest: Any, dialect: Dialect) -> None:
        self.config = config
        self.manifest = manifest
        self.dialect = dialect
        self._cache: dict[tuple[str, str], Schema] = {}

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

    def _work_out(
        self, node: Any, adapter: Any, vars: dict[str, Any], env: dict[str, str]
    ) -> Schema:
        kind = compat.resource_type(node)
        declared = _declared(node)
        patch = getattr(node, "patch_path", None) or ""
        where = patch.split("://", 1)[-1] or getattr(node, "original_file_path", "") or "YAML"
        if kind == "seed":
            return self._seed(node, adapter, declared)
        if kind == "source":
            if declared:
                return Schema(declared, complete=False, origin=f"declared in {where}")
            return Schema([], complete=False, origin=f"no columns are declared in {where}")
        if _contract_enforced(node) and declared and all(c.data_type for c in declared):
            return Schema(declared, complete=True, origin=f"its enforced contract in {where}")
        inferred, reason = self._infer(node, adapter, vars, env)
        if inferred is not None:
            if declared:
                types = {c.name.lower(): c.data_type for c in declared if c.data_type}
                if _contract_enforced(node):
                    inferred = [
                        Column(c.name, types.get(c.name.lower(), c.data_type)) for c in inferred
                    ]
            return Schema(inferred, complete=True, origin="worked out from its SQL")
        if declared:
            return Schema(
                declared,
                complete=_contract_enforced(node),
                origin=f"declared in {where}",
                note=reason,
            )
        return Schema([], complete=False, origin="nothing is declared in YAML", note=reason)

    def _seed(self, node: Any, adapter: Any, declared: list[Column]) -> Schema:
        try:
            found = compat.seed_columns(self.config, node, adapter)
        except Exception as exc:  # noqa: BLE001 - an unreadable seed file: fall back to YAML
            return Schema(declared, complete=False, origin=f"seed file unreadable: {exc}")
        types = {c.name.lower(): c.data_type for c in declared if c.data_type}
        columns = [Column(name, types.get(name.lower(), data_type)) for name, data_type in found]
        return Schema(columns, complete=True, origin=f"its seed file {node.original_file_path}")

    def _infer(
        self, node: Any, adapter: Any, vars: dict[str, Any], env: dict[str, str]
    ) -> tuple[list[Column] | None, str]:
        inputs: dict[str, str] = {}
        fixtures: dict[str, str] = {}
        for uid in node.depends_on.nodes:
            upstream = self.node(uid)
            if upstream is None:
                continue
            schema = self.schema_of(upstream, adapter, vars, env)
            if not schema.columns:
                return None, f"nothing is known of the columns of {uid}"
            inputs[uid] = cte_name(upstream)
            fixtures[uid] = empty_sql(schema, self.dialect)
        spec = RenderSpec(node, inputs, vars=vars, env=env, require_inputs=False)
        try:
            rendered = render(spec, self.config, self.manifest, adapter, keep_context=True)
            sql = rendered.assemble(fixtures)
            described = compat.describe_query(rendered.context, adapter, sql)
        except DbtError as exc:
            return None, _one_line(exc)
        except Exception as exc:  # noqa: BLE001 - the warehouse refused: fall back to YAML
            compat.release_connection(adapter)
            compat.hold_connection(adapter, CONNECTION)
            return None, _one_line(exc)
        columns = [Column(name, data_type) for name, data_type in described]
        if compat.resource_type(node) == "snapshot":
            columns += self._snapshot_meta(node, rendered.context, columns)
        return columns, ""

    def _snapshot_meta(self, node: Any, context: Any, present: list[Column]) -> list[Column]:
        names = getattr(node.config, "snapshot_meta_column_names", None)
        renamed = names.to_dict() if hasattr(names, "to_dict") else dict(names or {})
        have = {c.name.lower() for c in present}
        extra = []
        for default, family in _SNAPSHOT_META:
            name = renamed.get(default) or default
            if name.lower() in have:
                continue
            macro = "type_string" if family == "string" else "type_timestamp"
            extra.append(Column(name, str(context.call_macro(macro)).strip()))
        return extra
