"""One dbt session per pytest worker: project + profile + namespace + runner.

:class:`DbtSession` is the object behind the ``dbt`` fixture. It is started once
per worker (parse, isolation guard, connection check), serves every test of that
worker, and drops everything it created when the session ends.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dbtproof import _dbt_compat as compat
from dbtproof.compare.rows import Rows
from dbtproof.credentials.profile import bind_to_target, header_lines
from dbtproof.engine.request import ModelRunRequest
from dbtproof.errors import AccessDenied, DbtproofError, ProjectConfigError
from dbtproof.project import targets
from dbtproof.project.discovery import (
    DbtProject,
    load_profile_target,
    minted_settings,
    write_derived_profiles,
)
from dbtproof.safety import faults
from dbtproof.safety import namespace as ns
from dbtproof.safety.grants import GrantsDiff, GrantsPlan
from dbtproof.safety.guard import Guard, start_guard, watch
from dbtproof.safety.liveness import LivenessMark
from dbtproof.safety.loaded_sources import read_where_loaded
from dbtproof.safety.redaction import Secret
from dbtproof.safety.relocation import (
    Relocation,
    from_parse_schema,
    move_to_database,
    relocate,
    relocate_external_locations,
)
from dbtproof.safety.run_role import RunRole
from dbtproof.session import parse_cache
from dbtproof.session.access import SessionAccess
from dbtproof.session.commands import SessionCommands
from dbtproof.session.connections import SessionConnections
from dbtproof.session.file_access import (
    LOCKDOWN_ALIAS,
    LOCKDOWN_MODULE,
    FileAccess,
    project_file_access,
)
from dbtproof.session.parsing import SessionParsing
from dbtproof.session.runner import DbtRunner, InvocationResult
from dbtproof.session.settings import SessionSettings, check_protected
from dbtproof.session.shared_build import SharedAttachment, SharedPlace

if TYPE_CHECKING:
    from dbtproof.engine.inputs import Schema
    from dbtproof.engine.model import ModelEngine

T = TypeVar("T")


class DbtSession:
    """A dbt project opened for testing, in its own namespace, for one pytest worker.

    Use it through the ``dbt`` fixture. ``schema`` is this worker's schema, ``target``
    the target name, ``manifest`` dbt's parsed manifest.
    """

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.project = DbtProject.load(settings.project_dir)
        self.profile_target = load_profile_target(
            settings.profiles_dir,
            self.project.profile_name,
            settings.target,
            render=self.render,
        )
        self.schema = ns.worker_schema(settings.run_id, settings.worker_id)
        self.workdir = settings.workdir / self.schema
        self.database_file: Path | None = None
        #: Where dbt-duckdb's ``external`` models write their files in this run.
        self.external_root = self.workdir / targets.EXTERNAL_FOLDER
        self.runner: DbtRunner | None = None
        #: The parse: its runtime config, the warm-parse cache it used.
        self.parsing = SessionParsing(self)
        #: Opens, retries and uses the connections (queries, statements).
        self.connections = SessionConnections(self)
        #: The run role, the identity's rights, the grants, the role acted as.
        self.access = SessionAccess(self)
        #: dbt's commands, what they built, the nodes tests name.
        self.commands = SessionCommands(self)
        #: What was moved into the namespace after parsing (set by :meth:`start`).
        self.relocation: Relocation | None = None
        #: Watches what the run writes outside the namespace (None: adapter not watched).
        self.guard: Guard | None = None
        #: DuckDB: the files the run's SQL may touch (None: not worked out yet).
        self.file_access: FileAccess | None = None
        self._started = False
        #: Started without a connection (see :attr:`SessionSettings.runs_tests`).
        self.offline = False
        self._engine: ModelEngine | None = None
        #: The columns the model engine of an earlier manifest worked out of the nodes a
        #: refresh left as they were (``dbtproof watch``), for the next engine.
        self._known_columns: dict[tuple[str, str], Schema] = {}
        #: Tells `dbtproof clean` this run is alive (held from start to teardown).
        self.liveness = LivenessMark()
        #: Where :meth:`start` went (``--dbt-timings``).
        self.timings = parse_cache.StartTimings()
        #: The start reached the warehouse (its liveness lock held): from here on a failed
        #: start's teardown drops what the run made.
        self._in_warehouse = False
        #: The derived profile's settings that read minted variables, as written: rendered
        #: anew onto the adapter's credentials before dbtproof opens a connection.
        self.minted_settings: dict[str, Any] = {}
        #: Where the run-level build lives (None: this worker builds what it runs itself).
        self.shared_place = (
            SharedPlace.of_run(settings.shared_build, settings.run_id)
            if settings.shared_build is not None and settings.parse_from is not None
            else None
        )
        #: DuckDB: the run-level file's attachment to this process's database.
        self.shared = SharedAttachment(
            self.shared_place,
            lambda: compat.open_dedicated_connection(self.adapter(), "dbtproof_shared"),
        )

    # -- start -------------------------------------------------------------------------

    @property
    def target(self) -> str:
        """Name of the dbt target in use."""
        return self.profile_target.target_name

    @property
    def adapter_type(self) -> str:
        """Adapter type of the target (``duckdb``, ``postgres``, ...)."""
        return self.profile_target.adapter_type

    @property
    def manifest(self) -> Any:
        """dbt's parsed manifest for this session (parsed once, reused by every invocation)."""
        return self.require_runner().manifest

    @property
    def runtime_config(self) -> Any:
        """dbt's ``RuntimeConfig`` of the project and target (None before :meth:`start`)."""
        return self.parsing.config

    @property
    def parse_cache(self) -> parse_cache.ParseCache | None:
        """The warm-parse cache this session parsed in (None: a cold parse)."""
        return self.parsing.cache

    @property
    def engine(self) -> ModelEngine:
        """The model engine behind :meth:`run_model` and native unit tests (made on first use)."""
        if self._engine is None:
            from dbtproof.engine.model import ModelEngine

            self._engine = ModelEngine(self, self._known_columns)
            self._known_columns = {}
        return self._engine

    @property
    def query_comment(self) -> str:
        """The comment on every query of the run (dbt's and dbtproof's): the run id and
        dbt's invocation id, as JSON (see :func:`dbtproof._dbt_compat.comment_macro`)."""
        return compat.comment_macro(self.settings.run_id)

    def render(self, value: str) -> Any:
        """*value* (a profile setting) rendered as dbt renders it, with the run's vars."""
        try:
            return compat.render_profile_value(value, self.settings.vars)
        except Exception as exc:  # dbt's own rendering errors
            raise ProjectConfigError(
                f"dbtproof: cannot render {value!r} from "
                f"{self.settings.profiles_dir}/profiles.yml: {exc}"
            ) from exc

    def _overrides(self) -> dict[str, Any]:
        """The derived profile's settings: the namespace (:func:`targets.namespace_overrides`)
        and, on PostgreSQL, the run role."""
        overrides = targets.namespace_overrides(
            self.adapter_type,
            self.schema,
            self.profile_target.raw_output,
            self.render,
            self.workdir,
        )
        if self.access.run_role is not None and self.access.run_role.password is not None:
            # dbt logs in as the run role itself: no role to set, none to reset to
            overrides["user"] = self.access.run_role.name
            overrides["password"] = self.access.run_role.password.reveal()
            overrides["role"] = None
        elif self.access.run_role is not None:
            overrides["role"] = self.access.run_role.quoted
        if self.file_access is not None and not self.file_access.unlimited:
            overrides["plugins"] = self.file_access.plugins(self.profile_target.raw_output)
        if "path" in overrides:
            self.database_file = Path(overrides["path"])
        if "external_root" in overrides:
            self.external_root.mkdir(parents=True, exist_ok=True)
        return overrides

    def start(self) -> DbtSession:
        """Check the target, parse the project, guard isolation and check the connection."""
        timings = self.timings
        with timings.step("import dbt"):
            compat.import_dbt()
        compat.quiet_dbt_console()  # nothing of dbt's log on the terminal
        check_protected(self.profile_target, self.settings, self.render)
        if self.settings.credentials:
            bind_to_target(self.settings.credentials, self.profile_target, self.render)
        # Alive for `dbtproof clean` before anything of the run exists: the folder appears
        # with its lock held.
        self.liveness = LivenessMark.hold(self.workdir, self.settings.run_id)
        profiles_dir = write_derived_profiles(
            self.profile_target, self._overrides(), self.workdir / "profile"
        )
        if self.settings.credentials:
            derived = load_profile_target(
                profiles_dir, self.profile_target.profile_name, self.target
            )
            self.minted_settings = minted_settings(derived, self.settings.credentials.variables)
        self.runner = DbtRunner(
            project_dir=self.project.root,
            profiles_dir=profiles_dir,
            profile=self.profile_target.profile_name,
            target=self.target,
            target_path=self.workdir / "target",
            log_path=self.workdir / "logs",
            vars=self.settings.vars,
            credentials=self.settings.credentials,
            adapter_type=self.adapter_type,
            query_comment=self.query_comment,
            observers=self.settings.observers,
            progress=self.settings.progress,
            file_log=self.settings.keep,
        )
        with timings.step("parse"):
            self._parse()
        self.runner.threads = compat.runtime_threads(self.runtime_config)
        with timings.step("relocation + isolation check"):
            self.relocation = self.move_into_namespace(self.runner.manifest)
        if self.adapter_type == "duckdb":
            self._limit_file_access()
        if not self.settings.runs_tests and targets.runs_in_process(
            self.adapter_type, self.profile_target.raw_output
        ):
            self.offline = self._started = True
            with timings.step("graph variable"):
                compat.build_graph_variable(self.manifest)
            return self
        with timings.step("connect"):
            self.connections.preflight()
        try:
            self._start_in_warehouse()
        except Exception as exc:
            error = faults.start_failed(exc)
            if error is exc:
                raise
            raise error from exc
        self._started = True
        if self.settings.seed:
            with timings.step("seed"):
                self.seed()
        return self

    def _start_in_warehouse(self) -> None:
        """After the first connection: the liveness lock (PostgreSQL), then the run role and
        schemas, the grants, the guard. Every step's statements are tried again after a
        transient connection fault (what a step made undone first); from the lock on, a
        failed start's teardown drops what the run made."""
        timings = self.timings
        if self.adapter_type == "postgres":
            adapter = self.adapter()
            with timings.step("liveness"):
                self.connections.start_step(
                    "its liveness lock", lambda: self.liveness.hold_advisory(adapter)
                )
        self._in_warehouse = True
        with timings.step("sources loaded outside"):
            self.connections.start_step("the sources' lookup", self._read_loaded_sources)
        if self.adapter_type == "postgres":
            with timings.step("least privilege"):
                self.connections.start_step(
                    "the identity's rights", self.access.check_least_privilege
                )
            with timings.step("run role"):
                self.access.start_run_role()
                if self.access.run_role is None:  # search_path starts here: it must exist
                    self.connections.start_step(
                        "the namespace's schema",
                        lambda: self.connections.execute_idempotent(
                            f'create schema if not exists "{self.schema}"'
                        ),
                    )
        with timings.step("grants"):
            self.connections.start_step("the grants' setup", self._prepare_grants)
        with timings.step("graph variable"):
            compat.build_graph_variable(self.manifest)
        access = self.access
        with timings.step("guard"):
            self.guard = self.connections.start_step(
                "the guard's first look",
                lambda: start_guard(
                    self.adapter_type,
                    self.adapter,
                    self.schema,
                    self.database,
                    identity=access.identity_sql(),
                    restore=access.restore_sql(),
                    run_databases=(
                        *((self.shared_place.catalog,) if self.shared_place else ()),
                        *self.settings.own_places,
                    ),
                    own_schemas=self.settings.own_places,
                    run_role=access.run_role.name if access.run_role else None,
                    watched_role=access.identity_name() if access.identity_login else None,
                ),
            )

    def refresh(self, changed: Iterable[str], stale: Callable[[Any], set[str]]) -> set[str]:
        """Parse again (warm) after the files *changed* (relative to the project) were
        saved, keeping the namespace, the connections and what is built (``dbtproof
        watch`` between rounds). Only Python files outside the project's dbt folders
        (pytest's tests) need no parse.

        *stale* is given the new manifest and returns the nodes whose relations no longer
        hold what the project says (what the saved files modify, and everything
        downstream): they count as not built. Returns them. Invocation results cached
        for tests and the model engine (its compiled templates) are forgotten; what the
        engine worked out of the columns of the other nodes is kept.
        """
        self.timings = parse_cache.StartTimings()
        folders, _ = compat.parse_inputs(self.manifest, self.runtime_config)
        dbt_files = [
            path
            for path in changed
            if not path.endswith(".py")
            or any(Path(path).is_relative_to(folder) for folder in folders)
        ]
        if dbt_files:
            with self.timings.step("parse"):
                self._parse(changed=True)
            with self.timings.step("relocation + isolation check"):
                self.relocation = self.move_into_namespace(self.runner.manifest)
                self.access.create_role_schemas(self.relocation)
            with self.timings.step("grants"):
                self._prepare_grants()
            with self.timings.step("graph variable"):
                compat.build_graph_variable(self.manifest)
        else:
            self.timings.parse = "not parsed again: only pytest's files changed"
        gone = stale(self.manifest)
        self.commands.forget(gone)
        if self._engine is not None:  # what it knows of the columns of the nodes still as they were
            self._known_columns = self._engine.known_columns(except_for=gone)
        self._engine = None
        return gone

    # -- parsing -----------------------------------------------------------------------

    def _parse(self, changed: bool = False) -> None:
        """Parse the session's manifest (:meth:`SessionParsing.parse`)."""
        self.parsing.parse(self._require_runner_object(), changed)

    def read_parse_ahead(self) -> None:
        """Between watch rounds: read dbt's partial-parse file back for the next parse."""
        self.parsing.read_parse_ahead()

    # -- DuckDB's file access ---------------------------------------------------------

    def _limit_file_access(self) -> None:
        """DuckDB: open the run's database limited to the files the run may touch
        (:mod:`dbtproof.session.file_access`), unless dbtproof cannot tell what the project
        needs."""
        folders = [self.workdir]
        if self.shared_place is not None:
            folders.append(self.shared_place.folder)
        self.file_access = project_file_access(
            self.manifest, self.profile_target.raw_output, self.project.root, folders, self.render
        )
        if self.file_access.unlimited:
            return
        self.write_profile()
        compat.use_duckdb_plugin(
            self.runtime_config, LOCKDOWN_MODULE, LOCKDOWN_ALIAS, self.file_access.settings()
        )

    # -- minted credentials ------------------------------------------------------------

    def credential_lines(self) -> list[str]:
        """The header's lines on minted credentials: provider, variable, settings reading it."""
        credentials = self.settings.credentials
        return header_lines(credentials, self.minted_settings) if credentials else []

    # -- access (SessionAccess) --------------------------------------------------------

    @property
    def run_role(self) -> RunRole | None:
        """PostgreSQL: the role dbt and dbtproof work as (None: the identity's own rights)."""
        return self.access.run_role

    @property
    def grants(self) -> GrantsPlan | None:
        """The nodes' grants, mapped (None: the adapter applies no grants)."""
        return self.access.grants

    @property
    def made_secrets(self) -> list[Secret]:
        """Secrets the session made (the run role's password): the run registers them."""
        return self.access.made_secrets

    def _prepare_grants(self) -> None:
        """Plan the nodes' grants and apply what dbtproof applies (at start, each refresh)."""
        self.access.prepare_grants()

    def privilege_lines(self) -> list[str]:
        """The header's warnings on the identity's excess rights."""
        return self.access.privilege_lines()

    def check_grants(self, unique_id: str) -> GrantsDiff:
        """The node's relation's privileges against what its grants config asks for."""
        return self.access.check_grants(unique_id)

    @property
    def roles_supported(self) -> bool:
        """Whether :meth:`as_role` can act as a role on this adapter."""
        return self.access.roles_supported

    def as_role(self, role: str) -> AbstractContextManager[str]:
        """Act as *role* inside the block (:meth:`SessionAccess.as_role`)."""
        return self.access.as_role(role)

    def denied(self, exc: BaseException, relation: str | None = None) -> AccessDenied | None:
        """The :class:`AccessDenied` of a read refused while acting as a role, else None."""
        return self.access.denied(exc, relation)

    def write_profile(self) -> None:
        """Write the derived profile anew (the run role's login, DuckDB's lockdown)."""
        write_derived_profiles(self.profile_target, self._overrides(), self.workdir / "profile")

    @property
    def database(self) -> str | None:
        """The database (catalog) of the target, as dbt resolved it."""
        if self.runtime_config is None:
            return None
        return getattr(self.runtime_config.credentials, "database", None)

    def where(self) -> str:
        """Where the target comes from, for messages."""
        return (
            f"  target: {self.target} (profile '{self.profile_target.profile_name}', "
            f"{self.profile_target.profiles_path})\n"
            f"  adapter: {self.adapter_type}\n"
            f"  environment variables read by the target: {self.profile_target.env_var_report()}"
        )

    def _require_runner_object(self) -> DbtRunner:
        if self.runner is None:
            raise DbtproofError("dbtproof: the dbt session has not been started.")
        return self.runner

    def require_runner(self) -> DbtRunner:
        """The started runner; raises before :meth:`start`."""
        if self.runner is None or self.runner.manifest is None:
            raise DbtproofError("dbtproof: the dbt session has not been started.")
        return self.runner

    def move_into_namespace(self, manifest: Any) -> Relocation:
        """Relocate what *manifest* writes (DuckDB external files too), then check the result."""
        relocation = relocate(
            manifest, self.adapter(), self.runtime_config, self.schema, self.database
        )
        if self.adapter_type == "duckdb":
            relocate_external_locations(manifest, self.external_root)
        ns.check_isolation(manifest, self.schema, self.database)
        if self.settings.prepare_manifest is not None:
            self.settings.prepare_manifest(manifest, relocation)
        if self._in_warehouse:
            self._read_loaded_sources(manifest, relocation)
        return relocation

    def _read_loaded_sources(self, manifest: Any = None, relocation: Any = None) -> None:
        """Point the sources loaded outside the project (rendered from ``target.schema``,
        fed by no node) at where the profile's own target puts them, where they exist
        (:mod:`dbtproof.safety.loaded_sources`). Not on DuckDB or a local Spark: a run's database
        is new there, the user's tables are not in it."""
        manifest = self.manifest if manifest is None else manifest
        relocation = self.relocation if relocation is None else relocation
        output = self.profile_target.raw_output
        raw = output.get("schema") or output.get("dataset")
        if relocation is None or not isinstance(raw, str) or self.adapter_type == "duckdb":
            return
        if targets.runs_in_process(self.adapter_type, output):
            return
        adapter, config = self.adapter(), self.runtime_config
        relocation.loaded += read_where_loaded(
            manifest.sources,
            self.schema,
            str(self.render(raw)),
            relocation.feeders,
            self.commands.exists,
            lambda source: str(compat.node_relation(adapter, config, source)),
        )

    def shared_manifest(self, place: SharedPlace) -> Any:
        """A fresh copy of the xdist controller's parse moved to the run-level build's
        *place* (:mod:`dbtproof.session.shared_build`): relocated as the session's own manifest is,
        into the place's schema (checked like the session's own), then into its DuckDB
        catalog, ``external`` files in its folder; data tests, which write only their
        stored failures, into this session's namespace."""
        assert self.settings.parse_from is not None
        manifest, _ = compat.load_parse(self.settings.parse_from)
        adapter, config = self.adapter(), self.runtime_config
        from_parse_schema(manifest, parse_cache.PARSE_SCHEMA, place.schema, adapter, config)
        relocation = relocate(manifest, adapter, config, place.schema, self.database)
        if self.adapter_type == "duckdb":
            relocate_external_locations(manifest, place.external_root, spell_out_defaults=True)
        ns.check_isolation(manifest, place.schema, self.database)
        move_to_database(
            manifest, relocation, place.catalog, adapter, config, tests_namespace=self.schema
        )
        if self.access.grants is not None:
            self.access.grants.rewrite(manifest)
        compat.build_graph_variable(manifest)
        return manifest

    def attach_shared(self, place: SharedPlace, read_only: bool) -> None:
        """Attach the run-level DuckDB file (:meth:`SharedAttachment.attach`)."""
        self.shared.attach(place, read_only)

    def detach_shared(self, place: SharedPlace) -> None:
        """Detach the run-level DuckDB file, if attached."""
        self.shared.detach(place)

    # -- commands (SessionCommands) ------------------------------------------------------

    @property
    def built_nodes(self) -> set[str]:
        """Unique ids of the models, seeds and snapshots built successfully in this session."""
        return self.commands.built_nodes

    def build(self, select=None, exclude=None, vars=None, full_refresh=False, force=False,
              expect_fail=False, extra_args=()) -> InvocationResult:  # fmt: skip
        """``dbt build`` of the selection (:meth:`SessionCommands.build`)."""
        c = self.commands
        return c.build(select, exclude, vars, full_refresh, force, expect_fail, extra_args)

    def run(self, select=None, exclude=None, vars=None, full_refresh=False, force=False,
            expect_fail=False) -> InvocationResult:  # fmt: skip
        """``dbt run`` of the selection."""
        return self.commands.run(select, exclude, vars, full_refresh, force, expect_fail)

    def seed(self, select=None, exclude=None, vars=None, full_refresh=False, force=False,
             expect_fail=False) -> InvocationResult:  # fmt: skip
        """``dbt seed`` of the selection."""
        return self.commands.seed(select, exclude, vars, full_refresh, force, expect_fail)

    def test(self, select=None, exclude=None, vars=None, full_refresh=False, force=False,
             expect_fail=False) -> InvocationResult:  # fmt: skip
        """``dbt test`` of the selection."""
        return self.commands.test(select, exclude, vars, full_refresh, force, expect_fail)

    def snapshot(self, select=None, exclude=None, vars=None, full_refresh=False, force=False,
                 expect_fail=False) -> InvocationResult:  # fmt: skip
        """``dbt snapshot`` of the selection."""
        return self.commands.snapshot(select, exclude, vars, full_refresh, force, expect_fail)

    def runner_list(
        self, select: str | None, exclude: str | None, resource_types: Sequence[str]
    ) -> list[str]:
        """Unique ids of the nodes dbt's selector syntax picks (``dbt ls``)."""
        return self.commands.runner_list(select, exclude, resource_types)

    def runner_invoke(
        self,
        command: str,
        select: Sequence[str],
        extra_args: Sequence[str] = (),
        exclude: str | None = None,
        manifest: Any = None,
    ) -> InvocationResult:
        """Run ``dbt <command>`` once, uncached (:meth:`SessionCommands.runner_invoke`)."""
        return self.commands.runner_invoke(command, select, extra_args, exclude, manifest)

    def compile(self, name: str) -> str:
        """The SQL dbt compiles for the model (or test, or analysis) *name*."""
        return self.commands.compile(name)

    def node(self, name: str) -> Any:
        """The manifest node (model, seed, snapshot, function, source) called *name*."""
        return self.commands.node(name)

    def relation(self, name: str) -> str:
        """The fully qualified relation name of *name* in this run's namespace."""
        return self.commands.relation(name)

    def relation_exists(self, node: Any) -> bool:
        """Whether the relation of a manifest node or source exists in the warehouse."""
        return self.commands.relation_exists(node)

    def table(self, name: str) -> Rows:
        """All rows of the model, seed, snapshot or source *name*."""
        return self.commands.table(name)

    def functions_ready(self, node: Any) -> None:
        """Build the functions *node* and its upstream call (:class:`EngineHost`)."""
        self.commands.functions_ready(node)

    # -- connections (SessionConnections) ----------------------------------------------

    def adapter(self) -> Any:
        """dbt's adapter of the target, connected with the run's derived profile."""
        return self.connections.adapter()

    def query(self, sql: str) -> Rows:
        """Run *sql* in the warehouse and return the rows (a read: retried once)."""
        return self.connections.query(sql)

    def execute(self, sql: str) -> None:
        """Run a statement that returns no rows and commit it (never run twice)."""
        self.connections.execute(sql)

    def drop_connection(self) -> None:
        """After a connection fault: close this thread's connection; never raises."""
        self.connections.drop_connection()

    def retried_read(self, what: str, read: Callable[[], T]) -> T:
        """``read()`` on the model engine's connection, run once more after a dead one."""
        return self.connections.retried_read(what, read)

    # -- end ---------------------------------------------------------------------------

    def teardown(self) -> list[str]:
        """Drop everything this session created (unless ``keep``); return what was dropped/kept.

        The run role goes last, kept schemas (``keep``) passing to the identity.
        """
        try:
            return self._drop_namespace()
        finally:
            try:
                self.access.drop_run_role()
            finally:
                self.liveness.release()

    def _drop_namespace(self) -> list[str]:
        if (not self._started and not self._in_warehouse) or self.offline:
            shutil.rmtree(self.workdir, ignore_errors=True)
            return []
        adapter = self.adapter()
        if self.guard is not None:  # what the last tests wrote, outside any watched call
            try:
                with self.guard.deferred():
                    self.guard.check("the run's tests (seen when the run ended)")
            except Exception as exc:
                if faults.connection_fault(exc) is None:
                    raise  # a warehouse that cannot be reached now still gets the drop below
            finally:
                self.guard.close()
        if self.database_file is not None:
            self.shared.release()
            compat.close_adapter_connections(adapter)
            if self.settings.keep:
                return [str(self.database_file)]
            for path in self.database_file.parent.glob(self.database_file.name + "*"):
                path.unlink(missing_ok=True)
            shutil.rmtree(self.workdir, ignore_errors=True)
            return [str(self.database_file)]
        database = self.database
        # more patient than a test: the warehouse may be on its way back
        patient = faults.RetryPolicy(retries=self.settings.connect_retries + 3)

        def drop() -> list[str]:  # `drop schema if exists`: the same again if cut short
            with compat.connection(adapter, "dbtproof_teardown"):
                self.connections.connect(adapter, "dbtproof_teardown", patient)
                found = [
                    s
                    for s in compat.list_schemas(adapter, database)
                    if ns.belongs_to(s, self.schema)
                ]
                if not self.settings.keep:
                    compat.drop_schemas(
                        adapter, database, found, targets.rules_for(self.adapter_type).drop_cascades
                    )
            return found

        ours = faults.read_with_retry(drop, self.drop_connection, "the teardown's drop", patient)
        compat.close_adapter_connections(adapter)
        if not self.settings.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return [f"{database}.{s}" if database else s for s in sorted(ours)]

    # -- model unit tests --------------------------------------------------------------

    def run_model(self, request: ModelRunRequest) -> Any:
        """Run one model on fixture rows; see :meth:`dbtproof.DbtFixture.run_model`.

        Fixture files are looked for in the *request*'s folders (the caller's), then the
        project and the current folder.
        """
        request = replace(
            request, search_dirs=(*request.search_dirs, self.project.root, Path.cwd())
        )
        self.require_runner()
        what = request.label

        def read() -> Any:
            with watch(self.guard, what):
                return self.engine.run_model(request)

        try:
            if not request.apply:
                return self.retried_read(what, read)
            with faults.not_retried(what):  # apply=True writes the model's table
                return read()
        except DbtproofError as exc:
            denied = self.denied(exc)
            if denied is not None:
                raise denied from None
            raise
