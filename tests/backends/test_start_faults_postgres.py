"""Backends terminated at random moments of a run's start (private cluster).

The start's statements (the liveness lock, the run role and its schemas, the grants, the
guard's first look) are tried again after a connection fault, as connections are; what
still fails is one dbtproof error, never a driver's traceback, and nothing the start made
stays behind unnamed: in-process starts (many trials, fast), and whole runs with and
without `-n 2`.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from conftest import copy_shop, unique_prefix
from private_postgres import PrivateCluster, private_postgres

#: A login role that may create roles: its runs work as a run role of their own.
ROLE = "starter"
#: In-process starts, and whole runs of each kind (a run costs seconds of pytest's own).
TRIALS = int(os.environ.get("START_FAULT_TRIALS", "24"))
RUNS = int(os.environ.get("START_FAULT_RUNS", "1"))

#: The inner run's one test: it says the start is over.
STARTED_TEST = """
from pathlib import Path


def test_started(dbt):
    Path("started").write_text(dbt.schema)
    assert dbt.query("select 1 as n") == [{"n": 1}]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A private cluster (trust auth) with :data:`ROLE`."""
    with private_postgres("trust") as cluster:
        cluster.psql(f"create role {ROLE} login nosuperuser nocreatedb createrole")
        cluster.psql(f"grant create, temporary on database postgres to {ROLE}")
        yield cluster


def _superuser(cluster: PrivateCluster):  # type: ignore[no-untyped-def]
    connection = psycopg2.connect(host="127.0.0.1", port=cluster.port, user="postgres",
                                  dbname="postgres")  # fmt: skip
    connection.autocommit = True
    return connection


def _left(cluster: PrivateCluster, prefix: str) -> list[str]:
    """The schemas and roles whose names start with *prefix*."""
    with _superuser(cluster) as connection, connection.cursor() as cursor:
        cursor.execute(
            "select nspname from pg_namespace where starts_with(nspname, %s) union all "
            "select rolname from pg_roles where starts_with(rolname, %s)",
            (prefix, prefix),
        )
        return sorted(row[0] for row in cursor.fetchall())


class Terminator(threading.Thread):
    """Terminates one of :data:`ROLE`'s backends every few milliseconds until stopped (or
    until the file *until* appears)."""

    def __init__(
        self, cluster: PrivateCluster, seed: int, most: float = 0.05, until: Path | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stopped = threading.Event()
        self.terminated = 0
        self.random = random.Random(seed)
        self.most = most
        self.until = until

    def run(self) -> None:
        connection = _superuser(self.cluster)
        try:
            while not self.stopped.wait(self.random.uniform(0.0, self.most)):
                if self.until is not None and self.until.exists():
                    return  # the start is over
                with connection.cursor() as cursor:
                    cursor.execute(
                        "select pid from pg_stat_activity where usename = %s and pid <> "
                        "pg_backend_pid()",
                        (ROLE,),
                    )
                    pids = [row[0] for row in cursor.fetchall()]
                    if pids:
                        cursor.execute(
                            "select pg_terminate_backend(%s)", (self.random.choice(pids),)
                        )
                        self.terminated += 1
        finally:
            connection.close()

    def stop(self) -> None:
        """Stop terminating (returns once the thread ended)."""
        self.stopped.set()
        self.join()


@pytest.fixture(autouse=True)
def _secret_variables_forgotten() -> Iterator[None]:
    """The in-process sessions' DBTPROOF_SECRET_* variables (their run roles' passwords)
    are gone after the test: a later test looks for the one password its own run set."""
    before = set(os.environ)
    yield
    for name in set(os.environ) - before:
        if name.startswith("DBTPROOF_SECRET_"):
            del os.environ[name]


def _point_at(cluster: PrivateCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("DBT_", "SHOP_")):
            monkeypatch.delenv(name)
    for name, value in {"SHOP_PG_HOST": "127.0.0.1", "SHOP_PG_PORT": str(cluster.port),
                        "SHOP_PG_USER": ROLE, "SHOP_PG_DATABASE": "postgres"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)


def test_in_process_starts_end_started_or_with_one_error_and_leave_nothing(
    cluster: PrivateCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbtproof.errors import DbtproofError
    from dbtproof.safety.namespace import new_run_id
    from dbtproof.session.session import DbtSession, SessionSettings

    project = copy_shop(tmp_path / "shop")
    _point_at(cluster, monkeypatch)
    prefix = unique_prefix()
    outcomes: dict[str, int] = {}
    terminated = 0
    for trial in range(TRIALS):
        settings = SessionSettings(
            project_dir=project, profiles_dir=project, workdir=tmp_path / "work",
            run_id=new_run_id(prefix), target="postgres", connect_retries=1,
        )  # fmt: skip
        session = DbtSession(settings)
        terminator = Terminator(cluster, seed=trial)
        terminator.start()
        try:
            session.start()
            outcome = "started"
        except DbtproofError as exc:  # anything else fails the test with its traceback
            outcome = str(exc)[:70]
        finally:
            terminator.stop()
            terminated += terminator.terminated
        session.teardown.run()
        left = _left(cluster, prefix)
        assert left == [], f"trial {trial} ({outcome}) left {left}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert terminated >= TRIALS, f"the starts met terminated backends: {terminated}"
    assert "started" in outcomes, outcomes


def _run(shop: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, "pytests"],
        cwd=shop, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["alone", "xdist"])
def test_whole_runs_never_show_a_traceback_nor_leave_anything_silently(
    cluster: PrivateCluster,
    shop: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: tuple[str, ...],
) -> None:
    _point_at(cluster, monkeypatch)
    (shop / "pytests" / "test_started.py").write_text(STARTED_TEST)
    outcomes: list[int] = []
    terminated = 0
    for trial in range(RUNS):
        prefix = unique_prefix()
        (shop / "pytest.ini").write_text(
            f"[pytest]\ndbt_target = postgres\ndbt_schema_prefix = {prefix}\n"
            "dbt_connect_retries = 1\n"
        )
        (shop / "started").unlink(missing_ok=True)
        terminator = Terminator(cluster, seed=100 + trial, most=0.03, until=shop / "started")
        terminator.start()
        try:
            result = _run(shop, *workers)
        finally:
            terminator.stop()
        output = result.stdout + result.stderr
        assert "Traceback" not in output and "INTERNALERROR" not in output, output[-5000:]
        assert result.returncode in (0, 4), output[-5000:]
        if result.returncode == 4:  # dbtproof's own message, once
            errors = re.findall(r"^ERROR: dbtproof", output, re.MULTILINE)
            assert len(errors) == 1, output[-5000:]
        named = re.findall(r"could not drop namespace (\S+):", output)
        left = _left(cluster, prefix)
        silent = [name for name in left if not any(name.startswith(ns) for ns in named)]
        assert silent == [], f"left without a word: {silent}\n{output[-5000:]}"
        outcomes.append(result.returncode)
        terminated += terminator.terminated
    assert terminated >= RUNS, f"the starts met terminated backends: {terminated}"


def _error_lines(output: str) -> list[str]:
    """dbtproof's message: the ``ERROR: dbtproof`` line and the lines after it."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("ERROR: dbtproof"))
    return [line for line in lines[first:] if line.strip()]


def test_a_refused_login_under_xdist_is_the_same_one_message(
    cluster: PrivateCluster, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(cluster, monkeypatch)
    monkeypatch.setenv("SHOP_PG_USER", "nobody_here")
    (shop / "pytests" / "test_started.py").write_text(STARTED_TEST)
    (shop / "pytest.ini").write_text(
        f"[pytest]\ndbt_target = postgres\ndbt_schema_prefix = {unique_prefix()}\n"
    )
    alone, xdist = _run(shop), _run(shop, "-n", "2")
    for result in (alone, xdist):
        output = result.stdout + result.stderr
        assert result.returncode == 4, output[-5000:]
        assert "Traceback" not in output and "INTERNALERROR" not in output, output[-5000:]
        assert len(re.findall(r"^ERROR: ", output, re.MULTILINE)) == 1, output[-5000:]
    message = _error_lines(alone.stdout + alone.stderr)
    assert 'role "nobody_here" does not exist' in "\n".join(message), message
    assert _error_lines(xdist.stdout + xdist.stderr) == message


def _session(project: Path, tmp_path: Path, prefix: str, retries: int):  # type: ignore[no-untyped-def]
    from dbtproof.safety.namespace import new_run_id
    from dbtproof.session.session import DbtSession, SessionSettings

    settings = SessionSettings(
        project_dir=project, profiles_dir=project, workdir=tmp_path / "work",
        run_id=new_run_id(prefix), target="postgres", connect_retries=retries,
    )  # fmt: skip
    return DbtSession(settings)


class Restart:
    """Stops the cluster (``fast``: every session ended) and starts it again *after*
    seconds later, in a thread; :meth:`done` waits for it."""

    def __init__(self, cluster: PrivateCluster, after: float) -> None:
        self.cluster = cluster
        self.after = after
        self.thread: threading.Thread | None = None

    def __call__(self) -> None:
        if self.thread is not None:
            return  # once
        self.cluster.stop("fast")
        self.thread = threading.Thread(target=self._start_later, daemon=True)
        self.thread.start()

    def _start_later(self) -> None:
        threading.Event().wait(self.after)
        self.cluster.start()

    def done(self) -> None:
        """Wait for the restart (the cluster runs afterwards)."""
        if self.thread is not None:
            self.thread.join()
        self.cluster.start_if_stopped()


def _login_role(cluster: PrivateCluster, name: str, options: str, create: bool) -> None:
    """A login role *name* (one per test: the module's cluster is shared)."""
    cluster.psql(f"create role {name} login nosuperuser nocreatedb {options}")
    if create:
        cluster.psql(f"grant create, temporary on database postgres to {name}")


def test_a_run_role_setup_refused_keeps_its_own_advice_and_leaves_nothing(
    cluster: PrivateCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbtproof.errors import ConnectionFailedError, DbtproofError

    # May create roles, may not create schemas: the run role's setup is refused (42501).
    _login_role(cluster, "no_schemas", "createrole", create=False)
    project = copy_shop(tmp_path / "shop")
    _point_at(cluster, monkeypatch)
    monkeypatch.setenv("SHOP_PG_USER", "no_schemas")
    prefix = unique_prefix()
    session = _session(project, tmp_path, prefix, retries=1)
    with pytest.raises(DbtproofError) as raised:
        session.start()
    session.teardown.run()
    assert not isinstance(raised.value, ConnectionFailedError), raised.value
    assert "could not set up the run role" in str(raised.value), raised.value
    assert "Set `dbt_run_role = false`" in str(raised.value), raised.value
    assert _left(cluster, prefix) == []


def test_a_restart_during_the_run_role_setup_is_waited_for_and_the_setup_made_again(
    cluster: PrivateCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dbtproof.session.access as session_module

    project = copy_shop(tmp_path / "shop")
    _point_at(cluster, monkeypatch)
    prefix = unique_prefix()
    # Away longer than the undo's connection waits (1.5 s), shorter than the start's.
    restart = Restart(cluster, after=2.0)
    real = session_module.enable_login

    def restarted_first(handle, role):  # type: ignore[no-untyped-def]
        restart()  # the role is made, its login not yet: the server goes away
        return real(handle, role)

    monkeypatch.setattr(session_module, "enable_login", restarted_first)
    session = _session(project, tmp_path, prefix, retries=2)
    try:
        session.start()
        assert session.access.run_role is not None
        assert session.connections.query("select current_user as u") == [
            {"u": session.access.run_role.name}
        ]
    finally:
        restart.done()
        session.teardown.run()
    assert restart.thread is not None, "the setup never reached enable_login"
    assert _left(cluster, prefix) == []


def test_a_restart_under_a_start_statement_is_retried_with_backoff(
    cluster: PrivateCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbtproof.session.connections import SessionConnections

    # No run role (may not create roles): the start creates the namespace's schema itself,
    # through a statement retried once at once, then by the start's backoff.
    _login_role(cluster, "no_roles", "nocreaterole", create=True)
    project = copy_shop(tmp_path / "shop")
    _point_at(cluster, monkeypatch)
    monkeypatch.setenv("SHOP_PG_USER", "no_roles")
    prefix = unique_prefix()
    restart = Restart(cluster, after=4.0)
    real = SessionConnections.statement

    def restarted_first(self, sql, what):  # type: ignore[no-untyped-def]
        if sql.startswith("create schema"):
            restart()
        return real(self, sql, what)

    monkeypatch.setattr(SessionConnections, "statement", restarted_first)
    session = _session(project, tmp_path, prefix, retries=2)
    try:
        session.start()
        assert session.access.run_role is None
        assert session.connections.query("select 1 as n") == [{"n": 1}]
    finally:
        restart.done()
        session.teardown.run()
    assert restart.thread is not None, "the start never created its schema"
    assert _left(cluster, prefix) == []


def test_a_server_that_will_not_say_what_it_is_is_compared_by_host_and_told(
    cluster: PrivateCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_shop(tmp_path / "shop")
    _point_at(cluster, monkeypatch)
    prefix = unique_prefix()
    # pg_control_system() not callable: the rest is read; inet_server_addr() not callable
    # either: nothing is, and the header says so.
    cluster.psql("revoke execute on function pg_control_system() from public")
    try:
        session = _session(project, tmp_path, prefix, retries=1)
        try:
            session.start()
            assert session.access.privilege_lines() == [], session.access.privilege_lines()
        finally:
            session.teardown.run()
        cluster.psql("revoke execute on function inet_server_addr() from public")
        session = _session(project, tmp_path, prefix, retries=1)
        try:
            session.start()
            lines = session.access.privilege_lines()
        finally:
            session.teardown.run()
    finally:
        cluster.psql("grant execute on function pg_control_system() to public")
        cluster.psql("grant execute on function inet_server_addr() to public")
    assert len(lines) == 1 and "the server's identity could not be read" in lines[0], lines
    assert "permission denied for function inet_server_addr" in lines[0], lines
    assert _left(cluster, prefix) == []


def test_a_server_away_for_good_under_a_start_statement_is_a_start_that_failed(
    cluster: PrivateCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbtproof.errors import ConnectionFaultError
    from dbtproof.session.connections import SessionConnections

    _login_role(cluster, "no_roles_away", "nocreaterole", create=True)
    project = copy_shop(tmp_path / "shop")
    _point_at(cluster, monkeypatch)
    monkeypatch.setenv("SHOP_PG_USER", "no_roles_away")
    prefix = unique_prefix()
    real = SessionConnections.statement
    stopped: list[str] = []

    def stopped_first(self, sql, what):  # type: ignore[no-untyped-def]
        if sql.startswith("create schema") and not stopped:
            stopped.append(sql)
            cluster.stop("fast")  # and not started again until the start is over
        return real(self, sql, what)

    monkeypatch.setattr(SessionConnections, "statement", stopped_first)
    session = _session(project, tmp_path, prefix, retries=1)
    try:
        with pytest.raises(ConnectionFaultError) as raised:
            session.start()
    finally:
        cluster.start_if_stopped()
    session.teardown.run()
    message = str(raised.value)
    assert message.startswith(
        "dbtproof: the run could not start: the connection to the warehouse failed during "
        "the namespace's schema: "
    ), message
    assert "dbt_connect_retries = 1" in message and "no verdict" not in message, message
    assert _left(cluster, prefix) == []
