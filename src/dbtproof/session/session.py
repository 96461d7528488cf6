"""One dbt session per pytest worker: project + profile + namespace + runner.

:class:`DbtSession` is the object behind the ``dbt`` fixture. It is started once
per worker (parse, isolation guard, connection check), serves every test of that
worker, and drops everything it created when the session ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbtproof import _dbt_compat as compat
from dbtproof.credentials.profile import bind_to_target
from dbtproof.engine.request import ModelRunRequest
from dbtproof.errors import AccessDenied, DbtproofError, ProjectConfigError
from dbtproof.project import targets
from dbtproof.project.discovery import (
    DbtProject,
    load_profile_target,
)
from dbtproof.safety import faults
from dbtproof.safety import namespace as ns
from dbtproof.safety.guard import Guard, start_guard, watch
from dbtproof.safety.liveness import LivenessMark
from dbtproof.safety.relocation import Relocation
from dbtproof.session import parse_cache
from dbtproof.session.access import SessionAccess
from dbtproof.session.commands import SessionCommands
from dbtproof.session.connections import SessionConnections
from dbtproof.session.derived_profile import DerivedProfile
from dbtproof.session.file_access import (
    FileAccess,
)
from dbtproof.session.parsing import SessionParsing
from dbtproof.session.placement import SessionPlacement
from dbtproof.session.runner import DbtRunner
from dbtproof.session.settings import SessionSettings, check_protected
from dbtproof.session.shared_build import SharedAttachment, SharedPlace, SharedSchemas
from dbtproof.session.teardown import SessionTeardown

if TYPE_CHECKING:
    from dbtproof.engine.inputs import Schema
    from dbtproof.engine.model import ModelEngine


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
        #: The derived profile dbt runs with (namespace, run role, DuckDB's lockdown).
        self.profile = DerivedProfile(self)
        #: The parse: its runtime config, the warm-parse cache it used.
        self.parsing = SessionParsing(self)
        #: Opens, retries and uses the connections (queries, statements).
        self.connections = SessionConnections(self)
        #: The run role, the identity's rights, the grants, the role acted as.
        self.access = SessionAccess(self)
        #: dbt's commands, what they built, the nodes tests name.
        self.commands = SessionCommands(self)
        #: Moves manifests into the namespace (or the run-level build's place).
        self.placement = SessionPlacement(self)
        #: Drops what the session made (``session.teardown.run()``).
        self.teardown = SessionTeardown(self)
        #: What was moved into the namespace after parsing (set by :meth:`start`).
        self.relocation: Relocation | None = None
        #: Watches what the run writes outside the namespace (None: adapter not watched).
        self.guard: Guard | None = None
        #: DuckDB: the files the run's SQL may touch (None: not worked out yet).
        self.file_access: FileAccess | None = None
        self.started = False
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
        self.in_warehouse = False
        #: The derived profile's settings that read minted variables, as written: rendered
        #: anew onto the adapter's credentials before dbtproof opens a connection.
        self.minted_settings: dict[str, Any] = {}
        #: Where the run-level build lives (None: this worker builds what it runs itself).
        self.shared_place = (
            SharedPlace.of_run(settings.shared_build, settings.run_id, self.adapter_type)
            if settings.shared_build is not None and settings.parse_from is not None
            else None
        )
        #: This worker's side of the run-level build's place: DuckDB's file attached to
        #: this process's database, or PostgreSQL's schemas (shared with a run role).
        self.shared: SharedAttachment | SharedSchemas
        if self.adapter_type == "duckdb":
            self.shared = SharedAttachment(
                self.shared_place,
                lambda: compat.open_dedicated_connection(self.adapter(), "dbtproof_shared"),
                self.placement.shared_manifest,
            )
        else:
            self.shared = SharedSchemas(
                self.shared_place,
                self.placement.shared_manifest,
                self.access.share_run_schemas,
                self.access.hand_over_to_run,
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
        profiles_dir = self.profile.write()
        self.profile.read_minted_settings(profiles_dir)
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
            self.parsing.parse(self._require_runner_object())
        self.runner.threads = compat.runtime_threads(self.runtime_config)
        with timings.step("relocation + isolation check"):
            self.relocation = self.move_into_namespace(self.runner.manifest)
        if self.adapter_type == "duckdb":
            self.profile.limit_file_access()
        if not self.settings.runs_tests and targets.runs_in_process(
            self.adapter_type, self.profile_target.raw_output
        ):
            self.offline = self.started = True
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
        self.started = True
        if self.settings.seed:
            with timings.step("seed"):
                self.commands.seed()
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
        self.in_warehouse = True
        if self.placement.reads_loaded_sources():
            with timings.step("sources loaded outside"):
                self.connections.start_step(
                    "the sources' lookup", self.placement.read_loaded_sources
                )
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
            self.connections.start_step("the grants' setup", self.access.prepare_grants)
        with timings.step("graph variable"):
            compat.build_graph_variable(self.manifest)
        access = self.access
        place = self.shared_place
        shared_catalog = (place.catalog,) if place is not None and place.catalog else ()
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
                    run_databases=(*shared_catalog, *self.settings.own_places),
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
                self.parsing.parse(self._require_runner_object(), changed=True)
            with self.timings.step("relocation + isolation check"):
                self.relocation = self.move_into_namespace(self.runner.manifest)
                self.access.create_role_schemas(self.relocation)
            with self.timings.step("grants"):
                self.access.prepare_grants()
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

    def denied(self, exc: BaseException, relation: str | None = None) -> AccessDenied | None:
        """The :class:`AccessDenied` of a read refused while acting as a role, else None
        (:meth:`SessionAccess.denied`; :class:`ConnectionHost`)."""
        return self.access.denied(exc, relation)

    def write_profile(self) -> None:
        """Write the derived profile anew (:meth:`DerivedProfile.write`; :class:`AccessHost`)."""
        self.profile.write()

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
        """Relocate *manifest* into the namespace (:meth:`SessionPlacement.move_into_namespace`)."""
        return self.placement.move_into_namespace(manifest)

    # -- the engine's host (EngineHost) ------------------------------------------------

    def adapter(self) -> Any:
        """dbt's adapter of the target, connected with the run's derived profile."""
        return self.connections.adapter()

    def functions_ready(self, node: Any) -> None:
        """Build the functions *node* and its upstream call (:class:`EngineHost`)."""
        self.commands.functions_ready(node)

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
            with watch(self.guard, what) as watched:
                return self.engine.run_model(request, watched.wrote_nothing)

        try:
            if not request.apply:
                return self.connections.retried_read(what, read)
            with faults.not_retried(what):  # apply=True writes the model's table
                return read()
        except DbtproofError as exc:
            denied = self.access.denied(exc)
            if denied is not None:
                raise denied from None
            raise
