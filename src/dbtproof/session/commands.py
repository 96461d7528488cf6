"""What a dbt session runs and looks up: :class:`SessionCommands`.

dbt's commands (``build``, ``run``, ``seed``, ``test``, ``snapshot``, ``compile``, ``ls``)
through the session's runner, watched by the guard, cached per selection, each distinct
set of per-call vars parsed once and moved into the namespace; what was built; the
nodes and relations a test names; the functions a model run on fixtures calls. Owned
by the session (``session.commands``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dbtproof import _dbt_compat as compat
from dbtproof.errors import AccessDenied, ConnectionFaultError, DbtRunError, UnknownNodeError
from dbtproof.project.nodes import (
    BUILDABLE,
    ancestors,
    fqn_selector,
    graph_nodes,
    is_buildable,
    resource_type,
)
from dbtproof.safety import faults
from dbtproof.safety.guard import describe_call, watch
from dbtproof.session.runner import SEE_DBT_LOG, DbtRunner, InvocationResult

if TYPE_CHECKING:
    from dbtproof.compare.rows import Rows
    from dbtproof.project.discovery import DbtProject
    from dbtproof.safety.guard import Guard
    from dbtproof.safety.relocation import Relocation
    from dbtproof.session.access import SessionAccess
    from dbtproof.session.connections import SessionConnections
    from dbtproof.session.settings import SessionSettings


class CommandHost(Protocol):
    """What :class:`SessionCommands` reads of its session."""

    settings: SessionSettings
    project: DbtProject
    guard: Guard | None
    connections: SessionConnections
    access: SessionAccess

    @property
    def schema(self) -> str:
        """The run's namespace."""

    @property
    def manifest(self) -> Any:
        """dbt's parsed manifest."""

    def require_runner(self) -> DbtRunner:
        """The started runner (raises before the start)."""

    def move_into_namespace(self, manifest: Any) -> Relocation:
        """Relocate what *manifest* writes into the namespace, checked."""


class SessionCommands:
    """Runs dbt for the session's tests and finds the nodes they name."""

    def __init__(self, host: CommandHost) -> None:
        self.host = host
        self._built: dict[str, InvocationResult] = {}
        #: Unique ids of the models, seeds and snapshots built successfully in this session.
        self.built_nodes: set[str] = set()
        #: Manifests parsed with other vars than the session's, by their vars.
        self._manifests: dict[str, Any] = {}

    def forget(self, gone: set[str]) -> None:
        """After a refresh: *gone* no longer counts as built; cached results are dropped."""
        self.built_nodes -= gone
        self._built.clear()
        self._manifests.clear()

    def _command(
        self,
        command: str,
        select: str | Sequence[str] | None,
        exclude: str | Sequence[str] | None,
        vars: dict[str, Any] | None,
        full_refresh: bool,
        force: bool,
        expect_fail: bool,
        extra_args: Sequence[str] = (),
    ) -> InvocationResult:
        runner = self.host.require_runner()
        key = json.dumps(
            [command, select, exclude, vars or {}, full_refresh, list(extra_args)],
            sort_keys=True,
            default=str,
        )
        if not force and key in self._built:
            return self._built[key]
        what = describe_call(command, select, exclude, extra_args)
        with faults.not_retried(what), watch(self.host.guard, what) as call:
            result = runner.invoke(
                command,
                select=select,
                exclude=exclude,
                vars=vars,
                full_refresh=full_refresh,
                extra_args=extra_args,
                manifest=self._manifest_with(vars),
            )
            call.ran(result)
        if select and not result.nodes:
            self._check_selects_something(command, select, exclude)
        self.built_nodes.update(
            node.unique_id
            for node in result.nodes
            if node.status == "success" and node.resource_type in BUILDABLE
        )
        failed = result.failed_nodes or not result.success
        if failed and not expect_fail:
            detail = result.describe_failures() or f"  (no node failed; {SEE_DBT_LOG})"
            lost = [
                fault.reason
                for node in result.failed_nodes
                if (fault := faults.fault_in_text(node.message)) and fault.kind == faults.TRANSIENT
            ]
            if lost:  # `dbt build` & co. write: not run twice
                raise ConnectionFaultError(
                    f"dbtproof: the connection to the warehouse failed during `dbt {command}` "
                    f"in schema {self.host.schema} (not retried: it writes): {lost[0]}. The test "
                    f"could not run: no verdict.\n{detail}"
                )
            raise DbtRunError(
                f"dbtproof: `dbt {command}` failed in schema {self.host.schema}:\n{detail}\n"
                f"{runner.log_hint()}",
                result=result,
            )
        if not failed:
            self._built[key] = result
        return result

    def _check_selects_something(
        self, command: str, select: str | Sequence[str], exclude: str | Sequence[str] | None
    ) -> None:
        """Raise when *select* names no node at all (a typo), rather than run nothing.

        Called only when the invocation ran no node. A selection of nodes the command has
        nothing to do for (``dbt test`` of a model without tests), or that *exclude*
        empties, is no mistake: dbt runs nothing, and so does this.
        """
        if self.runner_list(select, None, ()):  # type: ignore[arg-type]
            return
        selectors = [select] if isinstance(select, str) else list(select)
        empty = selectors
        if 1 < len(selectors) <= 10:  # which of them names nothing
            empty = [s for s in selectors if not self.runner_list(s, None, ())]
        raise DbtRunError(
            f"dbtproof: `dbt {command}` selected nothing: "
            f"{', '.join(repr(s) for s in empty or selectors)} "
            f"{'matches' if len(empty) == 1 else 'match'} no node of project "
            f"'{self.host.project.name}'. Check the selector (dbt's syntax: 'customers', "
            "'+customers', 'tag:nightly', 'path:models/marts')."
        )

    def _manifest_with(self, vars: dict[str, Any] | None) -> Any:
        """The manifest for an invocation with *vars*: the session's, or one parsed with them.

        dbt reads vars in configs (``materialized=var(...)``, ``enabled``, ``schema``)
        at parse time, so other vars need their own parse, moved into the namespace
        like the session's. Each distinct set of vars is parsed once.
        """
        merged = {**self.host.settings.vars, **(vars or {})}
        if not vars or merged == self.host.settings.vars:
            return None
        key = json.dumps(merged, sort_keys=True, default=str)
        if key not in self._manifests:
            manifest = self.host.require_runner().parse(vars, graph_variable=False)
            relocation = self.host.move_into_namespace(manifest)
            if self.host.access.grants is not None:
                self.host.access.grants.rewrite(manifest)
            compat.build_graph_variable(manifest)
            self.host.access.create_role_schemas(relocation)
            self._manifests[key] = manifest
        return self._manifests[key]

    def build(self, select=None, exclude=None, vars=None, full_refresh=False, force=False,
              expect_fail=False, extra_args=()) -> InvocationResult:  # fmt: skip
        """``dbt build``: models, seeds, snapshots and tests of the selection, in DAG order.

        The same selection is built once per session unless ``force=True``. A failing
        node raises :class:`dbtproof.DbtRunError` naming each failure, unless
        ``expect_fail=True``. ``extra_args`` are passed on to dbt as they are.
        """
        return self._command(
            "build", select, exclude, vars, full_refresh, force, expect_fail, extra_args
        )

    def runner_list(
        self, select: str | None, exclude: str | None, resource_types: Sequence[str]
    ) -> list[str]:
        """Unique ids of the nodes dbt's selector syntax picks (``dbt ls``)."""
        return self.host.require_runner().list_unique_ids(select, exclude, resource_types)

    def runner_invoke(
        self,
        command: str,
        select: Sequence[str],
        extra_args: Sequence[str] = (),
        exclude: str | None = None,
        manifest: Any = None,
    ) -> InvocationResult:
        """Run ``dbt <command>`` once, uncached, and return each node's result (no raising).

        *manifest* replaces the session's (the run-level build's)."""
        runner = self.host.require_runner()
        what = describe_call(command, select, exclude, extra_args)
        with faults.not_retried(what), watch(self.host.guard, what) as call:
            result = runner.invoke(
                command, select=select, exclude=exclude, extra_args=extra_args, manifest=manifest
            )
            call.ran(result)
        return result

    def run(self, select=None, exclude=None, vars=None, full_refresh=False, force=False,
            expect_fail=False) -> InvocationResult:  # fmt: skip
        """``dbt run`` of the selection; see :meth:`build` for the arguments."""
        return self._command("run", select, exclude, vars, full_refresh, force, expect_fail)

    def seed(self, select=None, exclude=None, vars=None, full_refresh=False, force=False,
             expect_fail=False) -> InvocationResult:  # fmt: skip
        """``dbt seed`` of the selection; see :meth:`build` for the arguments."""
        return self._command("seed", select, exclude, vars, full_refresh, force, expect_fail)

    def test(self, select=None, exclude=None, vars=None, full_refresh=False, force=False,
             expect_fail=False) -> InvocationResult:  # fmt: skip
        """``dbt test`` of the selection; see :meth:`build` for the arguments."""
        return self._command("test", select, exclude, vars, full_refresh, force, expect_fail)

    def snapshot(self, select=None, exclude=None, vars=None, full_refresh=False, force=False,
                 expect_fail=False) -> InvocationResult:  # fmt: skip
        """``dbt snapshot`` of the selection; see :meth:`build` for the arguments."""
        return self._command("snapshot", select, exclude, vars, full_refresh, force, expect_fail)

    def node(self, name: str) -> Any:
        """The manifest node (model, seed, snapshot, function, source) called *name*.

        A source is named ``"<source_name>.<table_name>"``; a unique id works too.
        """
        manifest = self.host.manifest
        nodes = graph_nodes(manifest)
        if name in nodes:
            return nodes[name]
        if name in manifest.sources:
            return manifest.sources[name]
        matches = [n for n in nodes.values() if n.name == name and resource_type(n) in BUILDABLE]
        if "." in name and not matches:
            source_name, _, table_name = name.partition(".")
            matches = [
                s
                for s in manifest.sources.values()
                if s.source_name == source_name and s.name == table_name
            ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            ids = ", ".join(sorted(m.unique_id for m in matches))
            raise UnknownNodeError(f"dbtproof: '{name}' is ambiguous ({ids}); use a unique id.")
        import difflib

        names = sorted(
            {n.name for n in nodes.values()}
            | {f"{s.source_name}.{s.name}" for s in manifest.sources.values()}
        )
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownNodeError(
            f"dbtproof: '{name}' is not a model, seed, snapshot, function or source of project "
            f"'{self.host.project.name}'.{hint}"
        )

    def relation(self, name: str) -> str:
        """The fully qualified relation name of *name* in this run's namespace."""
        node = self.node(name)
        relation_name = getattr(node, "relation_name", None)
        if not relation_name:
            raise UnknownNodeError(
                f"dbtproof: '{name}' ({node.unique_id}) has no relation in the warehouse "
                f"(ephemeral models are inlined into the models that use them; a function "
                f"is called, not read)."
            )
        return str(relation_name)

    def relation_exists(self, node: Any) -> bool:
        """Whether the relation of a manifest node or source exists in the warehouse."""
        identifier = getattr(node, "identifier", None) or getattr(node, "alias", None)
        return self.exists(node.database, node.schema, identifier)

    def ensure_schemas(self, schemas: Iterable[tuple[Any, str]]) -> None:
        """Create each ``(database, schema)`` of *schemas* that does not exist yet (the
        adapter's own ``create_schema``)."""
        adapter = self.host.connections.adapter()
        with compat.connection(adapter, "dbtproof_schemas"):
            self.host.connections.connect(adapter, "dbtproof_schemas")
            for database, schema in dict.fromkeys(schemas):
                compat.ensure_schema(adapter, database, schema)

    def exists(self, database: Any, schema: Any, identifier: Any) -> bool:
        """Whether ``database.schema.identifier`` exists in the warehouse (the adapter's
        own lookup; tried again after a transient connection fault)."""

        def read() -> bool:
            adapter = self.host.connections.adapter()
            with compat.connection(adapter, "dbtproof_exists"):
                self.host.connections.connect(adapter, "dbtproof_exists")
                return compat.relation_exists(adapter, database, schema, identifier)

        return faults.read_with_retry(
            read, self.host.connections.drop_connection, f"the lookup of {identifier}"
        )

    def table(self, name: str) -> Rows:
        """All rows of the model, seed, snapshot or source *name*, from this run's namespace."""
        relation = self.relation(name)
        try:
            return self.host.connections.query(f"select * from {relation}")
        except AccessDenied as exc:
            raise AccessDenied(exc.role, relation, exc.reason) from None

    def compile(self, name: str) -> str:
        """The SQL dbt compiles for the model (or test, or analysis) *name*."""
        node = (
            self.node(name)
            if name not in self.host.manifest.nodes
            else self.host.manifest.nodes[name]
        )
        selector = fqn_selector(node)
        with watch(self.host.guard, describe_call("compile", selector)) as call:
            result = self.host.require_runner().invoke("compile", select=selector)
            call.ran(result)
        for node_result in result.nodes:
            if node_result.unique_id == node.unique_id and node_result.compiled_code is not None:
                return node_result.compiled_code
        raise DbtRunError(
            f"dbtproof: dbt did not compile {node.unique_id} (selector {selector}):\n"
            f"{result.describe_failures()}",
            result=result,
        )

    def functions_ready(self, node: Any) -> None:
        """Build the user-defined functions (dbt 1.11's ``functions:``) that *node* and the
        nodes upstream of it call and this session has not built, with what they read.

        A model run on fixture rows (``run_model``, a native unit test) still calls its
        functions in the warehouse, as dbt's unit tests call the ones ``dbt build``
        created: they are built in the namespace (one ``dbt build`` of them, tests and
        unit tests left out), once per session.
        """
        functions = compat.functions(self.host.manifest)
        if not functions:
            return
        upstream = ancestors(self.host.manifest, [node.unique_id])
        wanted = sorted(uid for uid in upstream if uid in functions)
        if not wanted or self.built_nodes.issuperset(wanted):
            return
        nodes = graph_nodes(self.host.manifest)
        reads = ancestors(self.host.manifest, wanted)
        needed = [
            uid
            for uid in sorted({*wanted, *reads})
            if uid in nodes and is_buildable(nodes[uid]) and uid not in self.built_nodes
        ]
        self.build(
            select=[fqn_selector(nodes[uid]) for uid in needed],
            exclude="resource_type:unit_test",
            extra_args=("--indirect-selection", "empty"),
        )
