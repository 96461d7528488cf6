"""pytest hooks and options of dbtproof: reads config, wires the pieces, no logic of its own.

The plugin is registered through the ``pytest11`` entry point. It stays idle, and
imports no dbt, unless a dbt project is in play: ``--dbt-project-dir``/``dbt_project_dir``,
or a ``dbt_project.yml`` at or above the paths given or the invocation directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dbtproof._state import (
    BREACHES_KEY,
    KEPT_KEY,
    LEFTOVERS_KEY,
    RUN_ID_KEY,
    DbtproofState,
    is_xdist_controller,
    is_xdist_worker,
    option,
    state_key,
)
from dbtproof.errors import DbtError
from dbtproof.fixtures import dbt  # noqa: F401  (the public fixtures)
from dbtproof.namespace import DEFAULT_PREFIX, new_run_id
from dbtproof.project import PROJECT_FILE, find_project_for_invocation
from dbtproof.targets import DEFAULT_PROTECTED_PATTERNS


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
    group.addoption("--dbt-seed", action="store_true", help="Load every seed before any test.")
    group.addoption(
        "--dbt-store-failures",
        action="store_true",
        help="Keep the failing rows of dbt data tests in the namespace (dbt's --store-failures).",
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
    parser.addini("dbt_project_dir", "Folder of dbt_project.yml, relative to rootdir.")
    parser.addini("dbt_profiles_dir", "Folder of profiles.yml, relative to rootdir.")
    parser.addini("dbt_target", "dbt target to test against.")
    parser.addini(
        "dbt_protected_targets",
        "Glob patterns of target names tests refuse to run against (compared casefolded, "
        "NFKC-normalised, lookalike letters as Latin).",
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
        "dbt_run_role",
        "PostgreSQL: when the identity may create roles, run as a per-run role allowed only "
        "the namespace (default true).",
        type="bool",
        default=True,
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
    try:
        project_dir = find_project_for_invocation(
            config.invocation_params.dir,
            config.args,
            option(config, "dbt_project_dir", "dbt_project_dir"),
            fallback=config.rootpath,
        )
    except DbtError as exc:
        raise pytest.UsageError(str(exc)) from None
    if project_dir is None:
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and RUN_ID_KEY in workerinput:
        run_id, worker_id = workerinput[RUN_ID_KEY], workerinput.get("workerid")
    else:
        prefix = option(config, "dbt_schema_prefix", "dbt_schema_prefix") or DEFAULT_PREFIX
        try:
            run_id, worker_id = new_run_id(prefix), None
        except DbtError as exc:
            raise pytest.UsageError(str(exc)) from None
    state = DbtproofState(project_dir=project_dir, run_id=run_id, worker_id=worker_id)
    config.stash[state_key] = state
    state.trap_sigterm(config)
    state.open_secrets(config)
    config.pluginmanager.register(_SecretHooks(state), "dbtproof-secrets")
    # every minted value is a secret from the moment it exists
    state.on_minted.append(state.secrets.add)
    try:
        state.open_credentials(config)
    except DbtError as exc:
        raise pytest.UsageError(state.secrets.scrub(str(exc))) from None
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "dbtproof-xdist")
    if not config.getoption("no_dbt_tests") and not _explicit_paths(config):
        # `pytest` with no paths runs the project's dbt tests too.
        config.args.append(str(project_dir / PROJECT_FILE))


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
    from dbtproof.items import DbtProjectFile

    return DbtProjectFile.from_parent(parent, path=file_path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    """A dbt item errors when it, or the invocation that ran its node, wrote outside the
    namespace (see :mod:`dbtproof.guard`)."""
    state = item.config.stash.get(state_key, None)
    guard = state.session.guard if state is not None and state.session is not None else None
    if guard is None or not hasattr(item, "dbt_outcome"):
        return (yield)
    from dbtproof.guard import item_setup

    return (yield from item_setup(guard, item))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """dbt tests and builds: the call lasts as long as dbt says; an upstream error, or a
    unit test that could not run, reads as dbtproof's message, not a traceback.

    Every report leaves with no secret in it: the outermost wrapper (``tryfirst``) scrubs
    it after every other plugin's changes, before the terminal, junitxml or xdist read it.
    """
    report = yield
    outcome = getattr(item, "dbt_outcome", None)
    if call.when == "call" and outcome is not None:
        report.duration = outcome.execution_time
    elif call.when == "setup" and call.excinfo is not None:
        from dbtproof.errors import (
            DbtConnectionFault,
            DbtHookError,
            DbtUnitTestError,
            DbtUpstreamError,
        )

        setup_errors = (DbtUpstreamError, DbtUnitTestError, DbtHookError, DbtConnectionFault)
        if isinstance(call.excinfo.value, setup_errors):
            report.longrepr = item.repr_failure(call.excinfo)
    if call.when == "call" and call.excinfo is not None:
        from dbtproof.faults import is_connection_error

        if is_connection_error(call.excinfo.value):
            report.dbtproof_no_verdict = True  # travels with the report to xdist's controller
    state = item.config.stash.get(state_key, None)
    if state is not None:
        state.scrub_report(report)
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
        self.state.scrub_terminal(session.config)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Any:
        report = yield
        self.state.scrub_report(report)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.state.scrub_report(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # reports a worker sent (scrubbed there too) and reports made outside makereport
        self.state.scrub_report(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_internalerror(self, excrepr: Any, excinfo: Any) -> None:
        self.state.secrets.scrub_longrepr(excrepr)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.state.scrub_outputs(config)


class _XdistHooks:
    """Hands the run id to each xdist worker and collects what workers kept."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[RUN_ID_KEY] = self.config.stash[state_key].run_id

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {})
        self.config.stash[state_key].kept.extend(output.get(KEPT_KEY, []))
        self.config.stash[state_key].breaches.extend(output.get(BREACHES_KEY, []))
        self.config.stash[state_key].leftovers.extend(output.get(LEFTOVERS_KEY, []))


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
    if not _collects_project(config, state.project_dir / PROJECT_FILE):
        state.header = (
            f"dbtproof: project {state.project_dir}: the dbt session starts when a collected "
            f"test uses the `dbt` fixture"
        )
        return
    state.start_session(config)
    if is_xdist_controller(config):
        # The controller runs no test: it only proved, once and with one clear message,
        # that the project parses, stays in its namespace and can connect.
        assert state.session is not None
        state.session.settings.keep = False
        state.teardown(config)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the dbt session before any test runs when a collected test uses ``dbt``."""
    state = config.stash.get(state_key, None)
    if state is None or state.session is not None:
        return
    if any("dbt" in getattr(item, "fixturenames", ()) for item in items):
        state.start_session(config)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and state.header and not is_xdist_worker(config):
            reporter.write_line(state.header)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """One line: project, profiles.yml and its sha256, target, adapter, namespace."""
    state = config.stash.get(state_key, None)
    if state is None or state.header is None:
        return None
    return [state.header]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop everything the run created (also after failures and Ctrl-C), unless --dbt-keep.

    A run that wrote outside its namespace exits non-zero, whatever its tests said.
    """
    state = session.config.stash.get(state_key, None)
    if state is not None:
        state.teardown(session.config)
        if state.breaches and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put back the SIGTERM handler the run replaced."""
    state = config.stash.get(state_key, None)
    if state is not None:
        state.release_sigterm()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Every write outside the namespace, once; with ``--dbt-keep``, what was kept."""
    state = config.stash.get(state_key, None)
    if state is None:
        return
    if state.leftovers:
        terminalreporter.section("dbtproof: left in the warehouse", red=True)
        for line in state.leftovers:
            terminalreporter.write_line(line)
    if state.breaches:
        terminalreporter.section("dbtproof: writes outside the namespace", red=True)
        for line in dict.fromkeys(state.breaches):
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
    from dbtproof.diff import explain_comparison

    return explain_comparison(op, left, right)
