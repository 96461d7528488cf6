"""The orchestration behind ``dbt.run_model``: one :class:`ModelEngine` per dbt session.

For each call: find the model, match each ``given`` key to an upstream the model
references, read the fixtures, render the model (cached per distinct set of
overrides; the queries it runs while rendering are answered by
:mod:`~dbtproof.engine.queries`), type each fixture against what is known of its
upstream's columns, assemble one statement (fixtures as CTEs in front of the model's
SQL) and run it on the adapter's connection — or, with ``apply=True``, apply the
model's incremental strategy to the given ``this``.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbtproof import _dbt_compat as compat
from dbtproof.engine import incremental
from dbtproof.engine.columns import ColumnCatalog
from dbtproof.engine.execute import CONNECTION, find_bad_value, run_select
from dbtproof.engine.inputs import Dialect, Fixture, Schema, fixture_sql, load_fixture
from dbtproof.engine.keys import Ref, Source, as_key
from dbtproof.engine.queries import Introspection, load_queries
from dbtproof.engine.render import THIS, Rendered, RenderSpec, cte_name, label_of, render
from dbtproof.errors import (
    DbtError,
    FixtureFormatError,
    FixtureValueError,
    ModelSQLError,
    ModelTestError,
    UnexpectedInputError,
    UnknownModelError,
)

if TYPE_CHECKING:
    from dbtproof.rows import OrderedRows, Rows
    from dbtproof.session import DbtSession

_THIS_CTE = "__dbtproof__this"


@dataclass
class _Input:
    """One given input: its upstream node, its fixture and the CTE standing for it."""

    uid: str
    node: Any
    label: str
    fixture: Fixture
    cte: str


class ModelEngine:
    """Runs models on fixture rows for one :class:`~dbtproof.session.DbtSession`."""

    def __init__(self, session: DbtSession) -> None:
        self.session = session
        self._renders: dict[Any, Rendered] = {}
        self._catalog: ColumnCatalog | None = None
        self._dialect: Dialect | None = None
        self._schema_ready = False
        self._manifest: Any = None

    # -- entry point -------------------------------------------------------------------

    def run_model(
        self,
        model: str | Ref,
        given: Mapping[Any, Any] | None = None,
        *,
        vars: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        macros: Mapping[str, Any] | None = None,
        is_incremental: bool = False,
        this: Any = None,
        apply: bool = False,
        ordered: bool = False,
        queries: Mapping[Any, Any] | None = None,
        search_dirs: Sequence[Path] = (),
    ) -> Rows | OrderedRows:
        """Run *model* on the *given* fixtures; see :meth:`DbtSession.run_model`."""
        manifest = self.session.manifest
        if manifest is not self._manifest:
            self._renders.clear()
            self._catalog = None
            self._manifest = manifest
        node = self._find_model(model)
        vars_ = dict(vars or {})
        env_ = {str(k): str(v) for k, v in (env or {}).items()}
        macros_ = dict(macros or {})
        if apply:
            self._check_apply(node, this)
            is_incremental = True
        inputs = self._inputs(node, given or {}, search_dirs)
        this_input = None
        if this is not None:
            label = f"this ({node.name} as it stood before the run)"
            this_input = _Input(THIS, node, label, load_fixture(this, "this", search_dirs), "")
        given_queries = load_queries(queries, search_dirs)

        adapter = self.session._adapter()
        compat.hold_connection(adapter, CONNECTION)
        try:
            # Typed once, when a query the model runs while rendering reads a fixture, or after.
            fixture_sql = functools.cache(
                functools.partial(self._fixture_sql, node, adapter, inputs, this_input, vars_, env_)
            )
            answers = Introspection(node.name, given_queries, lambda: fixture_sql()[0])
            if apply:
                return self._apply(
                    node, adapter, inputs, this_input, vars_, env_, macros_, answers, fixture_sql
                )
            rendered = self._render(
                node, adapter, inputs, this_input, is_incremental, vars_, env_, macros_, answers
            )
            fixtures, typed = fixture_sql()
            sql = rendered.assemble(fixtures)
            try:
                rows = run_select(adapter, sql, f"model {node.name}")
            except ModelSQLError as exc:
                compat.hold_connection(adapter, CONNECTION)
                find_bad_value(adapter, self._rows_sql(typed))
                raise self._with_hint(exc, inputs, adapter, vars_, env_) from exc.__cause__
        except BaseException:
            compat.release_connection(adapter)
            raise
        return rows.ordered if ordered else rows

    # -- the model and its inputs ------------------------------------------------------

    def _find_model(self, model: str | Ref) -> Any:
        manifest = self.session.manifest
        key = as_key(model) if isinstance(model, (str, Ref)) else None
        if not isinstance(key, Ref):
            raise UnknownModelError(
                f"dbtproof: run_model() takes a model name or ref('name'), got {model!r}."
            )
        project = self.session._config.project_name
        node = compat.lookup_ref(manifest, key.name, key.package, key.version, project)
        if node is not None and compat.resource_type(node) == "model":
            return node
        models = sorted(
            {n.name for n in manifest.nodes.values() if compat.resource_type(n) == "model"}
        )
        close = difflib.get_close_matches(key.name, models, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        what = (
            f"a {compat.resource_type(node)}, not a model"
            if node is not None
            else "not a model of the project (nor of its packages)"
        )
        raise UnknownModelError(
            f"dbtproof: run_model({str(key)[4:-1]}): '{key.name}' is {what}.{hint} "
            f"Models of project '{project}': {', '.join(models[:30])}"
            + (" ..." if len(models) > 30 else "")
        )

    def _references(self, node: Any) -> list[str]:
        manifest = self.session.manifest
        labels = []
        for uid in node.depends_on.nodes:
            upstream = manifest.nodes.get(uid) or manifest.sources.get(uid)
            if upstream is not None:
                labels.append(label_of(upstream))
        return labels

    def _inputs(
        self, node: Any, given: Mapping[Any, Any], search_dirs: Sequence[Path]
    ) -> dict[str, _Input]:
        if not isinstance(given, Mapping):
            raise FixtureFormatError(
                f"dbtproof: given= takes a dict of ref(...)/source(...) to fixture data, got a "
                f"{type(given).__name__}."
            )
        manifest = self.session.manifest
        project = self.session._config.project_name
        inputs: dict[str, _Input] = {}
        for raw_key, value in given.items():
            key = as_key(raw_key)
            if isinstance(key, Source):
                target = compat.resolve_source(
                    manifest, node, key.source_name, key.table_name, project
                )
            else:
                target = compat.resolve_ref(
                    manifest, node, key.name, key.package, key.version, project
                )
            if target is None or target.unique_id not in node.depends_on.nodes:
                references = ", ".join(self._references(node)) or "nothing"
                what = (
                    "which is not a node of the project"
                    if target is None
                    else f"which {node.name} does not reference"
                )
                raise UnexpectedInputError(
                    f"dbtproof: given= has {key}, {what}. {node.name} "
                    f"({node.original_file_path}) references: {references}. Give fixtures for "
                    "those only."
                )
            uid = target.unique_id
            label = label_of(target)
            if uid in inputs:
                raise UnexpectedInputError(
                    f"dbtproof: given= names {label} twice (as {inputs[uid].label} and {key})."
                )
            fixture = load_fixture(value, str(key), search_dirs)
            inputs[uid] = _Input(uid, target, str(key), fixture, cte_name(target))
        return inputs

    def _check_apply(self, node: Any, this: Any) -> None:
        materialized = node.config.get("materialized")
        if materialized != "incremental":
            raise ModelTestError(
                f"dbtproof: apply=True applies an incremental strategy, but {node.name} is "
                f"materialized as {materialized!r}. Leave apply out for non-incremental models."
            )
        if this is None:
            raise ModelTestError(
                f"dbtproof: apply=True needs this=rows: the table {node.name} as it stood before "
                "the run (this=[] for an empty one)."
            )

    # -- rendering ---------------------------------------------------------------------

    def _dialect_for(self, adapter: Any, context: Any) -> Dialect:
        if self._dialect is None:
            try:
                template = str(context.call_macro("cast", "__DBTPROOF_V__", "__DBTPROOF_T__"))
                template = template.strip()
                if "__DBTPROOF_V__" not in template or "__DBTPROOF_T__" not in template:
                    raise ValueError(template)
            except Exception:  # noqa: BLE001 - dbt without a cast macro: standard SQL
                template = "cast(__DBTPROOF_V__ as __DBTPROOF_T__)"

            def cast(value: str, data_type: str) -> str:
                with_value = template.replace("__DBTPROOF_V__", value)
                return with_value.replace("__DBTPROOF_T__", data_type)

            try:
                compat.cursor_fetch(adapter, "select c1 from (values (1), (2)) as dbtproof_t(c1)")
                values = True
            except Exception:  # noqa: BLE001 - no VALUES lists here: one select per row
                compat.release_connection(adapter)
                compat.hold_connection(adapter, CONNECTION)
                values = False
            quote = lambda name: compat.quote(adapter, name)  # noqa: E731
            self._dialect = Dialect(cast=cast, quote=quote, values=values)
        return self._dialect

    def _catalog_for(self, adapter: Any, node: Any) -> ColumnCatalog:
        if self._catalog is None:
            context = compat.RenderContext(node, self.session._config, self.session.manifest)
            dialect = self._dialect_for(adapter, context)
            self._catalog = ColumnCatalog(self.session._config, self.session.manifest, dialect)
        return self._catalog

    def _spec(
        self,
        node: Any,
        inputs: Mapping[str, _Input],
        this: Any,
        is_incremental: bool,
        vars: dict[str, Any],
        env: dict[str, str],
        macros: dict[str, Any],
        queries: Introspection | None = None,
    ) -> RenderSpec:
        ctes = {uid: item.cte for uid, item in inputs.items()}
        if isinstance(this, str):
            ctes[THIS] = this
        return RenderSpec(
            node,
            ctes,
            this=this,
            is_incremental=is_incremental,
            vars=vars,
            env=env,
            macros=macros,
            queries=queries,
        )

    def _render(
        self,
        node: Any,
        adapter: Any,
        inputs: Mapping[str, _Input],
        this_input: _Input | None,
        is_incremental: bool,
        vars: dict[str, Any],
        env: dict[str, str],
        macros: dict[str, Any],
        queries: Introspection,
    ) -> Rendered:
        this = _THIS_CTE if this_input is not None else None
        spec = self._spec(node, inputs, this, is_incremental, vars, env, macros, queries)
        # Not cached with queries= (each call checks its keys), nor when the model ran
        # queries while rendering (their results may differ from call to call).
        cacheable = not any(callable(value) for value in macros.values()) and not queries.given
        key = None
        if cacheable:
            key = (
                node.unique_id,
                tuple(sorted(inputs)),
                this,
                is_incremental,
                json.dumps([vars, env], sort_keys=True, default=repr),
                tuple(sorted((n, type(v).__name__, repr(v)) for n, v in macros.items())),
            )
            cached = self._renders.get(key)
            if cached is not None:
                return cached
        rendered = render(spec, self.session._config, self.session.manifest, adapter)
        if key is not None and not queries.ran:
            self._renders[key] = rendered
        return rendered

    # -- fixtures ----------------------------------------------------------------------

    def _schema(
        self, item: _Input, adapter: Any, vars: dict[str, Any], env: dict[str, str]
    ) -> Schema:
        catalog = self._catalog_for(adapter, item.node)
        return catalog.schema_of(item.node, adapter, vars, env)

    def _fixture_sql(
        self,
        node: Any,
        adapter: Any,
        inputs: Mapping[str, _Input],
        this_input: _Input | None,
        vars: dict[str, Any],
        env: dict[str, str],
    ) -> tuple[dict[str, str], list[tuple[_Input, Schema, str]]]:
        """Each fixture's SQL (by input id), and each input with its schema (for diagnosis)."""
        catalog = self._catalog_for(adapter, node)
        dialect = self._dialect  # set by _catalog_for
        assert dialect is not None
        items = list(inputs.values()) + ([this_input] if this_input is not None else [])
        fixtures: dict[str, str] = {}
        typed = []
        for item in items:
            schema = catalog.schema_of(item.node, adapter, vars, env)
            upstream = f"{node.name} (`this`)" if item.uid == THIS else label_of(item.node)
            fixtures[item.uid] = fixture_sql(item.fixture, schema, dialect, upstream)
            typed.append((item, schema, upstream))
        return fixtures, typed

    def _rows_sql(self, typed: list[tuple[_Input, Schema, str]]) -> dict[str, list[str]]:
        """Each fixture's rows, one SQL ``select`` each (to find a value the database refuses)."""
        assert self._dialect is not None
        one_by_one = replace(self._dialect, values=False)
        found: dict[str, list[str]] = {}
        for item, schema, upstream in typed:
            rows = []
            for row in item.fixture.rows:
                single = replace(item.fixture, rows=[row])
                rows.append(fixture_sql(single, schema, one_by_one, upstream))
            found[item.fixture.describe()] = rows
        return found

    def _with_hint(
        self,
        error: ModelSQLError,
        inputs: Mapping[str, _Input],
        adapter: Any,
        vars: dict[str, Any],
        env: dict[str, str],
    ) -> ModelSQLError:
        """*error*, with a note on fixtures whose upstream's columns are not all known."""
        partial = []
        for item in inputs.values():
            schema = self._schema(item, adapter, vars, env)
            if not schema.complete:
                partial.append(f"{item.label} ({schema.origin})")
        if not partial:
            return error
        note = (
            "\nNote: not every column of these upstreams is known, so their fixtures have only "
            f"the columns they give (and those declared): {'; '.join(partial)}. If the database "
            "misses a column, give it in the fixture, or declare the upstream's columns with "
            "their data_type in YAML."
        )
        head, sep, sql = str(error).partition("\n--- SQL ---\n")
        return ModelSQLError(f"{head}{note}{sep}{sql}")

    # -- apply=True --------------------------------------------------------------------

    def _apply(
        self,
        node: Any,
        adapter: Any,
        inputs: Mapping[str, _Input],
        this_input: _Input | None,
        vars: dict[str, Any],
        env: dict[str, str],
        macros: dict[str, Any],
        queries: Introspection,
        fixture_sql: Callable[[], tuple[dict[str, str], list[tuple[_Input, Schema, str]]]],
    ) -> Rows:
        assert this_input is not None
        session = self.session
        if not self._schema_ready:
            compat.ensure_schema(adapter, session.database, session.schema)
            self._schema_ready = True
        this_name, new_name = incremental.table_names(node)
        this_relation = compat.table_relation(adapter, session.database, session.schema, this_name)
        new_relation = compat.table_relation(adapter, session.database, session.schema, new_name)
        spec = self._spec(node, inputs, this_relation, True, vars, env, macros, queries)
        rendered = render(spec, session._config, session.manifest, adapter, keep_context=True)
        fixtures, typed = fixture_sql()
        try:
            return incremental.apply(
                adapter,
                rendered.context,
                node,
                this_relation,
                new_relation,
                f"select * from (\n{fixtures[THIS]}\n) as dbtproof_this",
                rendered.assemble(fixtures),
            )
        except ModelSQLError:
            compat.hold_connection(adapter, CONNECTION)
            find_bad_value(adapter, self._rows_sql(typed))
            raise


def engine_of(session: DbtSession) -> ModelEngine:
    """The session's :class:`ModelEngine` (created on first use)."""
    engine = getattr(session, "_dbtproof_model_engine", None)
    if engine is None:
        engine = ModelEngine(session)
        session._dbtproof_model_engine = engine  # type: ignore[attr-defined]
    return engine


__all__ = ["DbtError", "FixtureValueError", "ModelEngine", "engine_of"]
