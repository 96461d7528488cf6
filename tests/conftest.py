"""Shared fixtures of dbtproof's own test suite.

The suite runs the plugin the way users do: pytest's ``pytester`` starts pytest
in a subprocess inside a copy of the example project, against real DuckDB files
and the real PostgreSQL server at 127.0.0.1:5432. PostgreSQL tests log in as a
role the suite creates with the rights CI would give: CREATE and TEMP on the
test database, not superuser.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import string
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from pytest_zygote import Zygote

# Imported here, before any test: pytester restores sys.modules when its test ends, so a
# psycopg2 first imported inside a pytester test is dropped and imported again later, and
# its C extension (initialised once per process) then never re-attaches `psycopg2.errors`,
# which dbt-postgres needs to open a connection.

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"
PG_HOST, PG_PORT, PG_DATABASE = "127.0.0.1", 5432, "test"
#: The suite's login role; ``DBTPROOF_SUITE_PG_ROLE`` names another, so that two runs of the
#: suite on one server (a developer's beside CI's) never share one: a run without a run role
#: cannot tell its own schemas from those another run of its login role creates meanwhile.
PG_ROLE = os.environ.get("DBTPROOF_SUITE_PG_ROLE", "dbtproof_ci")
PG_PASSWORD = "dbtproof-ci-password"
#: The example's customers mart grants select to `reporter`, a role the shared server does not
#: have: the suite's PostgreSQL runs map it to PUBLIC (its `grants` item then checks that).
PG_GRANT_ROLES = "dbt_grant_roles = reporter:public\n"
#: The example's as_role tests, which need a `reporter` role granted to the test user.
EXAMPLE_ACCESS_TESTS = "test_access.py"
_IGNORE = shutil.ignore_patterns(
    "target", "logs", "*.duckdb", "*.duckdb.wal", ".user.yml", "__pycache__"
)


def superuser_connection():  # type: ignore[no-untyped-def]
    """A psycopg2 connection to the test database as the superuser (setup and checks only)."""

    connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user="postgres")
    connection.autocommit = True
    return connection


def pytest_configure(config: pytest.Config) -> None:
    """Give Ctrl-C back when the suite was started with SIGINT ignored.

    A shell without job control starts background commands (``cmd &``) with SIGINT ignored,
    and every process they start inherits that: the tests that press Ctrl-C on a pytest run
    (lifecycle, dying runs, Spark) would see it ignored. Python's own handler is put back, so
    the pytest runs the tests start get Ctrl-C as from a terminal.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


#: The suite's longest modules (a minute or more of one worker each, with many runs): they go
#: first, so that under ``-n 2`` no worker is left with one of them when the other is done.
LONGEST_FIRST = (
    "test_unit_parity.py",
    "test_warm_parse.py",
    "test_dying_runs_postgres.py",
    "test_lifecycle_postgres.py",
    "test_faults_postgres.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules of :data:`LONGEST_FIRST` first (in that order), the rest as collected."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the collection's order within each rank


#: The environment the suite started with: the pytest zygote starts with it, before any test
#: changes the environment (each run gets the test's own environment after the fork).
_STARTING_ENVIRON = dict(os.environ)


@pytest.fixture(scope="session")
def suite_zygote() -> Iterator[Zygote | None]:
    """The worker's pytest zygote (``pytest_zygote.py``), or None when turned off."""
    if os.environ.get("DBTPROOF_SUITE_NO_ZYGOTE"):
        yield None
        return
    zygote = Zygote(_STARTING_ENVIRON)
    try:
        yield zygote
    finally:
        zygote.close()


@pytest.fixture
def pytester(
    pytester: pytest.Pytester, request: pytest.FixtureRequest, suite_zygote: Zygote | None
) -> pytest.Pytester:
    """pytest's ``pytester``, whose ``runpytest_subprocess`` forks its runs from the
    worker's zygote (dbt imported once) unless the test is marked ``fresh_process``."""
    if suite_zygote is None or request.node.get_closest_marker("fresh_process"):
        return pytester
    zygote = suite_zygote
    popen = pytester.popen

    def forked(cmdargs: Any, **kw: Any) -> Any:
        # runpytest_subprocess's runs (into files); a test's own popen call is left alone
        args = [os.fspath(arg) for arg in cmdargs]
        stdout, stderr = kw.get("stdout"), kw.get("stderr")
        if args[:2] != [sys.executable, "-mpytest"] or not hasattr(stdout, "name"):
            return popen(cmdargs, **kw)
        assert hasattr(stderr, "name"), stderr
        env = dict(os.environ)  # as Pytester.popen builds it
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
        return zygote.spawn(args[2:], os.getcwd(), env, stdout.name, stderr.name)

    pytester.popen = forked  # type: ignore[method-assign]
    return pytester


#: What a test's command runs: the dbt CLI, or ``python -m pytest``.
Command = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_command(request: pytest.FixtureRequest, suite_zygote: Zygote | None) -> Command:
    """``run_command(command, cwd, env, timeout=300)``: ``subprocess.run(command,
    capture_output=True, text=True)``, but forked from the worker's zygote (dbt imported
    once) when *command* is the ``dbt`` CLI or ``python -m pytest`` of this interpreter,
    unless the test is marked ``fresh_process``."""
    dbt = str(Path(sys.executable).with_name("dbt"))
    zygote = None if request.node.get_closest_marker("fresh_process") else suite_zygote

    def run(
        command: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        command = [str(part) for part in command]
        if zygote is not None and command[0] == dbt:
            return zygote.run("dbt", command[1:], str(cwd), env, timeout)
        if zygote is not None and command[:3] == [sys.executable, "-m", "pytest"]:
            return zygote.run("pytest", command[3:], str(cwd), env, timeout)
        return subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )

    return run


@contextmanager
def database_acl_turn(cursor: Any) -> Iterator[None]:
    """Hold the suite's lock on the test database's privileges (a superuser cursor, autocommit).

    Granting on the database (or dropping a role that holds such a grant) rewrites the
    database's one catalog row; two xdist workers doing it at once fail with "tuple
    concurrently updated", so they take turns.
    """
    cursor.execute("select pg_advisory_lock(hashtext('dbtproof suite: database privileges'))")
    try:
        yield
    finally:
        cursor.execute("select pg_advisory_unlock(hashtext('dbtproof suite: database privileges'))")


def pg_schemas(prefix: str) -> list[str]:
    """Schemas of the test database whose names start with *prefix*."""
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute(
            "select nspname from pg_namespace where starts_with(nspname, %s) order by 1", (prefix,)
        )
        return [row[0] for row in cursor.fetchall()]


def pg_namespaces(prefix: str) -> list[str]:
    """The run and worker namespaces (``<prefix>_<minute>_<random>[_gw<N>]``) that have a
    schema of the test database, their custom schemas (``<namespace>_marts``) folded in."""
    roots = set()
    for schema in pg_schemas(prefix):
        found = re.match(r"^(.*?_\d{12}_[a-z0-9]{6}(?:_gw\d+)?)(?:_|$)", schema)
        roots.add(found.group(1) if found else schema)
    return sorted(roots)


def pg_relations() -> set[tuple[str, str]]:
    """Every schema (as ``(schema, "")``), relation and function (``name(argument types)``)
    of the test database, system ones aside.

    Compared before and after a run, it shows whatever the run wrote outside its namespace.
    """
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute(
            "select n.nspname, coalesce(c.relname, '') from pg_namespace n "
            "left join pg_class c on c.relnamespace = n.oid "
            "where n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema' "
            "union all "
            "select n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) "
            "|| ')' from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'"
        )
        rows = cursor.fetchall()
    # Namespaces of runs, and whatever other tests of this suite create under their own
    # unique prefix (concurrently, under xdist), are not "outside".
    run = re.compile(r"^(t[a-z0-9]{5}_|dbtproof_\d{12}_)")
    return {(row[0], row[1]) for row in rows if not run.match(row[0])}


def drop_pg_schemas(prefix: str) -> None:
    """Drop every schema starting with *prefix* (cleanup after a test that keeps them)."""
    connection = superuser_connection()
    try:
        with connection.cursor() as cursor:
            for schema in pg_schemas(prefix):
                cursor.execute(f'drop schema "{schema}" cascade')
    finally:
        connection.close()


def point_shop_at_pg(shop: Path, monkeypatch: pytest.MonkeyPatch, user: str, prefix: str) -> None:
    """Point the example's ``postgres`` target at *user* (trust auth, no password) and the
    run's schemas at *prefix*, replacing any ``SHOP_*`` variable of the shell."""
    for name in list(os.environ):
        if name.startswith("SHOP_"):
            monkeypatch.delenv(name)
    for name, value in {
        "SHOP_PG_HOST": PG_HOST,
        "SHOP_PG_PORT": str(PG_PORT),
        "SHOP_PG_USER": user,
        "SHOP_PG_DATABASE": PG_DATABASE,
    }.items():
        monkeypatch.setenv(name, value)
    (shop / "pytest.ini").write_text(
        f"[pytest]\ntestpaths = pytests\ndbt_target = postgres\ndbt_schema_prefix = {prefix}\n"
        + PG_GRANT_ROLES
    )


def drop_pg_prefix(prefix: str, login_role: str) -> None:
    """Drop every schema and role whose name starts with *prefix*, and what the roles own
    (*login_role*, which may have been granted the others, last)."""
    connection = superuser_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select nspname from pg_namespace where starts_with(nspname, %s)", (prefix,)
            )
            for (schema,) in cursor.fetchall():
                cursor.execute(f'drop schema "{schema}" cascade')
            cursor.execute(
                "select rolname from pg_roles where starts_with(rolname, %s) order by rolname = %s",
                (prefix, login_role),
            )
            roles = [row[0] for row in cursor.fetchall()]
            with database_acl_turn(cursor):
                for role in roles:
                    cursor.execute(f'drop owned by "{role}" cascade')
                    cursor.execute(f'drop role "{role}"')
    finally:
        connection.close()


def unique_prefix() -> str:
    """A schema prefix no other test uses, so checks for leftovers see only this test's."""
    alphabet = string.ascii_lowercase + string.digits
    return "t" + "".join(secrets.choice(alphabet) for _ in range(5)) + "_"


def login_role(role: str) -> dict[str, str]:
    """Create the PostgreSQL login *role* if it is missing (non-superuser, CREATE + TEMP on
    the database, the suite's password); return the environment variables that point the
    example's ``postgres`` target at it."""
    connection = superuser_connection()
    try:
        with connection.cursor() as cursor, database_acl_turn(cursor):
            cursor.execute("select 1 from pg_roles where rolname = %s", (role,))
            if cursor.fetchone() is None:
                cursor.execute(
                    f"create role {role} login nosuperuser nocreatedb nocreaterole password %s",
                    (PG_PASSWORD,),
                )
            cursor.execute(f"grant create, temporary on database {PG_DATABASE} to {role}")
    finally:
        connection.close()
    return {
        "SHOP_PG_HOST": PG_HOST,
        "SHOP_PG_PORT": str(PG_PORT),
        "SHOP_PG_USER": role,
        "SHOP_PG_PASSWORD": PG_PASSWORD,
        "SHOP_PG_DATABASE": PG_DATABASE,
    }


@pytest.fixture(scope="session")
def pg_role() -> dict[str, str]:
    """Create the suite's PostgreSQL role (non-superuser, CREATE + TEMP on the database).

    Returns the environment variables that point the example's ``postgres`` target at it.
    """
    return login_role(PG_ROLE)


def copy_shop(destination: Path, with_example_tests: bool = False) -> Path:
    """Copy the example dbt project into *destination* (its pytest tests only if asked)."""
    shutil.copytree(SHOP, destination, ignore=_IGNORE, dirs_exist_ok=True)
    if not with_example_tests:
        shutil.rmtree(destination / "pytests", ignore_errors=True)
        (destination / "pytests").mkdir()
    return destination


@pytest.fixture
def shop(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example dbt project as pytester's working folder, without its tests.

    dbt variables of the developer's shell are removed so they cannot redirect the run.
    """
    for name in list(os.environ):
        if name.startswith(("DBT_", "SHOP_")):
            monkeypatch.delenv(name)
    return copy_shop(pytester.path)


@pytest.fixture
def shop_pg(shop: Path, pg_role: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The example project pointed at PostgreSQL as the suite's role; yields a unique prefix.

    Schemas left under that prefix are dropped afterwards, whatever the test did.
    """
    for name, value in pg_role.items():
        monkeypatch.setenv(name, value)
    prefix = unique_prefix()
    (shop / "pytest.ini").write_text(
        f"[pytest]\ntestpaths = pytests\ndbt_target = postgres\ndbt_schema_prefix = {prefix}\n"
        + PG_GRANT_ROLES
    )
    yield prefix
    drop_pg_schemas(prefix)


def duckdb_query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Run *sql* on the DuckDB file *path* in a fresh process and return its rows.

    A subprocess, because importing duckdb into a long-lived xdist worker that has
    loaded other native libraries has been seen to abort the worker.
    """
    import json
    import subprocess
    import sys

    script = (
        "import duckdb, json, sys\n"
        "with duckdb.connect(sys.argv[1]) as c:\n"
        "    print(json.dumps(c.execute(sys.argv[2]).fetchall(), default=str))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), sql], capture_output=True, text=True, check=True
    )
    return [tuple(row) for row in json.loads(done.stdout)]


class SessionUnderTest:
    """A started session as the engine's tests use it: every member of the session and
    of its commands, connections and access parts (``build``, ``query``, ``as_role``...),
    and ``run_model`` with the ``dbt`` fixture's signature (fixture files found from the
    calling test's folder), the call sent to the session as one request."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __getattr__(self, name: str) -> Any:
        session = self.session
        for owner in (session, session.commands, session.connections, session.access):
            if hasattr(owner, name):
                return getattr(owner, name)
        raise AttributeError(name)

    def run_model(self, model: Any, given: Any = None, **options: Any) -> Any:
        """The session's ``run_model`` of ``ModelRunRequest(model, given, **options)``."""
        from dbtproof.engine.request import ModelRunRequest

        caller = Path(sys._getframe(1).f_code.co_filename).parent
        request = ModelRunRequest(model, given, search_dirs=(caller,), **options)
        return self.session.run_model(request)


@contextmanager
def engine_session(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    project: Path,
    target: str,
) -> Iterator[Any]:
    """A started in-process dbtproof session on *project* for *target* (``duckdb``, or
    ``postgres`` as the suite's role), torn down afterwards with what it left."""
    from dbtproof.safety.namespace import new_run_id
    from dbtproof.session.session import DbtSession, SessionSettings

    with pytest.MonkeyPatch.context() as patch:
        for name in ("SHOP_REGION", "DBT_PROFILES_DIR"):
            patch.delenv(name, raising=False)
        prefix = "dbtproof_"
        if target == "postgres":
            for name, value in request.getfixturevalue("pg_role").items():
                patch.setenv(name, value)
            prefix = unique_prefix()
        settings = SessionSettings(
            project_dir=project,
            profiles_dir=project,
            workdir=tmp_path_factory.mktemp(f"work_{target}"),
            run_id=new_run_id(prefix),
            target="postgres" if target == "postgres" else "dev",
        )
        session = DbtSession(settings).start()
        try:
            yield SessionUnderTest(session)
        finally:
            session.teardown.run()
            if target == "postgres":
                drop_pg_schemas(prefix)


# -- the agents' tests (tests/plugin/test_agents_mcp.py, tests/plugin/test_agents_readonly.py)

#: The PostgreSQL password of :func:`pg_env` (trust auth: any password logs in).
CANARY_ENV = "canary-env-password-7Hq2xZ"


@pytest.fixture
def shop_copy(tmp_path: Path) -> Path:
    """A copy of the example project, without its pytest tests."""
    return copy_shop(tmp_path / "shop")


@pytest.fixture
def duckdb_env(shop_copy: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The example's DuckDB target in the copy, with a sample taken."""
    for name in list(os.environ):
        if name.startswith(("DBT_", "SHOP_")):
            monkeypatch.delenv(name)
    env = {"SHOP_DUCKDB_PATH": str(shop_copy / "shop.duckdb")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from dbtproof.agents.sample import take_sample

    take_sample(shop_copy, shop_copy / "target" / "dbtproof-sample", target="dev",
                profiles_dir=shop_copy)  # fmt: skip
    return env


@pytest.fixture
def pg_env(
    shop_copy: Path, pg_role: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The example's PostgreSQL target, its password the env canary, with a sample taken
    into a schema of this test's own."""
    for name in list(os.environ):
        if name.startswith(("DBT_", "SHOP_")):
            monkeypatch.delenv(name)
    prefix = unique_prefix()
    env = {
        "SHOP_PG_HOST": PG_HOST,
        "SHOP_PG_PORT": str(PG_PORT),
        "SHOP_PG_USER": PG_ROLE,
        "SHOP_PG_PASSWORD": CANARY_ENV,
        "SHOP_PG_DATABASE": PG_DATABASE,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from dbtproof.agents.sample import SampleOptions, take_sample

    options = SampleOptions(schema=f"{prefix}sample")
    take_sample(shop_copy, shop_copy / "target" / "dbtproof-sample", target="postgres",
                profiles_dir=shop_copy, options=options)  # fmt: skip
    yield {**env, "prefix": prefix}
    drop_pg_prefix(prefix, PG_ROLE + "_none")
