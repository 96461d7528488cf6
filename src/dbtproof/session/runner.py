"""The one place that invokes dbt.

Every invocation goes through :class:`DbtRunner`: in-process through dbt's public
``dbtRunner``, one at a time (dbt's runner is not thread-safe), with explicit
``--project-dir --profiles-dir --profile --target --target-path --log-path``, with
every other flag dbt would read from the environment (``DBT_EMPTY``, ``DBT_DEFER``,
``DBT_STATE``, ``DBT_FULL_REFRESH``, ``DBT_WARN_ERROR``, ...) removed from
``os.environ`` while dbt runs, so that stray ``DBT_*`` variables cannot change a run,
with the manifest parsed once and reused, and with the run's minted credentials
(``--dbt-credentials``) exported only while dbt runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbtproof.errors import DbtproofError, DbtRunError
from dbtproof.project.nodes import resource_type

if TYPE_CHECKING:
    from dbtproof.credentials import CredentialSet
    from dbtproof.session.progress import Progress

_FAILED = frozenset({"error", "fail", "runtime error"})
#: Where to read more when dbt said too little: its debug log, which a run writes only
#: when it keeps its folder (the folder is removed otherwise, and writing the log costs
#: about a tenth of every invocation).
SEE_DBT_LOG = "see dbt's debug log, logs/dbt.log in the run's folder, written with --dbt-keep"
_LOCK = threading.RLock()
#: The commands whose nodes create relations and rename them into place (a view or table
#: is built as ``<name>__dbt_tmp``, the old one renamed to ``<name>__dbt_backup``, the new
#: one renamed to ``<name>``): dbt's relation cache must know their schemas before any
#: node runs (see :func:`_cache_args`).
_MATERIALIZING = frozenset({"build", "run", "seed", "snapshot"})


@dataclass(frozen=True)
class NodeResult:
    """What one node did in an invocation."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    message: str | None
    failures: int | None = None
    compiled_code: str | None = None
    execution_time: float = 0.0

    @property
    def failed(self) -> bool:
        """True for errors and failing tests (``warn`` and ``skipped`` are not failures)."""
        return self.status in _FAILED

    @property
    def is_hook(self) -> bool:
        """True for an ``on-run-start`` / ``on-run-end`` hook of the invocation."""
        return self.resource_type == "operation"


@dataclass
class InvocationResult:
    """The outcome of one dbt invocation: the command and each node's result."""

    command: list[str]
    success: bool
    nodes: list[NodeResult] = field(default_factory=list)

    @property
    def failed_nodes(self) -> list[NodeResult]:
        """The nodes that errored or failed."""
        return [node for node in self.nodes if node.failed]

    def status_of(self, name: str) -> str:
        """Status of the node named *name* (or with that unique id)."""
        for node in self.nodes:
            if name in (node.name, node.unique_id):
                return node.status
        raise KeyError(name)

    def invocation_failure(self) -> str | None:
        """Why the whole invocation failed apart from its nodes, or None.

        A failing ``on-run-start`` / ``on-run-end`` hook (dbt then reports failure though
        every node may have passed), or a failure dbt reported without any failing node.
        """
        hooks = [node for node in self.nodes if node.is_hook and node.failed]
        if hooks:
            return "\n".join(
                f"hook {node.unique_id} failed: {(node.message or '').strip()}" for node in hooks
            )
        if not self.success and not self.failed_nodes:
            return f"dbt reported that the invocation failed, though no node failed ({SEE_DBT_LOG})"
        return None

    def describe_failures(self) -> str:
        """Failing nodes, one per line, with dbt's message for each."""
        return "\n".join(
            f"  - {node.unique_id}: {node.status}: {node.message or ''}".rstrip()
            for node in self.failed_nodes
        )


@dataclass(frozen=True)
class Invocation:
    """One dbt invocation as it happened, told to the runner's observers (the evidence)."""

    #: The dbt command (``build``, ``test``, ``parse``, ``ls`` ...).
    command: str
    #: Every argument dbt was given.
    args: list[str]
    #: dbt's invocation id.
    invocation_id: str
    success: bool
    #: Each node's result (``ls``: none).
    nodes: list[NodeResult]
    started_at: float
    ended_at: float
    #: Where dbt wrote ``run_results.json`` / ``manifest.json`` (when it was asked to).
    target_path: Path


def _node_result(run_result: Any) -> NodeResult:
    status = getattr(run_result.status, "value", run_result.status)
    node = getattr(run_result, "node", None)
    if node is None:
        # dbt < 1.9 reports a failing on-run-start/on-run-end hook as a result without a
        # node: "on-run-start failed, error: ..."
        message = str(run_result.message or "")
        hook = message.split(" failed", 1)[0] if " failed" in message else "hook"
        return NodeResult(
            unique_id=f"operation.{hook}",
            name=hook,
            resource_type="operation",
            status=str(status),
            message=message,
        )
    return NodeResult(
        unique_id=node.unique_id,
        name=node.name,
        resource_type=resource_type(node),
        status=str(status),
        message=run_result.message,
        failures=run_result.failures,
        compiled_code=getattr(node, "compiled_code", None),
        execution_time=float(getattr(run_result, "execution_time", 0.0) or 0.0),
    )


class FlagVariables:
    """The environment variables each dbt command reads as flags, and hiding them.

    Walked from dbt's click commands once per command (see
    :func:`dbtproof._dbt_compat.flag_env_vars`) and kept: a :class:`DbtRunner` holds one.
    """

    def __init__(self) -> None:
        self._by_command: dict[str, list[tuple[frozenset[str], tuple[str, ...]]]] = {}

    def of(self, command: str) -> list[tuple[frozenset[str], tuple[str, ...]]]:
        """``(an option's spellings, its variables)`` for each flag of ``dbt <command>``."""
        if command not in self._by_command:
            from dbtproof import _dbt_compat as compat

            self._by_command[command] = compat.flag_env_vars(command)
        return self._by_command[command]

    def hidden(self, args: Sequence[str], environ: Any = None) -> list[str]:
        """The variables of *environ* (``os.environ``) that would set a flag of ``dbt <args>``.

        A variable whose option *args* spell out is left alone (dbt takes the command line
        first, and the project's ``env_var()`` may read it); so are variables that are no
        flag (``DBT_ENV_SECRET_*``, ``DBT_ENV_CUSTOM_ENV_*``, a profile's ``DBT_USER``).
        """
        environ = os.environ if environ is None else environ
        given = {arg.split("=", 1)[0] for arg in args if arg.startswith("-")}
        hidden: list[str] = []
        for spellings, names in self.of(args[0]):
            if spellings & given:
                continue
            hidden += [name for name in names if name in environ and name not in hidden]
        return hidden

    @contextmanager
    def removed(self, args: Sequence[str]) -> Iterator[list[str]]:
        """Remove from ``os.environ`` the flag variables of ``dbt <args>`` while dbt runs.

        Yields their names; they are put back afterwards, whatever happens. Callers hold
        the runner's lock, so no other invocation sees the environment in between.
        """
        saved = {name: os.environ.pop(name) for name in self.hidden(args)}
        try:
            yield list(saved)
        finally:
            os.environ.update(saved)


def _selection_args(
    select: str | Sequence[str] | None, exclude: str | Sequence[str] | None
) -> list[str]:
    args: list[str] = []
    for flag, value in (("--select", select), ("--exclude", exclude)):
        if value:
            args += [flag, *([value] if isinstance(value, str) else list(value))]
    return args


@dataclass
class DbtRunner:
    """Runs dbt commands in-process for one project, profile, target and namespace."""

    project_dir: Path
    profiles_dir: Path
    profile: str
    target: str
    target_path: Path
    log_path: Path
    vars: dict[str, Any] = field(default_factory=dict)
    manifest: Any = None
    #: The flag variables of each command, walked once (hidden while dbt runs).
    flag_variables: FlagVariables = field(default_factory=FlagVariables, repr=False, compare=False)
    #: Minted credentials, exported (fresh) around each invocation and removed after it.
    credentials: CredentialSet | None = field(default=None, repr=False, compare=False)
    #: The adapter type, and the query comment (a macro body: see
    #: :func:`dbtproof._dbt_compat.comment_macro`) put on every query dbt runs.
    adapter_type: str | None = None
    query_comment: str | None = field(default=None, repr=False, compare=False)
    #: Told of every invocation, after it; with any, dbt writes ``run_results.json`` and
    #: ``manifest.json`` for the commands that run nodes, for them to keep.
    observers: list[Callable[[Invocation], object]] = field(
        default_factory=list, repr=False, compare=False
    )
    #: Whether dbt writes its debug log (``dbt.log`` in *log_path*; dbtproof: only when
    #: the run's folder is kept).
    file_log: bool = True
    #: Shows what each invocation is doing on the terminal
    #: (:class:`dbtproof.session.progress.Progress`); None: nothing shown.
    progress: Progress | None = field(default=None, repr=False, compare=False)
    #: The threads dbt runs nodes on (the target's, set once parsed); None: unknown, the
    #: relation cache is filled as for several (see :func:`_cache_args`).
    threads: int | None = None

    def base_args(self) -> list[str]:
        """The flags every invocation carries."""
        return [
            "--project-dir",
            str(self.project_dir),
            "--profiles-dir",
            str(self.profiles_dir),
            "--profile",
            self.profile,
            "--target",
            self.target,
            "--target-path",
            str(self.target_path),
            "--log-path",
            str(self.log_path),
            "--no-send-anonymous-usage-stats",
            "--no-use-colors",
            "--log-level",
            "none",
            "--log-level-file",
            "debug" if self.file_log else "none",
        ]

    def log_hint(self) -> str:
        """Where dbt's debug log of this runner's invocations is, or how to have one."""
        return f"dbt's log: {self.log_path / 'dbt.log'}" if self.file_log else SEE_DBT_LOG

    def _vars_args(self, extra: dict[str, Any] | None) -> list[str]:
        merged = {**self.vars, **(extra or {})}
        return ["--vars", json.dumps(merged, default=str)] if merged else []

    def _invoke(
        self,
        args: list[str],
        use_manifest: bool = True,
        manifest: Any = None,
        without_graph_variable: bool = False,
        without_test_edges: bool = False,
    ) -> Any:
        from dbtproof import _dbt_compat as compat

        manifest = (manifest or self.manifest) if use_manifest else None
        callbacks = []
        if self.query_comment and self.adapter_type and manifest is not None:
            callbacks.append(
                compat.query_comment_callback(self.adapter_type, manifest, self.query_comment)
            )
        shown: Any = nullcontext()
        if self.progress is not None:
            callbacks.append(compat.node_progress_callback(self.progress.node))
            shown = self.progress.phase(f"dbt {args[0]}")
        with _LOCK, shown:
            if manifest is not None:
                compat.reset_compilation_state(manifest)
            runner = compat.dbt_runner(manifest, callbacks)
            exported = self.credentials.exported() if self.credentials else nullcontext()
            started = time.time()
            try:
                with (
                    exported,
                    self.flag_variables.removed(args),
                    compat.indexed_fqn_selection(),
                    compat.quick_graph_summary(),
                    compat.lean_events(),
                    compat.graph_variable_deferred() if without_graph_variable else nullcontext(),
                    compat.build_without_test_edges() if without_test_edges else nullcontext(),
                    compat.warnings_as_the_dbt_cli(),
                ):
                    outcome = runner.invoke(args)
            finally:
                compat.hide_dbt_file_logger()
            invocation_id = compat.invocation_id()
        if isinstance(outcome.exception, KeyboardInterrupt):
            # dbtRunner returns every exception, Ctrl-C included: let pytest see it.
            raise outcome.exception
        if self.observers:
            self._tell(args, outcome, invocation_id, started)
        return outcome

    def _tell(self, args: list[str], outcome: Any, invocation_id: str, started: float) -> None:
        """Tell each observer what the invocation did."""
        results = getattr(outcome.result, "results", None)
        invocation = Invocation(
            command=args[0],
            args=list(args),
            invocation_id=invocation_id,
            success=bool(outcome.success),
            nodes=[_node_result(r) for r in results or []],
            started_at=started,
            ended_at=time.time(),
            target_path=self.target_path,
        )
        for observer in self.observers:
            observer(invocation)

    def _json_args(self) -> list[str]:
        """``--no-write-json``, unless observers keep dbt's artifacts."""
        return [] if self.observers else ["--no-write-json"]

    def parse(self, vars: dict[str, Any] | None = None, graph_variable: bool = True) -> Any:
        """Parse the project and return dbt's manifest.

        Without *vars*, the session's parse: the manifest is kept for every later
        invocation. With *vars* (merged over the session's), a separate parse for the
        invocations that pass those vars, as dbt reads vars in configs at parse time.
        *graph_variable* false: dbt leaves its ``graph`` variable unbuilt, for a caller
        that moves the nodes first (``compat.build_graph_variable`` then).
        """
        command = ["parse", *self.base_args(), *self._vars_args(vars), "--no-write-json"]
        result = self._invoke(
            command, use_manifest=False, without_graph_variable=not graph_variable
        )
        if not result.success or result.result is None:
            with_vars = f" with vars {json.dumps(vars, default=str)}" if vars else ""
            raise DbtproofError(
                f"dbtproof: dbt could not parse the project in {self.project_dir}{with_vars}:\n"
                f"{_exception_text(result.exception)}"
            )
        if vars is None:
            self.manifest = result.result
        return result.result

    def invoke(
        self,
        command: str,
        *,
        select: str | Sequence[str] | None = None,
        exclude: str | Sequence[str] | None = None,
        vars: dict[str, Any] | None = None,
        full_refresh: bool = False,
        extra_args: Sequence[str] = (),
        manifest: Any = None,
    ) -> InvocationResult:
        """Run ``dbt <command>`` with the session's flags and return each node's result.

        *manifest* replaces the session's parse (one parsed with other vars). A dbt
        error that stops the whole invocation (a compile error, a bad selector) raises
        :class:`DbtRunError`; failing nodes are left to the caller to judge.
        """
        args = [
            command,
            *self.base_args(),
            *_selection_args(select, exclude),
            *self._vars_args(vars),
            *self._json_args(),
            *_cache_args(command, _threads_of(extra_args, self.threads)),
            *(["--full-refresh"] if full_refresh else []),
            *extra_args,
        ]
        from dbtproof import _dbt_compat as compat

        nodes_only = command == "build" and compat.selects_no_test(
            [select] if isinstance(select, str) else list(select or ()),
            extra_args,
            manifest or self.manifest,
            exclude=[exclude] if isinstance(exclude, str) else list(exclude or ()),
        )
        outcome = self._invoke(args, manifest=manifest, without_test_edges=nodes_only)
        if outcome.exception is not None and outcome.result is None:
            raise DbtRunError(
                f"dbtproof: `dbt {command}` failed before running any node:\n"
                f"{_exception_text(outcome.exception)}"
            )
        nodes = [_node_result(r) for r in getattr(outcome.result, "results", None) or []]
        return InvocationResult(command=args, success=bool(outcome.success), nodes=nodes)

    def list_unique_ids(
        self,
        select: str | Sequence[str] | None,
        exclude: str | Sequence[str] | None,
        resource_types: Sequence[str],
    ) -> list[str]:
        """Unique ids that ``dbt ls`` selects with dbt's own selector syntax."""
        args = [
            "ls",
            *self.base_args(),
            *_selection_args(select, exclude),
            *self._vars_args(None),
            *[arg for rt in resource_types for arg in ("--resource-type", rt)],
            "--output",
            "json",
            "--output-keys",
            "unique_id",
        ]
        # dbt 1.8 prints each listed node with print(): not on the caller's stdout
        with contextlib.redirect_stdout(io.StringIO()):
            outcome = self._invoke(args)
        if not outcome.success:
            raise DbtRunError(
                f"dbtproof: dbt could not select {select!r} (exclude {exclude!r}):\n"
                f"{_exception_text(outcome.exception)}"
            )
        return [json.loads(line)["unique_id"] for line in outcome.result or []]


def _threads_of(extra_args: Sequence[str], threads: int | None) -> int | None:
    """The threads of an invocation: its own ``--threads N`` when given, else *threads*."""
    args = list(extra_args)
    for index, arg in enumerate(args):
        value = arg.split("=", 1)[1] if arg.startswith("--threads=") else None
        if arg == "--threads" and index + 1 < len(args):
            value = args[index + 1]
        if value is not None and value.isdigit():
            return int(value)
    return threads


def _cache_args(command: str, threads: int | None = None) -> list[str]:
    """How dbt's relation cache is filled for ``dbt <command>``.

    A command that materializes nodes gets dbt's own default, the cache populated before
    any node runs, for the schemas of the selected nodes only (``--cache-selected-only``:
    in a namespace, the few schemas that selection writes). Unpopulated, each thread that
    first misses a schema lists it and adds what it found: with two threads, both miss,
    and the slower listing puts back a view the other thread has just renamed to
    ``__dbt_backup``, whose rename of ``__dbt_tmp`` into place then fails ("Cache
    inconsistency detected: in rename, new key ... already in cache"). The schemas are
    listed once either way (a miss lists the whole schema too); populated, never twice.

    The race needs two threads: on one (*threads* 1), the cache stays unpopulated, as
    populating it also runs the adapter's query of the links between relations (on
    PostgreSQL, over ``pg_depend``/``pg_rewrite`` of the whole database) each time. Other
    commands (``test``, ``compile``) rename nothing: the cache stays unpopulated (dbt
    would list every schema of the project for a ``dbt test``).
    """
    if command in _MATERIALIZING and (threads is None or threads > 1):
        return ["--populate-cache", "--cache-selected-only"]
    return ["--no-populate-cache"]


def _exception_text(exception: BaseException | None) -> str:
    if exception is None:
        return f"(dbt gave no reason; {SEE_DBT_LOG})"
    text = str(exception).strip() or type(exception).__name__
    return "\n".join(f"  {line}" for line in text.splitlines())
