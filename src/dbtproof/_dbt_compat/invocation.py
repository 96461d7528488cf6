"""Invoking dbt: its runner, the environment variables each command reads as flags, and
what a reused manifest and dbt's file log need around each invocation.

:class:`dbtproof.session.runner.DbtRunner` is the one caller; it keeps what is cached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dbtproof._dbt_compat.events import reading


def import_dbt() -> None:
    """Import dbt's runner (the one-off cost of using dbt in a process)."""
    import dbt.cli.main  # noqa: F401


def quiet_dbt_console() -> None:
    """Take dbt's console logger off its event manager (until an invocation sets its own).

    dbt_common gives the event manager a console logger (stdout, INFO, colours) when it is
    imported, for events fired before an invocation sets logging up. dbtproof registers
    adapters outside invocations (a kept or shared parse is loaded, not parsed): dbt's
    ``Registered adapter: duckdb=1.11.1`` would reach the terminal, ANSI codes and all.
    Every invocation sets its loggers up anew from its flags (dbtproof's: ``--log-level
    none``; the file log with ``--dbt-keep``).
    """
    from dbt_common.events.event_manager_client import get_event_manager

    loggers = getattr(get_event_manager(), "loggers", None)
    if loggers is not None:
        loggers[:] = [each for each in loggers if getattr(each, "name", None) != "stdout_log"]


def dbt_runner(manifest: Any = None, callbacks: Sequence[Callable[[Any], None]] = ()) -> Any:
    """dbt's programmatic runner (``dbt.cli.main.dbtRunner``), reusing *manifest* if given,
    with *callbacks* called on each of dbt's events.

    ``runner.invoke(args)`` runs one command and returns dbt's result object. From
    dbt-core 1.12, dbt's ``invoke`` reads the ``.env`` file into the environment first,
    which would put back the flag variables dbtproof hides for the invocation; dbtproof
    read that file once at start (:mod:`.env_file`), so this runner's ``invoke`` does not
    read it again (dbt's reader is replaced for the invocation only, then put back).
    """
    import dbt.cli.main as main

    if not hasattr(main, "load_dotenv"):
        return main.dbtRunner(manifest=manifest, callbacks=list(callbacks))

    class Runner(main.dbtRunner):  # type: ignore[misc, name-defined]
        def invoke(self, args: list[str], **kwargs: Any) -> Any:
            read, main.load_dotenv = main.load_dotenv, _read_nothing
            try:
                return super().invoke(args, **kwargs)
            finally:
                main.load_dotenv = read

    return Runner(manifest=manifest, callbacks=list(callbacks))


def _read_nothing(*args: Any, **kwargs: Any) -> bool:
    """python-dotenv's ``load_dotenv``, reading nothing (it returns whether it set any)."""
    return False


def node_progress_callback(on_node: Callable[[int, int, str], None]) -> Callable[[Any], None]:
    """A callback for dbt's runner: ``on_node(done, total, unique_id)`` each time a node of
    the invocation finishes (dbt's ``NodeFinished``), *total* the nodes dbt runs (its
    ``LogStartLine``'s; 0 before the first starts). One callback per invocation."""
    counts = {"done": 0, "total": 0}

    def callback(event: Any) -> None:
        name = event.info.name
        if name == "LogStartLine":
            counts["total"] = max(counts["total"], int(getattr(event.data, "total", 0) or 0))
        elif name == "NodeFinished":
            counts["done"] += 1
            unique_id = str(getattr(getattr(event.data, "node_info", None), "unique_id", ""))
            on_node(counts["done"], max(counts["total"], counts["done"]), unique_id)

    return reading(("LogStartLine", "NodeFinished"), callback)


def invocation_id() -> str:
    """dbt's invocation id: the current invocation's, else the last one's."""
    from dbt_common.invocation import get_invocation_id

    return str(get_invocation_id())


#: Variables dbt reads outside its click options that change what a run does: record and
#: replay of results, and partial-parsing test switches.
_NON_OPTION_FLAG_VARS = (
    "DBT_RECORDER_MODE",
    "DBT_RECORDER_TYPES",
    "DBT_RECORDER_FILE_PATH",
    "DBT_RECORDER_ROW_LIMIT",
    "DBT_RECORDED_FILE_PATH",
    "DBT_ENGINE_RECORDER_MODE",
    "DBT_ENGINE_RECORDER_TYPES",
    "DBT_ENGINE_RECORDER_FILE_PATH",
    "DBT_ENGINE_RECORDER_ROW_LIMIT",
    "DBT_ENGINE_RECORDED_FILE_PATH",
    "DBT_PP_TEST",
    "DBT_PP_FILE_DIFF_TEST",
    "DBT_ENGINE_PP_TEST",
    "DBT_ENGINE_PP_FILE_DIFF_TEST",
    "DBT_TEST_STATE_MODIFIED",
    "DBT_ENGINE_TEST_STATE_MODIFIED",
)


def flag_env_vars(command: str) -> list[tuple[frozenset[str], tuple[str, ...]]]:
    """The environment variables ``dbt <command>`` reads as flags, by option.

    Each entry is ``(the option's spellings, its variables)``, walked from the envvars
    dbt's click command and its group declare (``DBT_EMPTY``, ``DBT_ENGINE_EMPTY``, ...).
    The group's options get no spellings: dbtproof gives every option after the command,
    so the group reads (and validates) its variables whatever the command line says. The
    last entry, with no spellings, holds the variables dbt reads outside its options
    (record/replay). Walked anew on every call: :class:`dbtproof.session.runner.FlagVariables`
    keeps the result per command.
    """
    from dbt.cli.main import cli

    options: list[tuple[frozenset[str], tuple[str, ...]]] = []
    sub = cli.commands.get(command)
    params = [(param, False) for param in cli.params]
    params += [(param, True) for param in (sub.params if sub is not None else [])]
    for param, of_command in params:
        envvar = getattr(param, "envvar", None)
        if not envvar:
            continue
        names = (envvar,) if isinstance(envvar, str) else tuple(envvar)
        spellings = [*param.opts, *getattr(param, "secondary_opts", [])] if of_command else []
        options.append((frozenset(spellings), names))
    options.append((frozenset(), _NON_OPTION_FLAG_VARS))
    return options


def reset_compilation_state(manifest: Any) -> None:
    """Return every node of a reused manifest to its freshly parsed compilation state.

    dbt compiles nodes in place. A second invocation with the same manifest
    re-renders a model's SQL but skips injecting ephemeral CTEs, because the node
    still says ``extra_ctes_injected``, and the SQL then names a CTE that is not
    there. dbt's CLI never notices: it parses anew for every invocation.
    """
    for node in manifest.nodes.values():
        if getattr(node, "extra_ctes_injected", False) or getattr(node, "compiled", False):
            node.extra_ctes_injected = False
            node.extra_ctes = []
            node._pre_injected_sql = None
            node.compiled = False
            node.compiled_code = None


def hide_dbt_file_logger() -> None:
    """Keep dbt's debug file log out of pytest's log capture.

    dbt writes its log file through a non-propagating Python logger named
    ``file_log``; pytest (8+) attaches its capture handler to every such logger it
    finds, which would paste dbt's whole debug log into every failure report. The
    logger object dbt holds keeps writing to the file; it is only unlisted.
    """
    import logging

    logging.root.manager.loggerDict.pop("file_log", None)
