"""``dbtproof watch [pytest args]``: run the tests, then again on every save, only the
tests the saved files touch.

One process for the whole loop: dbt, the adapter and the plugin are imported once, and
every round runs pytest in that process (``pytest.main``). One dbt session, too: each
round gets the loop's :class:`~dbtproof.session.keeper.SessionKeeper` as a plugin, so the rounds
share the first round's namespace, connections and what it built. A round after a save
passes the files that changed (``--dbt-changed-files``); the session parses again (warm)
and counts what they modify, and everything downstream, as not built
(:meth:`dbtproof.session.session.DbtSession.refresh`); the round collects what ``--dbt-changed``
would for them (:func:`dbtproof.project.changes.keep_changed`): the dbt tests of the changed
nodes and of everything downstream, the pytest tests running those models, and changed
test files. The namespace is dropped when the loop ends.

Test modules are imported again only after a Python file under the watched folders was
saved (then all of them, conftests and helpers too); a round after a save of SQL, YAML or a
seed reuses them as imported (pytest's collection then costs no import and no assertion
rewrite: a third of a round on a 200-test module).

SIGTERM ends the loop as Ctrl-C does. Files are found by polling their modification
times (no platform watcher needed): every file under the project and under the folder
pytest runs in whose suffix a dbt project or a test suite uses, outside
``target``/``logs``/``dbt_packages`` and hidden folders. Ctrl-C ends the loop; a round in
progress is stopped as pytest stops on Ctrl-C, and the keeper then drops the namespace
(another Ctrl-C meanwhile does not stop the drop), so nothing is left behind.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from dbtproof.session.keeper import SessionKeeper

#: The files a save of which starts a round.
WATCHED_SUFFIXES = frozenset({".sql", ".yml", ".yaml", ".csv", ".py", ".md", ".jinja"})
#: Folders never watched (dbt's outputs and packages, caches).
SKIPPED_FOLDERS = frozenset(
    {"target", "logs", "dbt_packages", "dbt_modules", "__pycache__", "node_modules"}
)
#: Seconds between two looks at the files, at least (:func:`poll_interval`).
POLL = 0.05
#: A look at the files may take at most this share of the time between two looks.
POLL_SHARE = 0.05
#: The quiet time a save must be followed by (an editor may write a file in steps).
SETTLE = 0.05
#: Seconds without a save after which the loop collects the rounds' garbage (:func:`when_idle`).
IDLE = 1.0


def _files(folder: str) -> Iterator[os.DirEntry[str]]:
    """The watched files under *folder* (symbolic links to folders are not followed)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIPPED_FOLDERS and not entry.name.startswith("."):
                    yield from _files(entry.path)
            elif os.path.splitext(entry.name)[1] in WATCHED_SUFFIXES:
                yield entry
        except OSError:
            continue


def snapshot(roots: Sequence[Path]) -> dict[Path, int]:
    """Each watched file under *roots* (resolved) with its modification time (ns)."""
    found = {}
    for root in dict.fromkeys(root.resolve() for root in roots):
        for entry in _files(str(root)):
            try:
                found[Path(entry.path)] = entry.stat().st_mtime_ns
            except OSError:
                continue
    return found


def changes(before: dict[Path, int], after: dict[Path, int]) -> set[Path]:
    """The files added, removed or modified between two snapshots."""
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


class Stopped(Exception):
    """Ctrl-C or SIGTERM asked the loop to end."""


def poll_interval(look: float) -> float:
    """Seconds between two looks at the files when one look takes *look* seconds:
    :data:`POLL`, or longer on a tree so large that polling would cost more than
    :data:`POLL_SHARE` of a core (a look at 200 models and their tests takes about 1.5 ms)."""
    return max(POLL, look / POLL_SHARE)


def wait_for_change(
    roots: Sequence[Path],
    seen: dict[Path, int],
    stop: threading.Event,
    sleep: Callable[[float], None] = time.sleep,
    idle: Callable[[], None] | None = None,
) -> tuple[set[Path], dict[Path, int]]:
    """Poll until a watched file changes and the files are quiet for one more poll; the
    changed files and the new snapshot. Once :data:`IDLE` seconds pass without a change,
    *idle* is called (once). Raises :class:`Stopped` once *stop* is set."""
    waited, interval = 0.0, POLL
    while True:
        sleep(interval)
        waited += interval
        if stop.is_set():
            raise Stopped
        started = time.perf_counter()
        now = snapshot(roots)
        interval = poll_interval(time.perf_counter() - started)
        changed = changes(seen, now)
        if not changed:
            if idle is not None and waited >= IDLE:  # right after a look that found none
                collect, idle = idle, None
                collect()
            continue
        while True:  # an editor may write a file in several steps
            sleep(SETTLE)
            settled = snapshot(roots)
            more = changes(now, settled)
            if not more:
                return changed, settled
            changed |= more
            now = settled


def forget_modules(roots: Sequence[Path]) -> None:
    """Drop the modules imported from files under *roots* (test modules, conftests) so the
    next round imports them again as saved: ``pytest.main`` reuses ``sys.modules``."""
    import sys

    resolved = [root.resolve() for root in roots]
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or "site-packages" in file:
            continue
        path = Path(file).resolve()
        if any(path.is_relative_to(root) for root in resolved):
            del sys.modules[name]


def after_round() -> None:
    """Right after a round: what is alive now (dbt, the adapter, the kept session, the
    parse read ahead) is moved out of the collector's sight (``gc.freeze``, no work), so
    the next round's collections look at what that round allocates only. Two full
    collections of everything alive would cost a round about a sixth of its time."""
    gc.freeze()


def when_idle() -> None:
    """Once the loop has waited :data:`IDLE` seconds without a save: collect the garbage
    of the rounds since the last time, frozen objects included (a full collection, about
    a quarter of a second on a 200-model project: done while nobody waits for it), and
    freeze what is left."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _stop_on_signals(stop: threading.Event) -> None:
    """Ctrl-C and SIGTERM set *stop* and interrupt what runs (a round stops as pytest stops
    on Ctrl-C). The flag outlives an interrupt that something swallowed (a finalizer that
    ran at that moment), and it is set even when the shell started us with SIGINT ignored."""
    import signal

    def handler(signum: int, frame: object) -> None:
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def watch(pytest_args: Sequence[str], roots: Sequence[Path]) -> int:
    """Run pytest with *pytest_args*, then a round per save under *roots*; returns on
    Ctrl-C (or SIGTERM) with the last round's exit code."""
    import shutil
    import tempfile

    import pytest

    stop = threading.Event()
    _stop_on_signals(stop)
    # the command imported dbtproof before pytest could mark its plugin for rewriting
    pytest_args = ["-W", "ignore::pytest.PytestAssertRewriteWarning", *pytest_args]
    keeper = SessionKeeper(Path(tempfile.mkdtemp(prefix="dbtproof-watch-")))
    code = 0
    try:
        code = int(pytest.main(list(pytest_args), plugins=[keeper]))
        keeper.read_ahead()
        after_round()
        seen = snapshot(roots)
        print(f"dbtproof watch: watching {', '.join(map(str, roots))} (Ctrl-C to stop)", flush=True)
        while not stop.is_set():
            changed, seen = wait_for_change(roots, seen, stop, idle=when_idle)
            names = ", ".join(sorted(str(path) for path in changed))
            print(f"dbtproof watch: changed {names}", flush=True)
            files = [arg for path in sorted(changed) for arg in ("--dbt-changed-files", str(path))]
            if any(path.suffix == ".py" for path in changed):
                forget_modules(roots)  # a saved test module, conftest or helper: all anew
            code = int(pytest.main([*pytest_args, *files], plugins=[keeper]))
            keeper.read_ahead()
            after_round()
    except (KeyboardInterrupt, Stopped):
        pass
    finally:
        kept = keeper.session is not None and keeper.session.settings.keep
        for message in _close(keeper):
            print(message, flush=True)
            code = code or 1
        if not kept:
            shutil.rmtree(keeper.workdir, ignore_errors=True)
    print("dbtproof watch: stopped", flush=True)
    return code


def _close(keeper: SessionKeeper) -> list[str]:
    """Drop the kept namespace; another Ctrl-C or SIGTERM meanwhile does not stop the drop."""
    import signal

    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return keeper.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
