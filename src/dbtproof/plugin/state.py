"""The per-run state of dbtproof, kept in ``config.stash``, and its lifecycle.

One :class:`DbtproofState` per pytest process (the xdist controller and each worker),
under :data:`state_key`, as ``_pytest/junitxml.py`` keeps its ``LogXML``. Its life:

1. **open** — ``pytest_configure`` finds the dbt project and stores the state with the
   run's namespace id (handed to xdist workers so that they share it);
2. **start** — :meth:`DbtproofState.start_session` parses, relocates, checks and
   connects: at ``pytest_sessionstart`` when the run collects ``dbt_project.yml``,
   else when a collected test first uses the ``dbt`` fixture;
3. **header** — one line on project, profile, target, adapter and namespace (and what
   was relocated, and the run role), set by the start;
4. **teardown** — :meth:`DbtproofState.teardown` drops what the run created (unless
   ``--dbt-keep``), gathers writes outside the namespace for the summary and scrubs
   the secrets out of the files the run leaves.

With ``--dbt-evidence``, :attr:`DbtproofState.evidence` (see :mod:`dbtproof.evidence`)
records the dbt session, every dbt invocation and every test; at the end the writing
process (the only one, or xdist's controller, which takes the workers' records) writes
the hash-chained file.

Throughout, :attr:`DbtproofState.secrets` holds the run's secret values (see
:mod:`dbtproof.safety.redaction`): reports, the terminal, the JUnit XML, the log file and the
run's files are scrubbed against it.

The plugin, the public fixtures and the items import this module; it imports none of them.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dbtproof.errors import DbtproofError
from dbtproof.plugin import header as state_header
from dbtproof.plugin import outputs as state_outputs
from dbtproof.plugin.options import is_xdist_controller
from dbtproof.plugin.secrets import SecretOutputs
from dbtproof.plugin.xdist import XdistHandover
from dbtproof.safety.redaction import SecretRegistry
from dbtproof.session.progress import Progress

if TYPE_CHECKING:
    from dbtproof.credentials import CredentialSet
    from dbtproof.evidence.recorder import EvidenceRecorder
    from dbtproof.plugin.batches import DbtTestBatches
    from dbtproof.session.keeper import SessionKeeper
    from dbtproof.session.parse_cache import StartTimings
    from dbtproof.session.session import DbtSession

#: ``workerinput`` key: the run id the xdist controller hands its workers.
RUN_ID_KEY = "dbtproof_run_id"
#: ``workeroutput`` key: what a worker kept (``--dbt-keep``).
KEPT_KEY = "dbtproof_kept"
#: ``workeroutput`` key: a worker's writes outside the namespace.
BREACHES_KEY = "dbtproof_breaches"
#: The xdist workeroutput key of the changes another creator made outside the namespace.
NOT_OURS_KEY = "dbtproof_not_ours"
#: ``workeroutput`` key: where a worker's start went (``--dbt-timings``).
TIMINGS_KEY = "dbtproof_timings"
#: ``workeroutput`` key: what a worker could not drop, one message each.
LEFTOVERS_KEY = "dbtproof_leftovers"
#: ``workeroutput`` key: why a worker's session could not start (dbtproof's one message).
START_ERROR_KEY = "dbtproof_start_error"


@dataclass
class DbtproofState:
    """Per-pytest-process state of the plugin, kept in ``config.stash[state_key]``."""

    project_dir: Path
    run_id: str
    worker_id: str | None
    session: DbtSession | None = None
    test_batches: DbtTestBatches | None = None
    header: str | None = None
    kept: list[str] = field(default_factory=list)
    #: Every write outside the namespace seen in this run (all workers'), one line each.
    breaches: list[str] = field(default_factory=list)
    #: Changes outside the namespace another creator made meanwhile (left alone), one line each.
    not_ours: list[str] = field(default_factory=list)
    #: The dbt tests and nodes ``--dbt-select``/``--dbt-exclude`` pick, checked at session start.
    selection: tuple[list[Any], list[Any]] | None = None
    #: The run's own temporary folder when pytest's tmpdir plugin is off (``-p no:tmpdir``).
    own_tmp: Path | None = None
    #: The run's secret values. A credential provider registers what it mints, before
    #: the value can reach any output: ``state.secrets.add(value, "minted by <name>")``.
    secrets: SecretRegistry = field(default_factory=SecretRegistry)
    #: Where the secrets are applied (filled, and the outputs scrubbed against them).
    secret_outputs: SecretOutputs = field(init=False, repr=False)
    #: The credential providers of ``--dbt-credentials`` (set by :meth:`open_credentials`).
    credentials: CredentialSet | None = None
    #: What dbt is doing, shown on the terminal (:meth:`open_progress`); None: not shown.
    progress: Progress | None = None
    #: ``--dbt-timings`` under xdist: each worker's start, ``(worker id, lines)``.
    worker_timings: list[tuple[str, list[str]]] = field(default_factory=list)
    #: Called with ``(value, source)`` for every value a credential provider mints (the
    #: secret registry registers them here); see :meth:`minted`.
    on_minted: list[Callable[[str, str], object]] = field(default_factory=list, repr=False)
    #: The run's evidence (``--dbt-evidence``; None: no evidence file).
    evidence: EvidenceRecorder | None = None
    #: The git commit of the project's work tree (read once, for JUnit properties).
    _commit: tuple[str | None] | None = field(default=None, repr=False)
    #: What the run could not drop (this process's teardown, or, on the xdist controller,
    #: its workers'), one message each: the terminal summary shows them, and the run
    #: exits non-zero.
    leftovers: list[str] = field(default_factory=list)
    #: Why the session could not start: an xdist worker's own (raised when its collection
    #: begins, so that the worker ends as the controller expects), or, on the controller,
    #: its workers' (raised as one usage error when they are down).
    start_errors: list[str] = field(default_factory=list)
    #: ``dbtproof watch``: the keeper of the session its rounds share (None: no watch).
    keeper: SessionKeeper | None = None
    #: A watch round after a save: the nodes the saved files modify and everything
    #: downstream (set when the round takes the kept session over; the round makes no
    #: item for anything else). None: not such a round.
    round_affected: set[str] | None = None
    #: Puts back the SIGTERM handler :meth:`trap_sigterm` replaced (None: none replaced).
    restore_sigterm: Callable[[], None] | None = field(default=None, repr=False)
    #: Where the dbt session's start went (set when it starts or is taken over).
    start_timings: StartTimings | None = None
    #: Seconds ``pytest_sessionstart`` took when the dbt session started in it: pytest's
    #: clock (the summary's "in N s") starts after it (see :meth:`start_line`).
    before_clock: float | None = None
    #: The xdist controller's warm parse and run-level build folder, for its workers.
    xdist: XdistHandover = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.secret_outputs = SecretOutputs(self.secrets)
        self.xdist = XdistHandover(self)

    def start_line(self, since_start: float) -> str | None:
        """The summary's line on the time pytest's "in N s" leaves out: the start of the dbt
        session at ``pytest_sessionstart`` (its parse) and, *since_start* being the seconds
        since that start began, the whole run's; None when no start preceded pytest's clock."""
        if self.before_clock is None or self.start_timings is None:
            return None
        parse = sum(seconds for step, seconds in self.start_timings.steps if step == "parse")
        return (
            f"dbtproof: {self.before_clock:.2f} s before pytest's clock started (the dbt "
            f"session's start: parse {parse:.2f} s); the run took {since_start:.2f} s in all"
        )

    # -- evidence ----------------------------------------------------------------------

    def open_evidence(self, config: pytest.Config) -> None:
        """Start recording evidence when the options ask for it (see
        :func:`state_outputs.open_evidence`). Raises :class:`~dbtproof.errors.EvidenceError`."""
        self.evidence = state_outputs.open_evidence(
            config, self.run_id, self.worker_id, self.project_dir, self.secrets
        )

    def finish_evidence(self, config: pytest.Config, exit_status: int) -> dict[str, Any] | None:
        """Hand this worker's evidence to the controller, or write the evidence file."""
        return state_outputs.finish_evidence(self.evidence, config, exit_status)

    def open_progress(self, config: pytest.Config) -> None:
        """The terminal display of what dbt is doing, when stdout is a terminal."""
        self.progress = state_outputs.open_progress(config, self.secrets)

    def junit_properties(self, item: pytest.Item) -> list[tuple[str, str]]:
        """The properties *item*'s JUnit testcase carries (see :mod:`dbtproof.evidence.junit`)."""
        from dbtproof.evidence.facts import git_commit
        from dbtproof.evidence.junit import junit_properties

        if self._commit is None:
            self._commit = (git_commit(self.project_dir),)
        return junit_properties(item, self.run_id, self.session, self._commit[0])

    # -- signals -----------------------------------------------------------------------

    def trap_sigterm(self, config: pytest.Config) -> None:
        """Have SIGTERM end the run as Ctrl-C does (the namespace dropped); the xdist
        controller passes it on to its workers (see :mod:`dbtproof.plugin.signals`)."""
        from dbtproof.plugin.signals import trap_sigterm

        self.restore_sigterm = trap_sigterm(forward_to_children=is_xdist_controller(config))

    def release_sigterm(self) -> None:
        """Put back the SIGTERM handler that was there before :meth:`trap_sigterm`."""
        restore, self.restore_sigterm = self.restore_sigterm, None
        if restore is not None:
            restore()

    # -- progress ----------------------------------------------------------------------

    # -- credentials -------------------------------------------------------------------

    def open_credentials(self, config: pytest.Config) -> None:
        """Load the providers of ``--dbt-credentials`` (else the ``dbt_credentials`` ini
        lines); refuse to mint for untrusted code unless
        ``--dbt-allow-untrusted-credentials``. Raises a :class:`DbtproofError`."""
        from dbtproof.credentials import load_credentials

        specs = config.getoption("dbt_credentials") or config.getini("dbt_credentials")
        self.credentials = load_credentials(
            list(specs or []),
            allow_untrusted=config.getoption("dbt_allow_untrusted_credentials"),
            minted=self.minted,
        )

    def minted(self, value: str, source: str) -> None:
        """The one place every minted credential passes, once per value: each of
        :attr:`on_minted` is told (*source* names the provider and its variable)."""
        for callback in self.on_minted:
            callback(value, source)

    # -- start -------------------------------------------------------------------------

    def start_session(self, config: pytest.Config) -> DbtSession:
        """Start this process's dbt session (parse, relocate, connect) if it has not started.

        Raises :class:`pytest.UsageError` with dbtproof's one message when it cannot start.
        """
        if self.session is not None:
            return self.session
        if self.keeper is not None and self.keeper.session is not None:
            return self._take_kept_session(config, self.keeper.session)
        from dbtproof.plugin.settings import session_settings
        from dbtproof.session.session import DbtSession

        # The start allocates what lives as long as the run (dbt's modules, the adapter, the
        # parsed or loaded manifest: millions of objects) and next to no garbage (about
        # 2,000 objects on a 1,000-model project): the collector, left on, walks the growing
        # heap again and again (on a kept parse of 1,000 models, four fifths of the pickle's
        # load). It is off until the start is done, and what the start made is then frozen.
        collecting = gc.isenabled()
        gc.disable()
        try:
            try:
                self.session = DbtSession(session_settings(config, self, self.workdir(config)))
                self.secret_outputs.add_target(self.session)
                try:
                    self.session.start()
                finally:
                    self.secret_outputs.add_target(self.session)
                self._select(config)
            except DbtproofError as exc:
                raise pytest.UsageError(self._start_failed(config, exc)) from None
            except BaseException:
                self.teardown(config)  # what it made so far goes (an interrupt, a bug)
                raise
            if self.keeper is not None:  # dbtproof watch: the next rounds take it over
                self.keeper.session, self.keeper.run_id = self.session, self.run_id
            self._started(config)
            # What is alive now (dbt, its adapter, the parsed manifest) lives as long as the
            # run: out of the collector's sight, the collections during the tests look at
            # what they allocate only (a full collection of dbt's heap, several per run,
            # cost a fifth of a 200-test run). The plugin's pytest_unconfigure unfreezes it.
            gc.freeze()
        finally:
            if collecting:
                gc.enable()
        return self.session

    def _start_failed(self, config: pytest.Config, exc: DbtproofError) -> str:
        """Tear down what a failed start made; dbtproof's one message for it, naming what
        could not be dropped (a failed start prints no summary). An xdist worker hands the
        message to its controller, which says it."""
        workeroutput = getattr(config, "workeroutput", None)
        before = len(self.leftovers)
        self.teardown(config)
        left = self.leftovers[before:]
        del self.leftovers[before:]
        if workeroutput is not None:
            left += workeroutput.pop(LEFTOVERS_KEY, [])
        message = self.secrets.scrub("\n".join([str(exc), *left]))
        if workeroutput is not None:
            workeroutput[START_ERROR_KEY] = message
        return message

    def _select(self, config: pytest.Config) -> None:
        """What ``--dbt-select``/``--dbt-exclude`` pick, if given. A bad selector stops the
        run here, with one message, not a collection error."""
        assert self.session is not None
        if (config.getoption("dbt_select") or config.getoption("dbt_exclude")) and (
            not config.getoption("no_dbt_tests")
        ):
            from dbtproof.plugin.selection import selection_for

            with self.session.timings.step("selection"):
                self.selection = selection_for(config, self.session)

    def _take_kept_session(self, config: pytest.Config, session: DbtSession) -> DbtSession:
        """``dbtproof watch``, after the first round: take the kept session over, parsed
        again for the files this round was started for (``--dbt-changed-files``); what
        they affect counts as not built."""
        from dbtproof.project.changes import affected_nodes, relative_to_project

        changed = relative_to_project(
            self.project_dir, [Path(p) for p in config.getoption("dbt_changed_files") or []]
        )
        self.session = session

        def affected(manifest: Any) -> set[str]:
            self.round_affected = affected_nodes(manifest, changed)
            return self.round_affected

        try:
            session.refresh(changed, affected)
            self._select(config)
        except DbtproofError as exc:
            raise pytest.UsageError(self.secrets.scrub(str(exc))) from None
        self._started(config)
        return session

    def _started(self, config: pytest.Config) -> None:
        """The session has started (or was taken over): evidence told, header made."""
        assert self.session is not None
        if self.evidence is not None and not is_xdist_controller(config):
            self.evidence.on_session(self.session)
        namespace = f"{self.run_id}_gw<N>" if is_xdist_controller(config) else self.session.schema
        self.start_timings = self.session.timings
        header = state_header.header(self.session, namespace)
        header += "".join(
            f"\ndbtproof: {line}" for line in state_header.protection_lines(self.session, config)
        )
        if config.getoption("dbt_timings"):
            lines = self.session.timings.lines()
            header += "".join(f"\ndbtproof: {line}" for line in lines)
            workeroutput = getattr(config, "workeroutput", None)
            if workeroutput is not None:
                workeroutput[TIMINGS_KEY] = lines
        self.header = self.secrets.scrub(header)

    def workdir(self, config: pytest.Config) -> Path:
        """Where the run keeps its files: ``dbtproof`` under pytest's basetemp, or, when the
        tmpdir plugin is off (``-p no:tmpdir``), a temporary folder removed when the run ends."""
        if self.keeper is not None:  # the session outlives this run's basetemp
            return self.keeper.workdir
        factory = getattr(config, "_tmp_path_factory", None)
        if factory is not None:
            return Path(factory.getbasetemp()) / "dbtproof"
        if self.own_tmp is None:
            self.own_tmp = Path(tempfile.mkdtemp(prefix="dbtproof-"))
        return self.own_tmp

    # -- teardown ----------------------------------------------------------------------

    def teardown(self, config: pytest.Config) -> None:
        """Drop what the session created (unless kept) and gather its breaches; idempotent."""
        session, self.session = self.session, None
        if session is not None and self.keeper is not None and self.keeper.session is session:
            # dbtproof watch: the namespace stays for the next round (the keeper drops it)
            self._collect_breaches(config, session)
            if session.guard is not None:
                session.guard.breaches.clear()
            if session.settings.keep:  # the folder stays when the loop ends: scrubbed now
                self.secret_outputs.scrub_files(session)
            else:  # the loop's end removes the session's folder
                self.secret_outputs.scrub_parse_cache(session)
            return
        keep = session is not None and session.settings.keep
        try:
            if session is not None:
                try:
                    self._teardown_session(config, session)
                finally:
                    self.secret_outputs.scrub_files(session)
        finally:
            if self.own_tmp is not None and not keep:
                shutil.rmtree(self.own_tmp, ignore_errors=True)
                self.own_tmp = None

    def _teardown_session(self, config: pytest.Config, session: DbtSession) -> None:
        try:
            kept_or_dropped = session.teardown.run()
        except Exception as exc:  # noqa: BLE001 - never hide the run's own outcome
            self._collect_breaches(config, session)
            reason = " ".join(str(exc).split())
            message = self.secrets.scrub(
                f"dbtproof: could not drop namespace {session.schema}: {reason}. "
                f"Run `dbtproof clean --older-than 0m` once the warehouse is back to remove "
                f"leftovers."
            )
            workeroutput = getattr(config, "workeroutput", None)
            if workeroutput is not None:  # a worker's terminal goes nowhere: the controller says it
                workeroutput[LEFTOVERS_KEY] = [*workeroutput.get(LEFTOVERS_KEY, []), message]
                return
            self.leftovers.append(message)  # the summary says it; the run exits non-zero
            return
        self._collect_breaches(config, session)
        if session.settings.keep:
            self.kept.extend(kept_or_dropped)
            workeroutput = getattr(config, "workeroutput", None)
            if workeroutput is not None:
                workeroutput[KEPT_KEY] = list(self.kept)

    def _collect_breaches(self, config: pytest.Config, session: DbtSession) -> None:
        if session.guard is not None:
            self.breaches.extend(
                self.secrets.scrub(breach.describe()) for breach in session.guard.breaches
            )
            self.not_ours.extend(
                self.secrets.scrub(change.describe_not_ours()) for change in session.guard.not_ours
            )
            session.guard.not_ours.clear()
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[BREACHES_KEY] = list(self.breaches)
            workeroutput[NOT_OURS_KEY] = list(self.not_ours)


#: Where the run's :class:`DbtproofState` lives in ``config.stash`` (absent: no dbt project).
state_key = pytest.StashKey[DbtproofState]()
