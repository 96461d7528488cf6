"""Connection faults on a private PostgreSQL cluster: backends terminated at random moments,
the server restarted during a run.

Every test ends with its true verdict (passes pass, failures fail — retried where a read's
connection died) or as an error that names the connection fault; never a wrong verdict,
never a fixture blamed for the connection; and the run's namespace is dropped.
"""

from __future__ import annotations

import os
import random
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from conftest import PG_GRANT_ROLES, copy_shop, unique_prefix
from private_postgres import SUPERUSER_PASSWORD, PrivateCluster, private_postgres

from dbtproof import source
from dbtproof.engine.request import ModelRunRequest

ROLE = "faulty"

#: What names the cause when a test errs because of its connection.
CAUSES = (
    "connection to the warehouse failed",
    "cannot reach the warehouse",
    "terminating connection due to administrator command",
    "server closed the connection unexpectedly",
    "connection already closed",
    "Connection refused",
    "the database system is",
)

#: Tests whose true verdict is known: `test_right_*` pass, `test_wrong_*` fail.
TESTS = """
import os
import time
from pathlib import Path
from typing import Any

import pytest

from dbtproof import source

PAUSE = float(os.environ.get("FAULT_TEST_PAUSE", "0.02"))


def _progress(name):
    Path("progress").write_text(name)


@pytest.mark.parametrize("n", range(int(os.environ.get("FAULT_TESTS", "100"))))
def test_right_query(dbt, n):
    _progress(f"query {n}")
    time.sleep(PAUSE)
    assert dbt.query(f"select {n} as n") == [{"n": n}]


@pytest.mark.parametrize("n", range(int(os.environ.get("FAULT_TESTS", "100")) // 4))
def test_right_run_model(dbt, n):
    _progress(f"run_model {n}")
    time.sleep(PAUSE)
    out = dbt.run_model(
        "stg_customers",
        given={source("shop", "raw_customers"): [{"customer_id": n, "email": "A@B"}]},
    )
    assert out == [{"customer_id": n, "email": "a@b"}]


@pytest.mark.parametrize("n", range(int(os.environ.get("FAULT_TESTS", "100")) // 10))
def test_wrong_query(dbt, n):
    time.sleep(PAUSE)
    assert dbt.query(f"select {n} as n") == [{"n": n + 1}]


def test_right_table_after_seed(dbt):
    dbt.seed(select="raw_customers")
    assert len(dbt.table("raw_customers")) > 0
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A private cluster (trust auth) with the non-superuser login role the runs use."""
    with private_postgres("trust") as cluster:
        cluster.psql(f"create role {ROLE} login nosuperuser nocreaterole nocreatedb")
        cluster.psql(f"grant create, temporary on database postgres to {ROLE}")
        yield cluster


def _superuser(cluster: PrivateCluster):  # type: ignore[no-untyped-def]
    connection = psycopg2.connect(host="127.0.0.1", port=cluster.port, user="postgres",
                                  password=SUPERUSER_PASSWORD, dbname="postgres")  # fmt: skip
    connection.autocommit = True
    return connection


def _schemas(cluster: PrivateCluster, prefix: str) -> list[str]:
    with _superuser(cluster) as connection, connection.cursor() as cursor:
        cursor.execute("select nspname from pg_namespace where starts_with(nspname, %s)", (prefix,))
        return sorted(row[0] for row in cursor.fetchall())


def _project(shop: Path, cluster: PrivateCluster, monkeypatch: pytest.MonkeyPatch, ini: str) -> str:
    prefix = unique_prefix()
    for name, value in {"SHOP_PG_HOST": "127.0.0.1", "SHOP_PG_PORT": str(cluster.port),
                        "SHOP_PG_USER": ROLE, "SHOP_PG_DATABASE": "postgres"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    (shop / "pytest.ini").write_text(
        f"[pytest]\ntestpaths = pytests\ndbt_target = postgres\ndbt_schema_prefix = {prefix}\n"
        + PG_GRANT_ROLES
        + ini
    )
    (shop / "pytests" / "test_verdicts.py").write_text(TESTS)
    return prefix


def _verdicts(junit: Path) -> dict[str, tuple[str, str]]:
    """Each test case's outcome (passed, failure, error, skipped) and its message."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        outcome, text = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
                text = f"{child.get('message', '')}\n{child.text or ''}"
        found[name] = (outcome, text)
    return found


def _check_verdicts(verdicts: dict[str, tuple[str, str]], output: str) -> list[str]:
    """Assert no wrong verdict; return the tests that erred for their connection."""
    no_verdict = []
    for name, (outcome, text) in verdicts.items():
        named_cause = any(cause in text for cause in CAUSES)
        assert "cannot be typed" not in text, f"{name} blames a fixture:\n{text}"
        if outcome != "passed" and named_cause and "AssertionError" not in text:
            no_verdict.append(name)
            continue
        if "test_wrong_" in name:
            assert outcome == "failure" and "AssertionError" in text, f"{name}: {outcome}\n{text}"
        else:
            assert outcome == "passed", f"{name}: {outcome}\n{text}\n{output[-3000:]}"
    # reported as errors, not failures (-rfE: one line per failure and error)
    errors = [line.split(" ")[1] for line in output.splitlines() if line.startswith("ERROR ")]
    failed = [line.split(" ")[1] for line in output.splitlines() if line.startswith("FAILED ")]
    for name in no_verdict:
        short = name.split("::")[-1]
        assert any(e.endswith(f"::{short}") for e in errors), f"{name}\n{output[-3000:]}"
        assert not any(f.endswith(f"::{short}") for f in failed), f"{name}\n{output[-3000:]}"
    return no_verdict


class Terminator(threading.Thread):
    """Terminates one of the role's backends at random moments until stopped."""

    def __init__(self, cluster: PrivateCluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stopped = threading.Event()
        self.terminated = 0
        self.random = random.Random(os.environ.get("FAULT_SEED", "12"))

    def run(self) -> None:
        connection = _superuser(self.cluster)
        try:
            while not self.stopped.wait(self.random.uniform(0.05, 0.4)):
                with connection.cursor() as cursor:
                    cursor.execute("select pid from pg_stat_activity where usename = %s", (ROLE,))
                    pids = [row[0] for row in cursor.fetchall()]
                    if pids:
                        cursor.execute(
                            "select pg_terminate_backend(%s)", (self.random.choice(pids),)
                        )
                        self.terminated += 1
        finally:
            connection.close()


def test_backends_terminated_at_random_moments(
    pytester: pytest.Pytester, shop: Path, cluster: PrivateCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = _project(shop, cluster, monkeypatch, "")
    monkeypatch.setenv("FAULT_TESTS", "150")
    terminator = Terminator(cluster)
    process = pytester.popen(
        [os.sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--junitxml=verdicts.xml", "-rfE"],
        stdin=None,
    )  # fmt: skip
    terminator.start()
    try:
        out, err = process.communicate(timeout=600)
    finally:
        terminator.stopped.set()
        terminator.join()
    output = out.decode() + err.decode()
    assert (shop / "verdicts.xml").is_file(), output
    verdicts = _verdicts(shop / "verdicts.xml")
    assert len(verdicts) >= 200, output[-3000:]
    assert terminator.terminated >= 5, "the run met terminated backends"
    _check_verdicts(verdicts, output)
    assert _schemas(cluster, prefix) == [], output[-3000:]


def test_a_restart_during_the_run(
    pytester: pytest.Pytester, shop: Path, cluster: PrivateCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = _project(shop, cluster, monkeypatch, "dbt_connect_retries = 1\n")
    monkeypatch.setenv("FAULT_TESTS", "60")
    monkeypatch.setenv("FAULT_TEST_PAUSE", "0.05")
    process = pytester.popen(
        [os.sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--junitxml=verdicts.xml", "-rfE", "pytests"],
        stdin=None,
    )  # fmt: skip
    progress = shop / "progress"
    deadline = time.monotonic() + 180
    while not (progress.exists() and progress.read_text() == "query 20"):
        assert process.poll() is None and time.monotonic() < deadline, "the run reached test 20"
        time.sleep(0.01)
    cluster.stop("fast")
    time.sleep(3)
    cluster.start()
    out, err = process.communicate(timeout=600)
    output = out.decode() + err.decode()
    assert (shop / "verdicts.xml").is_file(), output
    verdicts = _verdicts(shop / "verdicts.xml")
    errored = _check_verdicts(verdicts, output)
    assert errored, f"tests fell in the gap:\n{output[-3000:]}"
    assert len(errored) < len(verdicts) / 2, output[-3000:]
    assert _schemas(cluster, prefix) == [], output[-3000:]


@pytest.fixture
def session(
    cluster: PrivateCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """A started in-process dbtproof session on the private cluster (1 connect retry)."""
    from dbtproof.safety.namespace import new_run_id
    from dbtproof.session.session import DbtSession, SessionSettings

    project = copy_shop(tmp_path / "shop")
    for name in list(os.environ):
        if name.startswith(("DBT_", "SHOP_")):
            monkeypatch.delenv(name)
    for name, value in {"SHOP_PG_HOST": "127.0.0.1", "SHOP_PG_PORT": str(cluster.port),
                        "SHOP_PG_USER": ROLE, "SHOP_PG_DATABASE": "postgres"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    prefix = unique_prefix()
    settings = SessionSettings(
        project_dir=project, profiles_dir=project, workdir=tmp_path / "work",
        run_id=new_run_id(prefix), target="postgres", connect_retries=1, warm_parse=False,
    )  # fmt: skip
    started = DbtSession(settings).start()
    try:
        yield started
    finally:
        cluster.start_if_stopped()
        started.teardown.run()
        assert _schemas(cluster, prefix) == []


def test_a_server_that_stays_down_is_named_as_the_cause(
    session: Any, cluster: PrivateCluster
) -> None:
    from dbtproof.errors import ConnectionFaultError

    cluster.stop("fast")
    with pytest.raises(ConnectionFaultError) as raised:
        session.connections.query("select 1 as n")
    message = str(raised.value)
    assert "Connection refused" in message, message
    assert "2 attempts over 0.5 s; ini dbt_connect_retries = 1" in message, message
    # a model run on fixtures blames the connection, not a fixture row
    with pytest.raises(ConnectionFaultError) as raised:
        session.run_model(
            ModelRunRequest(
                "stg_customers", given={source("shop", "raw_customers"): [{"customer_id": 1}]}
            )
        )
    assert "Connection refused" in str(raised.value)
    assert "cannot be typed" not in str(raised.value)


def test_a_server_back_within_the_retries_is_reached(session: Any, cluster: PrivateCluster) -> None:
    cluster.stop("fast")
    starter = threading.Timer(0.2, cluster.start)
    starter.start()
    try:
        session.connections.drop_connection()
        assert session.connections.query("select 1 as n") == [
            {"n": 1}
        ]  # waited 0.5 s, then reached it
    finally:
        starter.join()


def test_a_refused_login_is_not_retried(session: Any, cluster: PrivateCluster) -> None:
    from dbtproof.errors import ConnectionAuthError

    cluster.psql(f"alter role {ROLE} nologin")
    try:
        session.connections.drop_connection()
        with pytest.raises(ConnectionAuthError) as raised:
            session.connections.query("select 1 as n")
    finally:
        cluster.psql(f"alter role {ROLE} login")
    message = str(raised.value)
    assert f'role "{ROLE}" is not permitted to log in' in message, message
    assert "(not retried" in message, message


def test_the_liveness_lock_is_taken_again_after_a_fault(
    session: Any, cluster: PrivateCluster
) -> None:
    application = f"dbtproof {session.settings.run_id}"
    held = (
        "select count(*) from pg_locks l join pg_stat_activity a using (pid) "
        "where l.locktype = 'advisory' and l.mode = 'ShareLock' and a.application_name = %s"
    )
    connection = _superuser(cluster)  # no `with`: psycopg2 would make it one transaction,
    cursor = connection.cursor()  # and pg_stat_activity one snapshot
    try:
        cursor.execute(held, (application,))
        assert cursor.fetchone() == (1,)
        cursor.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
            (application,),
        )
        time.sleep(0.2)
        cursor.execute(held, (application,))
        assert cursor.fetchone() == (0,), "the lock died with its connection"
        session.connections.drop_connection()  # what a read does after a connection fault
        cursor.execute(held, (application,))
        assert cursor.fetchone() == (1,), "`dbtproof clean` sees the run alive again"
    finally:
        connection.close()


def test_teardown_waits_for_the_warehouse_to_come_back(
    session: Any, cluster: PrivateCluster
) -> None:
    prefix = session.schema.split("_")[0] + "_"
    session.connections.execute(f'create table "{session.schema}".kept (x int)')
    cluster.stop("fast")
    starter = threading.Timer(1.5, cluster.start)  # within the teardown's longer patience
    starter.start()
    try:
        session.teardown.run()
    finally:
        starter.join()
    assert _schemas(cluster, prefix) == []


def test_teardown_drops_the_namespace_although_its_connections_are_cut(
    session: Any, cluster: PrivateCluster
) -> None:
    """The teardown is the run's last chance to leave nothing behind: a drop cut short is
    tried again, on fresh connections, as patiently as a connection is opened."""
    prefix = session.schema.split("_")[0] + "_"
    session.connections.execute(f'create table "{session.schema}".kept (x int)')
    # the first three `drop schema` statements of the run's role end their own backend, as an
    # administrator's pg_terminate_backend would mid-drop
    cluster.psql(
        "create sequence cut_drops;"
        "create function cut_drop() returns event_trigger language plpgsql security definer "
        f"as $$ begin if session_user = '{ROLE}' and nextval('cut_drops') <= 3 then "
        "perform pg_terminate_backend(pg_backend_pid()); end if; end $$;"
        "create event trigger cut_drop on ddl_command_start when tag in ('DROP SCHEMA') "
        "execute function cut_drop();"
    )
    try:
        session.teardown.run()
        with _superuser(cluster) as connection, connection.cursor() as cursor:
            cursor.execute("select last_value from cut_drops")
            assert cursor.fetchone() == (4,), "three drops were cut short, the fourth held"
    finally:
        cluster.psql(
            "drop event trigger cut_drop; drop function cut_drop(); drop sequence cut_drops;"
        )
    assert _schemas(cluster, prefix) == []
