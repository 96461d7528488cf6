"""A live run's mark, so that ``dbtproof clean`` never drops what a running test uses.

A session holds, from start to teardown:

- a file lock (``flock``) on ``.dbtproof-live`` in its workdir, on every adapter: it is
  what ``clean`` checks for the run files left under pytest's basetemp. The workdir
  appears with its lock already held (made under a hidden name, locked, renamed into
  place), so ``clean`` never sees a run's folder without its mark;
- on PostgreSQL, a shared advisory lock keyed on the run id, on a connection of its own
  whose ``application_name`` names the run, taken before the run creates any schema or
  role: ``clean`` looks for the key in ``pg_locks`` (every database of the server, as
  roles are server-wide) and leaves the run's schemas and role alone while it is held.
  The connection switches the server's idle timeouts off for itself.

``clean`` keeps a run alive when either says so: a run of this machine whose advisory lock
was lost (a connection ended by the server) is still kept by its file lock.

Both die with the process, so a run killed with SIGKILL is dead for ``clean`` at once.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # POSIX only; elsewhere a run holds no file mark
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: The lock file in a session's workdir.
LOCK_FILE = ".dbtproof-live"
#: The folder dbtproof's session workdirs live in, under pytest's basetemp.
WORKDIR_FOLDER = "dbtproof"
#: The lock's connection sits idle for the whole run: a server's idle timeouts (from the
#: profile, the role, the database or the server) must not end it, and with it the lock.
#: ``idle_session_timeout`` exists from PostgreSQL 14 (``current_setting(..., true)`` is
#: NULL before: nothing is set).
KEEP_IDLE_SQL = (
    "select set_config('idle_in_transaction_session_timeout', '0', false); "
    "select set_config('idle_session_timeout', '0', false) "
    "where current_setting('idle_session_timeout', true) is not null; "
)


def advisory_key(run_id: str) -> int:
    """The PostgreSQL advisory lock key (a signed 64-bit integer) of a run."""
    digest = hashlib.sha256(f"dbtproof:{run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def run_id_of(schema: str, prefix: str) -> str | None:
    """The run id a namespace schema (``<run id>[_gw<N>][_<custom>]``) belongs to."""
    match = re.match(rf"^({re.escape(prefix)}\d{{12}}_[a-z0-9]{{6}})(?:_|$)", schema.lower())
    return match.group(1) if match else None


@dataclass
class LivenessMark:
    """What a live session holds; :meth:`release` lets go of it (process death does too)."""

    lock_path: Path | None = None
    run_id: str = ""
    _fd: int | None = None
    _connection: Any = field(default=None, repr=False)

    @classmethod
    def hold(cls, workdir: Path, run_id: str) -> LivenessMark:
        """Take the file lock in *workdir*, made here when missing: the folder appears with
        its lock already held."""
        mark = cls(lock_path=workdir / LOCK_FILE, run_id=run_id)
        if fcntl is None:
            workdir.mkdir(parents=True, exist_ok=True)
            return mark
        workdir.parent.mkdir(parents=True, exist_ok=True)
        if workdir.is_dir():
            mark._fd = _locked(mark.lock_path, run_id)
            return mark
        starting = Path(tempfile.mkdtemp(prefix=f".{workdir.name}-", dir=workdir.parent))
        fd = _locked(starting / LOCK_FILE, run_id)
        try:
            starting.rename(workdir)
        except OSError:  # made meanwhile (never by another run: the name is the run's)
            os.close(fd)
            shutil.rmtree(starting, ignore_errors=True)
            fd = _locked(mark.lock_path, run_id)
        mark._fd = fd
        return mark

    def hold_advisory(self, adapter: Any) -> None:
        """On PostgreSQL (*adapter*), take the run's shared advisory lock on a connection of
        its own; other adapters hold the file lock only. Raises what the connection raised
        (the caller retries transient faults)."""
        from dbtproof import _dbt_compat as compat

        if self._connection is not None or compat.adapter_type(adapter) != "postgres":
            return
        self._take_advisory_lock(adapter)

    def _take_advisory_lock(self, adapter: Any) -> None:
        from dbtproof import _dbt_compat as compat

        connection = compat.open_dedicated_connection(adapter, "dbtproof_liveness")
        try:
            compat.execute_on(
                connection,
                f"set application_name = 'dbtproof {self.run_id}'; {KEEP_IDLE_SQL}"
                f"select pg_advisory_lock_shared({advisory_key(self.run_id)})",
            )
        except BaseException:
            compat.close_dedicated_connection(connection)
            raise
        self._connection = connection

    def renew(self, adapter: Any) -> None:
        """After a connection fault (a terminated backend, a restart): take the advisory
        lock again if its connection died with it, so that `dbtproof clean` still sees the
        run alive. A warehouse still away is tried again at the next fault."""
        from dbtproof import _dbt_compat as compat

        connection = self._connection
        if connection is None:
            return
        try:
            compat.execute_on(connection, "select 1")
            return
        except Exception:  # noqa: BLE001 - it died: take the lock on a new one
            compat.close_dedicated_connection(connection)
        try:
            self._take_advisory_lock(adapter)
        except Exception:  # noqa: BLE001 - the dead one is kept for the next try
            if self._connection is not connection:
                compat.close_dedicated_connection(self._connection)
            self._connection = connection

    def last_of_run(self) -> bool:
        """PostgreSQL: whether this is the last process of the run alive (its xdist workers
        all hold the run's advisory lock, shared): this process's shared hold is let go and
        the lock taken exclusively instead, which succeeds only once every other process
        let go of it (or died). When it succeeds, the lock stays held (the run still alive
        for ``dbtproof clean``) until :meth:`release`; when it does not, the file lock
        keeps this process alive for ``clean``. False without an advisory lock."""
        from dbtproof import _dbt_compat as compat

        connection = self._connection
        if connection is None:
            return False
        key = advisory_key(self.run_id)
        compat.execute_on(connection, f"select pg_advisory_unlock_shared({key})")
        rows = compat.fetch_dedicated(connection, f"select pg_try_advisory_lock({key})")
        return bool(rows and rows[0][0])

    def release(self) -> None:
        """Let go of both locks (safe to call twice)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            from dbtproof import _dbt_compat as compat

            compat.close_dedicated_connection(connection)
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _locked(path: Path, run_id: str) -> int:
    """The descriptor of *path* (made if missing), locked exclusively, the holder written."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()} {run_id}\n".encode())
    return fd


def live_run_ids(fetch: Callable[[str], Iterable[Any]], run_ids: Iterable[str]) -> set[str]:
    """PostgreSQL: the runs among *run_ids* whose advisory lock is held (or waited for) in
    any database of the server (``pg_locks`` lists them all): a run role is server-wide,
    so a run is alive for ``clean`` whichever database it works in. *fetch* runs a query
    and returns its rows."""
    by_key: dict[tuple[int, int], str] = {}
    for run_id in run_ids:
        key = advisory_key(run_id)
        by_key[((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)] = run_id
    if not by_key:
        return set()
    wanted = ", ".join(f"({high}, {low})" for high, low in by_key)
    rows = fetch(
        "select distinct classid::bigint, objid::bigint from pg_locks "
        f"where locktype = 'advisory' and objsubid = 1 and (classid::bigint, objid::bigint) "
        f"in ({wanted})"
    )
    return {by_key[(int(row[0]), int(row[1]))] for row in rows}


def file_marks() -> bool:
    """Whether runs hold file marks here (``fcntl``: POSIX; not on Windows). Without them a
    run's folder cannot say whether its run is alive."""
    return fcntl is not None


def workdir_is_live(workdir: Path) -> bool:
    """True when a live process holds the lock file of *workdir* (never without
    :func:`file_marks`)."""
    path = workdir / LOCK_FILE
    if fcntl is None or not path.is_file():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def pytest_temproot() -> Path:
    """Where pytest puts its basetemps by default: ``<tmp>/pytest-of-<user>``."""
    root = Path(os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir())
    try:
        user = re.sub(r"[\W]", "_", getpass.getuser()) or "unknown"
    except (ImportError, KeyError, OSError):
        user = "unknown"
    return root.resolve() / f"pytest-of-{user}"


def run_workdirs(basetemps: Iterable[Path]) -> Iterator[Path]:
    """Session workdirs (``<basetemp>[/popen-gw<N>]/dbtproof/<schema>``) under *basetemps*,
    each a basetemp or pytest's ``pytest-of-<user>`` folder of numbered basetemps."""
    seen: set[Path] = set()
    for base in basetemps:
        if not base.is_dir():
            continue
        for pattern in (
            f"{WORKDIR_FOLDER}/*",
            f"*/{WORKDIR_FOLDER}/*",
            f"pytest-*/{WORKDIR_FOLDER}/*",
            f"pytest-*/*/{WORKDIR_FOLDER}/*",
        ):
            for path in sorted(base.glob(pattern)):
                if path.is_dir() and path not in seen:
                    seen.add(path)
                    yield path
