"""pytest hooks and options of dbtproof: reads config, wires the pieces, no logic of its own.

The plugin is registered through the ``pytest11`` entry point. It stays idle, and
imports no dbt, unless a dbt project is in play: ``--dbt-project-dir``/``dbt_project_dir``,
or a ``dbt_project.yml`` at or above the paths given or the invocation directory.
"""

from __future__ import annotations

import atexit
import gc
import time
from pathlib import Path
from typing import Any

import pytest

from dbtproof._dbt_compat.support import unsupported_dbt
from dbtproof.errors import DbtproofError
from dbtproof.evidence.recorder import WORKEROUTPUT_KEY as EVIDENCE_KEY
from dbtproof.plugin.fixtures import dbt  # noqa: F401  (the public fixtures)
from dbtproof.plugin.options import is_xdist_controller, is_xdist_worker, option
from dbtproof.plugin.state import (
    BREACHES_KEY,
    KEPT_KEY,
    LEFTOVERS_KEY,
    NOT_OURS_KEY,
    RUN_ID_KEY,
    START_ERROR_KEY,
    TIMINGS_KEY,
    DbtproofState,
    state_key,
)
from dbtproof.project.discovery import PROJECT_FILE, dbt_own_folders, find_project_for_invocation
from dbtproof.project.targets import DEFAULT_PROTECTED_PATTERNS
from dbtproof.safety.namespace import DEFAULT_PREFIX, new_run_id
from dbtproof.session.keeper import keeper_of


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register dbtproof's command-line options and ini keys."""
    group = parser.getgroup("dbtproof", "dbt projects (dbtproof)")
    group.addoption(
        "--dbt-project-dir",
        help="Folder of dbt_project.yml (default: nearest at or above the paths given or cwd).",
    )
    group.addoption(
        "--dbt-profiles-dir", help="Folder of profiles.yml (default: dbt's own search order)."
    )
    group.addoption(
        "--dbt-target", help="dbt target to test against (default: the profile's target)."
    )
    group.addoption(
        "--dbt-vars", help="dbt vars for every invocation, as YAML/JSON: '{key: value}'."
    )
    group.addoption(
        "--dbt-keep", action="store_true", help="Keep the run's namespace at the end, and print it."
    )
    group.addoption(
        "--dbt-allow-protected-target",
        action="store_true",
        help="Allow a protected target (names matching dbt_protected_targets: prod*, live* ...).",
    )
    group.addoption(
        "--dbt-schema-prefix", help=f"Prefix of the run's schemas (default {DEFAULT_PREFIX})."
    )
    group.addoption(
        "--dbt-select", help="Collect only the dbt tests this dbt selector picks ('+customers')."
    )
    group.addoption("--dbt-exclude", help="Leave out the dbt tests this dbt selector picks.")
    group.addoption(
        "--no-dbt-tests",
        action="store_true",
        dest="no_dbt_tests",
        help="Do not collect the project's dbt data tests, unit tests and build items.",
    )
    group.addoption(
        "--no-dbt-builds",
        action="store_true",
        dest="no_dbt_builds",
        help="Do not collect a build item per model, seed and snapshot (what the collected "
        "dbt tests need is still built for them).",
    )
    group.addoption(
        "--no-dbt-grants",
        action="store_true",
        dest="no_dbt_grants",
        help="Do not collect a grants item per model, seed and snapshot with a grants: config.",
    )
    group.addoption(
        "--dbt-grant-roles",
        action="append",
        metavar="ROLE:CI_ROLE",
        help="Grant to (and check, and act as) CI_ROLE where the project names ROLE, on top "
        "of the dbt_grant_roles ini key (repeatable).",
    )
    group.addoption("--dbt-seed", action="store_true", help="Load every seed before any test.")
    group.addoption(
        "--dbt-store-failures",
        action="store_true",
        help="Keep the failing rows of dbt data tests in the namespace (dbt's --store-failures).",
    )
    group.addoption(
        "--dbt-unit-tests-gate",
        action="store_true",
        default=None,
        help="As `dbt build`: a model whose native unit test fails (or errors) is not built; "
        "it and everything downstream are skipped, naming the unit test (ini "
        "dbt_unit_tests_gate; default: every node is built and tested).",
    )
    group.addoption(
        "--dbt-changed",
        nargs="?",
        const="",
        default=None,
        metavar="REF",
        help="Collect only the dbt tests and pytest tests a change touches: nodes changed "
        "in `git diff REF` and everything downstream (dbt's state:modified+), tests calling "
        "run_model on them, changed test files (REF: the merge base with the default "
        "branch, else uncommitted changes).",
    )
    group.addoption(
        "--dbt-changed-files",
        action="append",
        metavar="PATH",
        help="As --dbt-changed, for these changed files instead of git's (what `dbtproof "
        "watch` passes; repeatable).",
    )
    group.addoption(
        "--dbt-timings",
        action="store_true",
        help="Print where the dbt session's start went (import, parse, relocation, connect ...).",
    )
    group.addoption(
        "--dbt-credentials",
        action="append",
        metavar="NAME[:key=value,...]",
        help="Mint a short-lived credential before every dbt invocation and connection, "
        "exported only as a DBT_ENV_SECRET_* variable (github-oidc:audience=..., "
        "gitlab-oidc, aws-rds-iam; repeatable).",
    )
    group.addoption(
        "--dbt-allow-untrusted-credentials",
        action="store_true",
        help="Mint credentials even for untrusted code (GitHub pull_request_target, forks).",
    )
    group.addoption(
        "--dbt-evidence",
        metavar="PATH",
        help="Write hash-chained JSON Lines evidence of the run to PATH (a new file; "
        "'{run_id}' is replaced), with each dbt invocation's artifacts beside it.",
    )
    group.addoption(
        "--dbt-report",
        metavar="PATH.html",
        help="Write one self-contained HTML page of the run: summary, failing tests, and the "
        "project's DAG coloured by test outcome.",
    )
    parser.addini("dbt_project_dir", "Folder of dbt_project.yml, relative to rootdir.")
    parser.addini("dbt_profiles_dir", "Folder of profiles.yml, relative to rootdir.")
    parser.addini("dbt_target", "dbt target to test against.")
    parser.addini(
        "dbt_evidence", "Evidence file of each run, relative to rootdir (see --dbt-evidence)."
    )
    parser.addini(
        "dbt_protected_targets",
        "Glob patterns of target names tests refuse to run against (compared casefolded, "
        "NFKC-normalised, as they look: Unicode's confusables). Empty: no protection (the "
        "header warns).",
        type="args",
        default=list(DEFAULT_PROTECTED_PATTERNS),
    )
    parser.addini("dbt_schema_prefix", f"Prefix of the run's schemas (default {DEFAULT_PREFIX}).")
    parser.addini(
        "dbt_credentials",
        "Credential providers, one NAME[:key=value,...] per line (see --dbt-credentials).",
        type="linelist",
    )
    parser.addini(
        "dbt_batch_data_tests",
        "Run dbt data tests many to a statement, with dbt's own compile, SQL and verdicts "
        "(DuckDB, PostgreSQL; default true; false: every data test in `dbt test`).",
        type="bool",
        default=True,
    )
    parser.addini(
        "dbt_shared_build",
        "Under -n on DuckDB and PostgreSQL: build the project's nodes once for the run (in "
        "<run>_shared, on as many dbt threads as workers) and split the data "
        "tests over the workers (default true; false: one worker runs every dbt item).",
        type="bool",
        default=True,
    )
    parser.addini(
        "dbt_run_role",
        "PostgreSQL: when the identity may create roles, run as a per-run role allowed only "
        "the namespace (default true).",
        type="bool",
        default=True,
    )
    parser.addini(
        "dbt_grant_roles",
        "ROLE:CI_ROLE pairs: the role that stands for a role the project's grants name, in "
        "the test warehouse (reporter:ci_reporter).",
        type="args",
        default=[],
    )
    parser.addini(
        "dbt_unit_tests_gate",
        "As `dbt build`: a failing native unit test skips its model and everything downstream "
        "(default false: every node is built and tested).",
        type="bool",
        default=False,
    )
    parser.addini(
        "dbt_require_least_privilege",
        "Refuse to start when the test identity is a superuser, owns schemas outside the "
        "namespace, or may write to a protected target's schemas (default false: a warning).",
        type="bool",
        default=False,
    )
    parser.addini(
        "dbt_connect_retries",
        "How often a connection dbtproof opens is tried again after a transient failure "
        "(refused, reset, server starting up, timeout), waiting 0.5 s, 1 s, 2 s ... (default 3).",
        default="3",
    )
    parser.addini(
        "dbt_warm_parse",
        "Keep dbt's partial parse across runs in <target-path>/dbtproof-parse (default true).",
        type="bool",
        default=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Find the dbt project; when there is one, fix the run's namespace id."""
    config.addinivalue_line("markers", "dbt: a test that uses the dbt project (dbtproof)")
    config.addinivalue_line(
        "markers",
        "dbt_role(role): run the test's dbt.query / table / run_model as the warehouse role "
        "(dbtproof's dbt.as_role)",
    )
    try:
        project_dir = find_project_for_invocation(
            config.invocation_params.dir,
            config.args,
            option(config, "dbt_project_dir", "dbt_project_dir"),
            fallback=config.rootpath,
        )
    except DbtproofError as exc:
        raise pytest.UsageError(str(exc)) from None
    if project_dir is None:
        return
    unsupported = unsupported_dbt()  # dbt v2 (the Rust engine) cannot run dbtproof
    if unsupported is not None:
        raise pytest.UsageError(unsupported)
    workerinput = getattr(config, "workerinput", None)
    keeper = keeper_of(config)
    if workerinput is not None and RUN_ID_KEY in workerinput:
        run_id, worker_id = workerinput[RUN_ID_KEY], workerinput.get("workerid")
    elif keeper is not None and keeper.run_id is not None:  # dbtproof watch: the kept run
        run_id, worker_id = keeper.run_id, None
    else:
        prefix = option(config, "dbt_schema_prefix", "dbt_schema_prefix") or DEFAULT_PREFIX
        try:
            run_id, worker_id = new_run_id(prefix), None
        except DbtproofError as exc:
            raise pytest.UsageError(str(exc)) from None
    state = DbtproofState(
        project_dir=project_dir, run_id=run_id, worker_id=worker_id, keeper=keeper
    )
    state.xdist.take_over(workerinput)
    config.stash[state_key] = state
    config.pluginmanager.register(_DbtOwnFolders(dbt_own_folders(project_dir)), "dbtproof-folders")
    state.trap_sigterm(config)
    state.secret_outputs.open(config)
    state.open_progress(config)
    config.pluginmanager.register(_SecretHooks(state), "dbtproof-secrets")
    # every minted value is a secret from the moment it exists
    state.on_minted.append(state.secrets.add)
    try:
        state.open_credentials(config)
    except DbtproofError as exc:
        raise pytest.UsageError(state.secrets.scrub(str(exc))) from None
    try:
        state.open_evidence(config)
    except DbtproofError as exc:
        raise pytest.UsageError(str(exc)) from None
    if state.evidence is not None:
        config.pluginmanager.register(_EvidenceHooks(state), "dbtproof-evidence")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "dbtproof-xdist")
    if workerinput is None and keeper is None:
        config.pluginmanager.register(_StartClock(state), "dbtproof-start-clock")
    if not config.getoption("no_dbt_tests") and not _explicit_paths(config):
        # `pytest` with no paths runs the project's dbt tests too.
        config.args.append(str(project_dir / PROJECT_FILE))


class _DbtOwnFolders:
    """Collection never walks the project's packages' install path, target path or log
    path (``dbt_packages/<pkg> -> ../..`` would have pytest collect the package's tests once
    per turn of the loop). pytest does not ask about a path named on the command line, nor
    its parents: those are collected."""

    def __init__(self, folders: tuple[Path, ...]) -> None:
        self._folders = frozenset(folders) | frozenset(folder.resolve() for folder in folders)
        self._names = frozenset(folder.name for folder in folders)

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """True for one of the folders, as given or through a symlink; else pytest decides."""
        if collection_path.name not in self._names:
            return None
        if collection_path in self._folders or collection_path.resolve() in self._folders:
            return True
        return None


def _explicit_paths(config: pytest.Config) -> bool:
    source = getattr(config, "args_source", None)
    if source is not None:
        return source == pytest.Config.ArgsSource.ARGS
    return any(not arg.startswith("-") for arg in config.invocation_params.args)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect ``dbt_project.yml`` of the project under test as its builds and dbt tests."""
    config = parent.config
    state = config.stash.get(state_key, None)
    if (
        state is None
        or file_path.name != PROJECT_FILE
        or file_path.parent != state.project_dir
        or config.getoption("no_dbt_tests")
    ):
        return None
    from dbtproof.plugin.items import DbtProjectFile

    return DbtProjectFile.from_parent(parent, path=file_path)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    """A ``dbtproof watch`` round after a save makes no item for a test function that
    ``--dbt-changed-files`` would deselect whatever its fixtures (its module is not among
    the saved files and it runs none of the affected models by name)."""
    state = collector.config.stash.get(state_key, None)
    if (
        state is None
        or state.round_affected is None
        or state.keeper is None
        or state.session is None
        or not isinstance(collector, pytest.Module | pytest.Class)
        or not collector.istestfunction(obj, name)
    ):
        return None
    from dbtproof.project.changes import model_names, untouched_function

    changed = {Path(p).resolve() for p in collector.config.getoption("dbt_changed_files") or []}
    names = model_names(state.session.manifest, state.round_affected)
    untouched = untouched_function(
        collector.path.resolve(), name, changed, names, state.keeper.called_models
    )
    return [] if untouched else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    """A dbt item errors when it, or the invocation that ran its node, wrote outside the
    namespace (see :mod:`dbtproof.safety.guard`). Every item's JUnit testcase gets the run's
    properties (run id, dbt unique id, target, namespace, commit)."""
    state = item.config.stash.get(state_key, None)
    if state is not None:
        item.user_properties.extend(state.junit_properties(item))
    guard = state.session.guard if state is not None and state.session is not None else None
    if guard is None or not hasattr(item, "dbt_outcome"):
        return (yield)
    from dbtproof.safety.guard import item_setup

    return (yield from item_setup(guard, item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """``@pytest.mark.dbt_role("reporter")``: the test's call runs as that role."""
    marker = item.get_closest_marker("dbt_role")
    if marker is None:
        return (yield)
    from dbtproof.plugin.fixtures import marked_role

    with marked_role(item, marker):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """dbt tests and builds: the call lasts as long as dbt says; an upstream error, or a
    unit test that could not run, reads as dbtproof's message, not a traceback; a test
    function's dbtproof error shows the test's lines and the message, not dbtproof's frames
    (see :mod:`dbtproof.plugin.failures`).

    Every report leaves with no secret in it: the outermost wrapper (``tryfirst``) scrubs
    it after every other plugin's changes, before the terminal, junitxml or xdist read it.
    """
    report = yield
    outcome = getattr(item, "dbt_outcome", None)
    if call.when == "call" and outcome is not None:
        report.duration = outcome.execution_time
    elif call.when == "setup" and call.excinfo is not None:
        from dbtproof.errors import DbtItemSetupError

        if isinstance(call.excinfo.value, DbtItemSetupError):
            report.longrepr = item.repr_failure(call.excinfo)
    if report.failed and call.excinfo is not None:
        from dbtproof.plugin.failures import user_error_repr

        longrepr = user_error_repr(item, call.excinfo)
        if longrepr is not None:
            report.longrepr = longrepr
    if call.when == "call" and call.excinfo is not None:
        from dbtproof.safety.faults import is_connection_error

        if is_connection_error(call.excinfo.value):
            report.dbtproof_no_verdict = True  # travels with the report to xdist's controller
    state = item.config.stash.get(state_key, None)
    if state is not None:
        state.secret_outputs.scrub_report(report)
    return report


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """A test whose connection to the warehouse failed has no verdict: an error, not a failure."""
    if report.failed and getattr(report, "dbtproof_no_verdict", False):
        return "error", "E", ("ERROR", {"red": True})
    return None


class _SecretHooks:
    """Keeps the run's secrets (:attr:`DbtproofState.secrets`) out of what pytest and
    other plugins print and write: each hook runs before theirs (``tryfirst``)."""

    def __init__(self, state: DbtproofState) -> None:
        self.state = state

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.state.secret_outputs.scrub_terminal(session.config)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Any:
        report = yield
        self.state.secret_outputs.scrub_report(report)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.state.secret_outputs.scrub_report(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # reports a worker sent (scrubbed there too) and reports made outside makereport
        self.state.secret_outputs.scrub_report(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_internalerror(self, excrepr: Any, excinfo: Any) -> None:
        self.state.secrets.scrub_longrepr(excrepr)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.state.secret_outputs.scrub_outputs(config)


class _StartClock:
    """pytest's clock for the summary's "in N s" starts at the end of
    ``pytest_sessionstart``, where the dbt session starts (and parses) when the run
    collects the project: the summary says what that start took, and the whole run."""

    def __init__(self, state: DbtproofState) -> None:
        self.state = state
        self.started = 0.0

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionstart(self, session: pytest.Session) -> Any:
        self.started = time.perf_counter()
        self.state.start_timings = None
        try:
            return (yield)
        finally:
            if self.state.start_timings is not None:
                self.state.before_clock = time.perf_counter() - self.started

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        line = self.state.start_line(time.perf_counter() - self.started)
        if line is not None and terminalreporter.verbosity >= -1:
            terminalreporter.write_line(line)


class _XdistHooks:
    """Hands the run id to each xdist worker and collects what workers kept."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        state = self.config.stash[state_key]
        node.workerinput[RUN_ID_KEY] = state.run_id
        state.xdist.hand_over(self.config, node.workerinput)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        """A worker's session that could not start ends the run as a start without ``-n``
        does: dbtproof's one message (each distinct one once) as a usage error."""
        state = self.config.stash[state_key]
        try:
            result = yield
        except BaseException:  # xdist's Interrupted, for the worker that stopped the run
            if not state.start_errors:
                raise
            result = None
        if state.start_errors:
            raise pytest.UsageError("\n".join(dict.fromkeys(state.start_errors)))
        return result

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """``--dist load`` (``-n`` alone): the project's dbt items go to one worker, which
        builds each node once, or, when the nodes are built once for the run, are split
        over the workers (see :mod:`dbtproof.plugin.scheduling`); any other ``--dist`` stays."""
        if config.getvalue("dist") != "load" or config.getoption("no_dbt_tests"):
            return None
        from dbtproof.plugin.scheduling import DbtProjectScheduling

        state = config.stash[state_key]
        return DbtProjectScheduling(config, log, split=state.xdist.share_build(config) is not None)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {})
        state = self.config.stash[state_key]
        if output.get(START_ERROR_KEY):
            state.start_errors.append(output[START_ERROR_KEY])
            # the run stops (the other workers are shut down, tearing down), its items
            # not counted as a crash; pytest_runtestloop below says why
            output["shouldstop"] = "dbtproof: a worker's session could not start"
        state.kept.extend(output.get(KEPT_KEY, []))
        state.breaches.extend(output.get(BREACHES_KEY, []))
        state.not_ours.extend(output.get(NOT_OURS_KEY, []))
        state.leftovers.extend(output.get(LEFTOVERS_KEY, []))
        if output.get(TIMINGS_KEY):
            worker = str(getattr(node, "gateway", None) and node.gateway.id)
            state.worker_timings.append((worker, output[TIMINGS_KEY]))
        if state.evidence is not None and EVIDENCE_KEY in output:
            state.evidence.take(output[EVIDENCE_KEY])


class _EvidenceHooks:
    """``--dbt-evidence``: every test's reports recorded by the process that writes the
    file; the file written when the run ends, its final digest in the summary."""

    def __init__(self, state: DbtproofState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.state.evidence is not None and self.state.worker_id is None:
            self.state.evidence.on_report(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            self.state.finish_evidence(session.config, int(session.exitstatus))
        except (DbtproofError, OSError) as exc:
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"dbtproof: evidence not written: {exc}", red=True)
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        evidence = self.state.evidence
        if evidence is None or evidence.written is None:
            return
        terminalreporter.section("dbtproof: evidence")
        if evidence.report_path is not None:
            terminalreporter.write_line(f"report {evidence.report_path}")
        if evidence.path is None:
            return
        terminalreporter.write_line(
            f"evidence {evidence.path} ({evidence.written['seq'] + 1} records), "
            f"final digest sha256:{evidence.written['digest']}"
        )
        terminalreporter.write_line(
            f"check it: dbtproof evidence verify {evidence.path} "
            f"--digest sha256:{evidence.written['digest']}"
        )


def _collects_project(config: pytest.Config, project_file: Path) -> bool:
    """Whether this run collects ``dbt_project.yml`` (its builds and dbt tests)."""
    if config.getoption("no_dbt_tests"):
        return False
    for arg in config.args:
        for base in (config.invocation_params.dir, config.rootpath):
            path = (base / arg.split("::", 1)[0]).resolve()
            if path == project_file or (path.is_dir() and project_file.is_relative_to(path)):
                return True
    return False


def pytest_sessionstart(session: pytest.Session) -> None:
    """Open the dbt session now if this run collects the project's dbt tests; else later.

    A run that does not collect ``dbt_project.yml`` parses and connects only when a
    collected test uses the ``dbt`` fixture (see :meth:`DbtproofState.start_session`), so
    pure-Python tests inside a dbt project pay nothing for dbt.
    """
    config = session.config
    state = config.stash.get(state_key, None)
    if state is None:
        return
    if state.keeper is not None and state.keeper.session is not None:
        # A ``dbtproof watch`` round after a save: the kept session is taken over now,
        # whatever the round collects, so that what the save made stale is known before
        # collecting (the round makes items only for what the save affects) and is never
        # lost by a round that runs no test using ``dbt``.
        state.start_session(config)
        return
    if not _collects_project(config, state.project_dir / PROJECT_FILE):
        state.header = (
            f"dbtproof: project {state.project_dir}: the dbt session starts when a collected "
            f"test uses the `dbt` fixture"
        )
        return
    if is_xdist_controller(config):
        state.xdist.share_parse(config)
    if is_xdist_worker(config):
        try:
            state.start_session(config)
        except pytest.UsageError as exc:  # raised when collection begins (pytest_collection)
            state.start_errors.append(str(exc))
        return
    state.start_session(config)
    if is_xdist_controller(config):
        # The controller runs no test: it proved, once and with one clear message, that
        # the project parses, stays in its namespace and can connect; its workers load
        # its parse instead of parsing again.
        assert state.session is not None
        state.xdist.share_build(config)  # decided while the session says what the target is
        state.session.settings.keep = False
        state.teardown(config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """An xdist worker whose session could not start at pytest_sessionstart stops here, a
    usage error: the worker then ends as xdist expects, its message handed to the
    controller (a worker's pytest_sessionstart may not raise: it would end unannounced)."""
    state = session.config.stash.get(state_key, None)
    if state is not None and state.start_errors and is_xdist_worker(session.config):
        raise pytest.UsageError(state.start_errors[0])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the dbt session before any test runs when a collected test uses ``dbt``."""
    state = config.stash.get(state_key, None)
    if state is None:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if state.session is None and any("dbt" in getattr(i, "fixturenames", ()) for i in items):
        state.start_session(config)
        if reporter is not None and state.header and not is_xdist_worker(config):
            reporter.write_line(state.header)
    ref = config.getoption("dbt_changed")
    files = config.getoption("dbt_changed_files") or []
    if ref is None and not files:
        return
    from dbtproof.project.changes import keep_changed

    manifest = state.session.manifest if state.session is not None else None
    try:
        called = state.keeper.called_models if state.keeper is not None else None
        kept, deselected, line = keep_changed(
            items, manifest, state.project_dir, ref, files, called, state.round_affected
        )
    except DbtproofError as exc:
        raise pytest.UsageError(str(exc)) from None
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    if reporter is not None and not is_xdist_worker(config):
        reporter.write_line(f"dbtproof: {line}")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """One line: project, profiles.yml and its sha256, target, adapter, namespace."""
    state = config.stash.get(state_key, None)
    if state is None or state.header is None:
        return None
    return [state.header]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop everything the run created (also after failures and Ctrl-C), unless --dbt-keep.

    A run that wrote outside its namespace, or could not drop it, exits non-zero,
    whatever its tests said.
    """
    state = session.config.stash.get(state_key, None)
    if state is not None:
        state.teardown(session.config)
        state.xdist.remove(session.config)
        if (state.breaches or state.leftovers) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Put back the SIGTERM handler the run replaced; hand what the session froze back to
    the garbage collector (last: pytest's own collection at its end skips it), unless a
    ``dbtproof watch`` loop runs the rounds: it keeps them frozen between rounds itself."""
    state = config.stash.get(state_key, None)
    if state is not None:
        state.release_sigterm()
    if state is None or state.keeper is None:
        gc.unfreeze()
    if state is not None:
        # At the interpreter's exit, what is still alive is frozen first: its last
        # collection then skips dbt's modules and manifests (about 2 s of a worker's exit
        # on a 1,000-model project, a second of the controller's). Objects in reference
        # cycles alive at exit are then not finalized (CPython does not promise it either);
        # the run's connections and files were closed by its teardown.
        atexit.unregister(gc.freeze)
        atexit.register(gc.freeze)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Every write outside the namespace, once; with ``--dbt-keep``, what was kept."""
    state = config.stash.get(state_key, None)
    if state is None:
        return
    if state.worker_timings:
        terminalreporter.section("dbtproof: start of each xdist worker (--dbt-timings)")
        for worker, lines in sorted(state.worker_timings):
            for line in lines:
                terminalreporter.write_line(f"{worker}: {line}")
    if state.leftovers:
        terminalreporter.section("dbtproof: left in the warehouse", red=True)
        for line in state.leftovers:
            terminalreporter.write_line(line)
    if state.breaches:
        terminalreporter.section("dbtproof: writes outside the namespace", red=True)
        for line in dict.fromkeys(state.breaches):
            terminalreporter.write_line(line)
    if state.not_ours:
        terminalreporter.section("dbtproof: outside the namespace, not this run's")
        for line in dict.fromkeys(state.not_ours):
            terminalreporter.write_line(line)
    if not state.kept:
        return
    terminalreporter.section("dbtproof: kept (--dbt-keep)")
    for item in sorted(state.kept):
        terminalreporter.write_line(f"kept {item}")


def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: object, right: object
) -> list[str] | None:
    """Explain a failed ``rows == expected`` with a row diff."""
    from dbtproof.compare.diff import explain_comparison

    return explain_comparison(op, left, right)
