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
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbtproof import _dbt_compat as compat
from dbtproof.compare.rows import Rows, RowsView, approx_spec
from dbtproof.engine import incremental
from dbtproof.engine.columns import ColumnCatalog
from dbtproof.engine.dialect import dialect_for
from dbtproof.engine.execute import (
    CONNECTION,
    Slices,
    find_bad_value,
    reason_of,
    run_one_select,
    run_select,
)
from dbtproof.engine.inputs import Column, Dialect, Schema, fixture_sql
from dbtproof.engine.keys import Ref, Source, as_key
from dbtproof.engine.queries import Introspection, load_queries
from dbtproof.engine.reading import Fixture, load_fixture
from dbtproof.engine.render import THIS, Rendered, RenderSpec, cte_name, label_of, render
from dbtproof.engine.request import ModelRunRequest
from dbtproof.engine.staging import BULK_ROWS, Staging
from dbtproof.errors import (
    DbtproofError,
    FixtureFormatError,
    FixtureValueError,
    ModelSQLError,
    ModelTestError,
    UnexpectedInputError,
    UnknownColumnsError,
    UnknownModelError,
)
from dbtproof.project.nodes import resource_type

if TYPE_CHECKING:
    from dbtproof.engine.host import EngineHost

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
    """Runs models on fixture rows for one host (the worker's dbt session).

    Everything it needs comes from *host* (see :class:`~dbtproof.engine.host.EngineHost`).
    """

    def __init__(
        self, host: EngineHost, known_columns: Mapping[tuple[str, str], Schema] | None = None
    ) -> None:
        self.host = host
        self._renders: dict[Any, Rendered] = {}
        self._catalog: ColumnCatalog | None = None
        #: Columns an earlier engine worked out, valid for the host's manifest of now
        #: (see :meth:`known_columns`); dropped if the host's manifest changes.
        self._known_columns = dict(known_columns or {})
        self._known_for: Any = host.manifest
        self._dialect: Dialect | None = None
        self._schema_ready = False
        self._manifest: Any = None
        self._caches = compat.RenderCaches()  # what every render of this engine shares
        #: The relations the current call loaded through the driver's bulk path.
        self._staging: Staging | None = None
        #: The current call is a native unit test's: unknown macro overrides are left out.
        self._as_dbt_unit_test = False

    # -- entry point -------------------------------------------------------------------

    def run_model(
        self, request: ModelRunRequest, wrote_nothing: Callable[[], None] | None = None
    ) -> Rows | RowsView:
        """Run the *request*'s model on its fixtures; see :meth:`DbtSession.run_model`.

        *wrote_nothing* is called when the call provably wrote nothing in the warehouse
        (:meth:`dbtproof.safety.guard.Watch.wrote_nothing`): nothing but dbtproof's own
        statements and one ``SELECT`` ran — see :func:`_proves_read_only`.
        """
        spec = None if request.approx is None else approx_spec(request.approx)
        rows, _ = self._run(request, None, wrote_nothing)
        result: Rows | RowsView = rows.ordered if request.ordered else rows
        return result if spec is None else result.approx(**spec)

    def run_unit_test(
        self, request: ModelRunRequest, expect: Any, label: str = "expect"
    ) -> tuple[Rows, Rows]:
        """Run the *request*'s model as :meth:`run_model` does (never applied), and type
        *expect* as dbt's unit tests do.

        dbt casts the expected rows to the column types of the model's output (so
        ``store_id: 1`` equals a varchar ``'1'``, a date string a timestamp); here the
        output is described in the warehouse and *expect* (fixture data, any form
        ``given`` takes) is cast to those types by the warehouse. Returns the model's
        rows and the expected rows, typed. As in dbt, a macro override naming neither a
        macro nor a value of dbt's context is left out (``run_model`` refuses it).
        """
        fixture = load_fixture(expect, label, request.search_dirs)
        self._as_dbt_unit_test = True  # an override naming nothing is left out, as in dbt
        try:
            rows, expected = self._run(replace(request, apply=False), fixture)
        finally:
            self._as_dbt_unit_test = False
        assert expected is not None
        return rows, expected

    def _run(
        self,
        request: ModelRunRequest,
        expected: Fixture | None,
        wrote_nothing: Callable[[], None] | None = None,
    ) -> tuple[Rows, Rows | None]:
        manifest = self.host.manifest
        if manifest is not self._manifest:
            self._renders.clear()
            self._catalog = None
            self._manifest = manifest
            if manifest is not self._known_for:
                self._known_columns.clear()
        node = self._find_model(request.model)
        self.host.functions_ready(node)  # the model's SQL calls them in the warehouse
        vars_ = dict(request.vars or {})
        env_ = {str(k): str(v) for k, v in (request.env or {}).items()}
        macros_ = dict(request.macros or {})
        apply, this, search_dirs = request.apply, request.this, request.search_dirs
        is_incremental = request.is_incremental
        if apply:
            self._check_apply(node, this)
            is_incremental = True
        inputs = self._inputs(node, request.given or {}, search_dirs)
        this_input = None
        if this is not None:
            label = f"this ({node.name} as it stood before the run)"
            this_input = _Input(THIS, node, label, load_fixture(this, "this", search_dirs), "")
        given_queries = load_queries(request.queries, search_dirs)

        adapter = self.host.adapter()
        compat.hold_connection(adapter, CONNECTION)
        self._staging = Staging(adapter)
        try:
            # Typed without the rendered SQL when a query the model runs while rendering
            # reads a fixture; typed again, with what the SQL reads, once it is rendered.
            typed_by: dict[int, tuple[dict[str, str], list[tuple[_Input, Schema, str]]]] = {}

            def fixture_sql(
                rendered: Rendered | None = None,
            ) -> tuple[dict[str, str], list[tuple[_Input, Schema, str]]]:
                key = id(rendered)
                if key not in typed_by:
                    typed_by[key] = self._fixture_sql(
                        node, adapter, inputs, this_input, vars_, env_, rendered, macros_
                    )
                return typed_by[key]

            answers = Introspection(
                node.name,
                given_queries,
                lambda: fixture_sql()[0],
                partial(self._query_columns, node, adapter),
            )
            if apply:
                rows = self._apply(
                    node, adapter, inputs, this_input, vars_, env_, macros_, answers, fixture_sql
                )
                return rows, None
            rendered = self._render(
                node, adapter, inputs, this_input, is_incremental, vars_, env_, macros_, answers
            )
            fixtures, typed = fixture_sql(rendered)
            sql = rendered.assemble(fixtures)
            if request.rewrite is not None:
                sql = request.rewrite(sql)
            try:
                rows, one_select = run_one_select(adapter, sql, f"model {node.name}")
            except ModelSQLError as exc:
                compat.hold_connection(adapter, CONNECTION)
                find_bad_value(adapter, self._rows_sql(typed))
                unknown = self._unknown_columns(node, adapter, typed, exc)
                raise (unknown or _with_hint(exc, typed)) from exc.__cause__
            if wrote_nothing is not None and _proves_read_only(
                one_select, answers, this_input is None, macros_
            ):
                wrote_nothing()
            if expected is None:
                return rows, None
            return rows, self._typed_expectation(node, adapter, sql, expected)
        except BaseException:
            compat.release_connection(adapter)
            raise
        finally:
            self._staging.clear()
            self._staging = None

    def _query_columns(self, node: Any, adapter: Any, sql: str) -> list[Any]:
        """The columns *sql* returns, as the adapter's Column objects (a fixture's columns,
        for a macro that asks ``adapter.get_columns_in_relation`` while *node* renders)."""
        config, manifest = self.host.runtime_config, self.host.manifest
        context = compat.RenderContext(node, config, manifest, self._caches, lazy=True)
        try:
            return compat.query_columns(context, adapter, sql)
        finally:
            context.close()

    def _writing_dialect(self) -> Dialect:
        """The session's dialect, with the current call's bulk path for large fixtures."""
        assert self._dialect is not None
        staging = self._staging
        if staging is None or not staging.available:
            return self._dialect
        return replace(self._dialect, stage=staging.stage, bulk_rows=BULK_ROWS)

    def _typed_expectation(self, node: Any, adapter: Any, sql: str, expected: Fixture) -> Rows:
        """*expected* cast to the column types of *sql*'s output (the model's, as it ran)."""
        # Lazy: DuckDB describes without dbt's context; other adapters build it on first use.
        config, manifest = self.host.runtime_config, self.host.manifest
        context = compat.RenderContext(node, config, manifest, self._caches, lazy=True)
        try:
            described = compat.describe_query(context, adapter, sql)
        except Exception as exc:
            compat.release_connection(adapter)
            raise ModelSQLError(
                f"dbtproof: the database could not describe the output of {node.name}:\n"
                f"{reason_of(exc)}"
            ) from exc
        finally:
            context.close()
        assert self._catalog is not None and self._dialect is not None
        origin = f"{node.name}'s output"
        columns = [
            Column(c.name, c.data_type, origin) for c in self._catalog.described(node, described)
        ]
        schema = Schema(columns, complete=True, origin=origin)
        what = f"the expected rows of {node.name}"
        dialect = self._writing_dialect()
        expected_sql = fixture_sql(expected, schema, dialect, f"the output of {node.name}")
        try:
            typed = run_select(adapter, expected_sql, what)
        except ModelSQLError:
            compat.hold_connection(adapter, CONNECTION)
            find_bad_value(adapter, {expected.describe(): _slices(expected, schema, dialect, what)})
            raise
        given_columns = [schema.find(name) for name in expected.columns]
        keep = [c.name for c in given_columns if c is not None]
        return Rows(keep, [tuple(row[name] for name in keep) for row in typed])

    # -- the model and its inputs ------------------------------------------------------

    def _find_model(self, model: str | Ref) -> Any:
        manifest = self.host.manifest
        key = as_key(model) if isinstance(model, (str, Ref)) else None
        if not isinstance(key, Ref):
            raise UnknownModelError(
                f"dbtproof: run_model() takes a model name or ref('name'), got {model!r}."
            )
        project = self.host.runtime_config.project_name
        node = compat.lookup_ref(manifest, key.name, key.package, key.version, project)
        if node is not None and resource_type(node) == "model":
            return node
        models = sorted({n.name for n in manifest.nodes.values() if resource_type(n) == "model"})
        close = difflib.get_close_matches(key.name, models, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        what = (
            f"a {resource_type(node)}, not a model"
            if node is not None
            else "not a model of the project (nor of its packages)"
        )
        raise UnknownModelError(
            f"dbtproof: run_model({str(key)[4:-1]}): '{key.name}' is {what}.{hint} "
            f"Models of project '{project}': {', '.join(models[:30])}"
            + (" ..." if len(models) > 30 else "")
        )

    def _references(self, node: Any) -> list[str]:
        manifest = self.host.manifest
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
        manifest = self.host.manifest
        project = self.host.runtime_config.project_name
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
            self._dialect = dialect_for(adapter, context, CONNECTION)
        return self._dialect

    def _catalog_for(self, adapter: Any, node: Any) -> ColumnCatalog:
        if self._catalog is None:
            context = compat.RenderContext(
                node, self.host.runtime_config, self.host.manifest, self._caches
            )
            dialect = self._dialect_for(adapter, context)
            self._catalog = ColumnCatalog(
                self.host.runtime_config,
                self.host.manifest,
                dialect,
                compat.adapter_type(adapter),
                self._caches,
                self._known_columns,
            )
        return self._catalog

    def known_columns(self, except_for: Collection[str]) -> dict[tuple[str, str], Schema]:
        """The columns this engine worked out (or was given), but for the nodes
        *except_for*: for the engine of a manifest parsed again after a save, where
        *except_for* are the nodes the save modified and everything downstream
        (``dbtproof watch``)."""
        if self._catalog is not None:
            return self._catalog.known(except_for)
        return {key: s for key, s in self._known_columns.items() if key[0] not in except_for}

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
            ignore_unknown_macros=self._as_dbt_unit_test,
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
        # queries while rendering (their results may differ from call to call), nor when
        # it asked for a given input's columns (the given rows' columns may differ too).
        cacheable = not any(callable(value) for value in macros.values()) and not queries.given
        key = None
        if cacheable:
            key = (
                node.unique_id,
                tuple(sorted(inputs)),
                this,
                is_incremental,
                self._as_dbt_unit_test,
                json.dumps([vars, env], sort_keys=True, default=repr),
                tuple(sorted((n, type(v).__name__, repr(v)) for n, v in macros.items())),
            )
            cached = self._renders.get(key)
            if cached is not None:
                return cached
        rendered = render(spec, self.host.runtime_config, self.host.manifest, adapter, self._caches)
        if key is not None and not queries.ran and not queries.asked_columns:
            self._renders[key] = rendered
        return rendered

    # -- fixtures ----------------------------------------------------------------------

    def _fixture_sql(
        self,
        node: Any,
        adapter: Any,
        inputs: Mapping[str, _Input],
        this_input: _Input | None,
        vars: dict[str, Any],
        env: dict[str, str],
        rendered: Rendered | None,
        macros: dict[str, Any] | None = None,
    ) -> tuple[dict[str, str], list[tuple[_Input, Schema, str]]]:
        """Each fixture's SQL (by input id), and each input with its schema (for diagnosis).

        An input whose columns are not all known also gets the columns *rendered* reads
        from it (when the model is rendered already); ``this`` has the model's own columns.
        """
        catalog = self._catalog_for(adapter, node)
        dialect = self._writing_dialect()  # the session's is set by _catalog_for
        items = list(inputs.values()) + ([this_input] if this_input is not None else [])
        ctes = {item.uid: item.cte or _THIS_CTE for item in items}
        schemas = {item.uid: catalog.schema_of(item.node, adapter, vars, env) for item in items}
        references = None if rendered is None else catalog.references(rendered, ctes, schemas)
        fixtures: dict[str, str] = {}
        typed = []
        for item in items:
            schema = catalog.as_read_by(schemas[item.uid], references, ctes[item.uid], node.name)
            if item.uid == THIS:
                upstream = f"{node.name} (`this`)"
                schema = self._this_schema(
                    node, adapter, inputs, fixtures, schema, vars, env, macros or {}
                )
            else:
                upstream = label_of(item.node)
            fixtures[item.uid] = fixture_sql(item.fixture, schema, dialect, upstream)
            typed.append((item, schema, upstream))
        return fixtures, typed

    def _this_schema(
        self,
        node: Any,
        adapter: Any,
        inputs: Mapping[str, _Input],
        fixtures: Mapping[str, str],
        known: Schema,
        vars: dict[str, Any],
        env: dict[str, str],
        macros: dict[str, Any],
    ) -> Schema:
        """The model's own output columns, described on the given inputs (for ``this``).

        A type the given rows leave open (a column nothing types) keeps what *known* says.
        """
        spec = self._spec(node, inputs, None, False, vars, env, macros)
        spec.require_inputs = False
        config, manifest = self.host.runtime_config, self.host.manifest
        rendered = None
        try:
            rendered = render(spec, config, manifest, adapter, self._caches, keep_context=True)
            sql = rendered.assemble(dict(fixtures))
            described = compat.describe_query(rendered.context, adapter, sql)
        except Exception:  # noqa: BLE001 - not describable on these inputs: what is known
            compat.release_connection(adapter)
            compat.hold_connection(adapter, CONNECTION)
            return known
        finally:
            if rendered is not None and rendered.context is not None:
                rendered.context.close()
        assert self._catalog is not None
        origin = f"{node.name}'s output on the given inputs"
        columns = []
        for column in self._catalog.described(node, described):
            if column.data_type is None:
                column = known.find(column.name) or column
            else:
                column = Column(column.name, column.data_type, origin)
            columns.append(column)
        return Schema(columns, complete=True, origin=origin)

    def _unknown_columns(
        self,
        node: Any,
        adapter: Any,
        typed: list[tuple[_Input, Schema, str]],
        error: ModelSQLError,
    ) -> UnknownColumnsError | None:
        """The error to raise instead of *error* when the SQL reads every column of a given
        source whose columns nothing says (no table where the run reads it, no seed loading
        it, a YAML that declares none or some): its fixture's columns were all it had, as
        when its table is loaded outside the project (dbt-core's suite seeds one with
        another target). None when no such source is read whole."""
        unknown = [
            (item, schema)
            for item, schema, _ in typed
            if item.uid != THIS
            and resource_type(item.node) == "source"
            and not schema.complete
            and not schema.read_by  # read through `select *` (or SQL sqlglot cannot parse)
        ]
        if not unknown:
            return None
        item, schema = unknown[0]
        where = getattr(item.node, "original_file_path", "") or "its YAML"
        declared = (
            schema.origin
            if not schema.columns
            else f"the columns declared in {where} are not all of them"
        )
        try:
            relation = str(compat.node_relation(adapter, self.host.runtime_config, item.node))
        except Exception:  # noqa: BLE001 - named without its relation then
            relation = "its table"
        given = ", ".join(item.fixture.columns) or "none"
        reason = " ".join(reason_of(error.__cause__ or error).split())
        return UnknownColumnsError(
            f"dbtproof: model {node.name} reads every column of {item.label}, whose columns "
            f"dbtproof cannot know: no table {relation} where the run reads it (one loaded "
            f"outside the project or by another target is not there), no seed of "
            f"the project loads it, {declared}.\nSo it had the fixture's columns only "
            f"({given}), and the database refused the SQL: {reason[:200]}\nGive every "
            f"column of the table in the fixture's rows, or declare them (name and data_type) "
            f"under the source in {where}."
        )

    def _rows_sql(self, typed: list[tuple[_Input, Schema, str]]) -> dict[str, Slices]:
        """Each fixture's rows as SQL by slice (to find a value the database refuses)."""
        dialect = self._writing_dialect()
        return {
            item.fixture.describe(): _slices(item.fixture, schema, dialect, upstream)
            for item, schema, upstream in typed
        }

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
        fixture_sql: Callable[..., tuple[dict[str, str], list[tuple[_Input, Schema, str]]]],
    ) -> Rows:
        assert this_input is not None
        host = self.host
        if not self._schema_ready:
            compat.ensure_schema(adapter, host.database, host.schema)
            self._schema_ready = True
        this_name, new_name = incremental.table_names(node)
        this_relation = compat.table_relation(adapter, host.database, host.schema, this_name)
        new_relation = compat.table_relation(adapter, host.database, host.schema, new_name)
        spec = self._spec(node, inputs, this_relation, True, vars, env, macros, queries)
        rendered = render(
            spec, host.runtime_config, host.manifest, adapter, self._caches, keep_context=True
        )
        fixtures, typed = fixture_sql(rendered)
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


def _proves_read_only(
    one_select: bool, answers: Introspection, no_this: bool, macros: Mapping[str, Any]
) -> bool:
    """Whether a ``run_model`` call (not applied) provably wrote nothing in the warehouse.

    Besides dbtproof's own statements (fixtures described, columns looked up, all
    reads; large fixtures staged in the run's own database), a call runs what the
    model's Jinja runs while it renders and the statement *sql*. So: nothing of the
    render reached dbt's adapter (no query run in the warehouse, no ``create_schema``,
    no relation looked up: :attr:`Introspection.reached_dbt`; a render taken from the
    engine's cache ran no Jinja at all), no Python macro override ran (it may do
    anything), no ``this`` (its columns are described with a render that is not
    watched so), and the model's statement ran as *one_select*: one ``SELECT`` by the
    warehouse's own parser (DuckDB only: :func:`dbtproof._dbt_compat.fetch_one_select`).
    """
    if not one_select or answers.reached_dbt or not no_this:
        return False
    return not any(callable(value) for value in macros.values())


def _slices(fixture: Fixture, schema: Schema, dialect: Dialect, upstream: str) -> Slices:
    """*fixture*'s row count, and the SQL of its rows ``[first, last)`` typed by *schema*."""

    def sql(first: int, last: int) -> str:
        part = replace(fixture, rows=fixture.rows[first:last])
        return fixture_sql(part, schema, dialect, upstream)

    return len(fixture.rows), sql


def _with_hint(error: ModelSQLError, typed: list[tuple[_Input, Schema, str]]) -> ModelSQLError:
    """*error*, with where each column of the fixtures whose upstream is not all known came
    from (a column the database misses, or a type it refuses, is then easy to place)."""
    notes = []
    for item, schema, _ in typed:
        if schema.complete:
            continue
        described = []
        for column in schema.columns:
            if column.data_type:
                what = f"{column.data_type} ({column.origin})"
            elif column.hint:
                what = f"typed as {column.hint} ({column.origin})"
            else:
                what = f"type from its values ({column.origin or 'the fixture'})"
            described.append(f"    {column.name}: {what}")
        given = [c for c in item.fixture.columns if schema.find(c) is None]
        described += [f"    {name}: type from its values (the fixture)" for name in given]
        notes.append(f"  {item.label} ({schema.origin}):\n" + "\n".join(described))
    if not notes:
        return error
    note = (
        "\nNote: not every column of these upstreams is known, so their fixtures have the "
        "columns below (a column the database misses can be given in the fixture, a type "
        "declared with data_type in YAML):\n" + "\n".join(notes)
    )
    head, sep, sql = str(error).partition("\n--- SQL ---\n")
    return ModelSQLError(f"{head}{note}{sep}{sql}")


__all__ = ["DbtproofError", "FixtureValueError", "ModelEngine"]
