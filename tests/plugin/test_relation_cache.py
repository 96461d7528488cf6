"""dbt's relation cache under a run that builds the same views again and again (issue 23, 7).

A project of seeds, staging views and three table marts with folder-level ``+grants``, on
two threads, run as ``pytest dbt_project.yml tests/ -k "grants or roles" --dbt-seed``: the
grants items build the marts and their views, then a test rebuilds the views the run
already built, many times. With the cache left unpopulated, dbt's two threads could both
miss the schema at once and list it, and the slower listing put back a view the other
thread had just renamed to ``__dbt_backup``: its rename of ``__dbt_tmp`` into place then
failed with dbt's ``Cache inconsistency detected: in rename, new key ... already in
cache`` (about one build in ten on DuckDB, one in three on PostgreSQL). A correct project
never fails at random: every round must pass, on DuckDB and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    PG_DATABASE,
    PG_HOST,
    PG_PORT,
    database_acl_turn,
    drop_pg_prefix,
    superuser_connection,
    unique_prefix,
)

#: Rebuilds of the views per run: enough that the race, before the fix, all but surely
#: struck at least once (DuckDB: 3 of 30 builds failed, PostgreSQL: 9 of 30).
ROUNDS = 40

PROJECT = """\
name: rides
version: "1.0.0"
config-version: 2
profile: rides
models:
  rides:
    staging:
      +materialized: view
    marts:
      +materialized: table
      +grants:
        select: ['reporter']
"""

PROFILES = f"""\
rides:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: rides.duckdb
      schema: main
      threads: 2
    postgres:
      type: postgres
      host: {PG_HOST}
      port: {PG_PORT}
      user: "{{{{ env_var('RIDES_PG_USER') }}}}"
      password: ""
      dbname: {PG_DATABASE}
      schema: rides_dev
      threads: 2
"""

MODELS = {
    "staging/stg_trips.sql": "select * from {{ ref('raw_trips') }}\n",
    "staging/stg_riders.sql": "select * from {{ ref('raw_riders') }}\n",
    "staging/stg_drivers.sql": "select * from {{ ref('raw_drivers') }}\n",
    "marts/trips_by_rider.sql": (
        "select t.id, r.name from {{ ref('stg_trips') }} t\n"
        "join {{ ref('stg_riders') }} r on r.id = t.rider_id\n"
    ),
    "marts/trips_by_driver.sql": (
        "select t.id, d.name from {{ ref('stg_trips') }} t\n"
        "join {{ ref('stg_drivers') }} d on d.id = t.driver_id\n"
    ),
    "marts/fares.sql": "select count(*) as trips, sum(fare) as fares from {{ ref('stg_trips') }}\n",
}

INNER_TEST = f"""
ROUNDS = {ROUNDS}


def test_roles_see_views_rebuilt(dbt):
    dbt.build(select="+trips_by_rider")
    for _ in range(ROUNDS):
        dbt.build(select="staging", force=True)
    assert len(dbt.table("stg_trips")) == 50
    assert len(dbt.table("trips_by_rider")) == 50
"""


def _write_project(root: Path, ini: str) -> None:
    """The rides project, its two-thread profiles and the test that rebuilds its views."""
    (root / "dbt_project.yml").write_text(PROJECT)
    (root / "profiles.yml").write_text(PROFILES)
    (root / "pytest.ini").write_text("[pytest]\n" + ini)
    for path, sql in MODELS.items():
        (root / "models" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "models" / path).write_text(sql)
    (root / "seeds").mkdir()
    (root / "seeds" / "raw_trips.csv").write_text(
        "id,rider_id,driver_id,fare\n"
        + "".join(f"{i},{i % 7},{i % 5},{i * 1.5}\n" for i in range(50))
    )
    (root / "seeds" / "raw_riders.csv").write_text(
        "id,name\n" + "".join(f"{i},rider {i}\n" for i in range(7))
    )
    (root / "seeds" / "raw_drivers.csv").write_text(
        "id,name\n" + "".join(f"{i},driver {i}\n" for i in range(5))
    )
    (root / "tests").mkdir()
    (root / "tests" / "test_roles.py").write_text(INNER_TEST)


def _run(pytester: pytest.Pytester) -> tuple[dict[str, int], str]:
    result = pytester.runpytest_subprocess(
        "dbt_project.yml",
        "tests/",
        "-v",
        "-k",
        "grants or roles",
        "--dbt-seed",
        "-p",
        "no:cacheprovider",
    )
    return result.parseoutcomes(), result.stdout.str() + result.stderr.str()


@pytest.fixture
def rides(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pytester's folder, with no dbt variable of the developer's shell."""
    import os

    for name in list(os.environ):
        if name.startswith("DBT_"):
            monkeypatch.delenv(name)
    return pytester.path


@pytest.fixture
def rides_pg(rides: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A login role of the test's own (it may create roles: the run works as a run role)
    and a ``reporter`` role the marts' grants are mapped to; both, and every schema under
    the test's prefix, dropped afterwards. Yields the prefix."""
    prefix = unique_prefix()
    login, reporter = f"{prefix}ci", f"{prefix}reporter"
    connection = superuser_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"create role {login} login nosuperuser nocreatedb createrole")
            with database_acl_turn(cursor):
                cursor.execute(f"grant create, temporary on database {PG_DATABASE} to {login}")
            cursor.execute(f"create role {reporter} nologin")
    finally:
        connection.close()
    monkeypatch.setenv("RIDES_PG_USER", login)
    try:
        yield prefix
    finally:
        drop_pg_prefix(prefix, login)


def _duckdb_ignores_grants() -> bool:
    """Whether the installed dbt-duckdb leaves a ``grants`` config out (with a warning), as
    its releases since 1.9 do; 1.8's runs ``grant`` statements DuckDB refuses, and the dbt
    CLI then fails the project's build as well."""
    import dbt.include.duckdb

    macros = Path(dbt.include.duckdb.__file__).parent / "macros" / "adapters.sql"
    return "duckdb__apply_grants" in macros.read_text()


@pytest.mark.skipif(
    not _duckdb_ignores_grants(),
    reason="this dbt-duckdb runs `grant` on DuckDB, which refuses it (dbt's own build fails)",
)
def test_views_rebuilt_again_and_again_on_duckdb(pytester: pytest.Pytester, rides: Path) -> None:
    _write_project(rides, "dbt_target = duckdb\n")
    outcomes, output = _run(pytester)
    assert "Cache inconsistency" not in output, output
    # dbt applies no grants on DuckDB: the grants items are skipped, never passed.
    assert (outcomes.get("passed"), outcomes.get("skipped"), outcomes.get("failed")) == (
        1,
        3,
        None,
    ), output


def test_views_rebuilt_again_and_again_on_postgres(
    pytester: pytest.Pytester, rides: Path, rides_pg: str
) -> None:
    _write_project(
        rides,
        f"dbt_target = postgres\ndbt_schema_prefix = {rides_pg}\n"
        f"dbt_grant_roles = reporter:{rides_pg}reporter\n",
    )
    outcomes, output = _run(pytester)
    assert "Cache inconsistency" not in output, output
    assert (outcomes.get("passed"), outcomes.get("failed")) == (4, None), output
    assert "dbt_project.yml::trips_by_rider::grants PASSED" in output


@pytest.mark.parametrize("threads", [1, 2])
def test_the_cache_is_populated_only_for_several_threads(
    pytester: pytest.Pytester, rides: Path, rides_pg: str, threads: int
) -> None:
    """Populating dbt's relation cache runs dbt-postgres's query of the links between
    relations over the whole database's ``pg_depend``/``pg_rewrite``, on every build: only
    worth it where two threads can race (the test above). dbt's debug log (kept with
    --dbt-keep) shows whether it ran."""
    _write_project(rides, f"dbt_target = postgres\ndbt_schema_prefix = {rides_pg}\n")
    profiles = (rides / "profiles.yml").read_text()
    (rides / "profiles.yml").write_text(profiles.replace("threads: 2", f"threads: {threads}"))
    (rides / "tests" / "test_roles.py").write_text(
        "def test_builds(dbt):\n    dbt.build(select='+stg_trips')\n"
    )
    result = pytester.runpytest_subprocess("tests/", "--dbt-keep", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    logs = [path.read_text() for path in rides.rglob("dbt.log")]
    assert logs, "dbt's debug log is kept"
    linked = any("pg_rewrite" in log for log in logs)
    assert linked == (threads > 1), f"threads {threads}: link query run: {linked}"
