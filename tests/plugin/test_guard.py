"""Detection: SQL that relocation cannot see (hooks, materializations, run_query,
``dbt.execute``) writes outside the namespace, and the run says so and undoes it.

Each place a project can run SQL writes a table outside the run's namespace: on DuckDB
into a database attached by the user's profile, on PostgreSQL into a schema the
connecting role may create in (its ``"$user"`` schema). The run must name each write
and the call that made it, and fail; on DuckDB it leaves nothing behind. On PostgreSQL
without a run role, nothing proves the run (and not another process of the same
login) created the object: it is named, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from conftest import (
    PG_DATABASE,
    database_acl_turn,
    drop_pg_prefix,
    duckdb_query,
    point_shop_at_pg,
    superuser_connection,
    unique_prefix,
)

LEAKY_MATERIALIZATION = """
{% materialization leaky, default %}
  {% call statement('main') -%}
    create table OUTSIDE.mat_leak as select 1 as x
  {%- endcall %}
  {% do adapter.commit() %}
  {{ return({'relations': []}) }}
{% endmaterialization %}
"""

MODELS = {
    "post_hook_leak.sql": (
        "{{ config(materialized='table', "
        "post_hook={'sql': 'create table OUTSIDE.post_hook_leak as select 1 as x', "
        "'transaction': False}) }}\n"
        "select 1 as id\n"
    ),
    "run_query_leak.sql": (
        "{% if execute %}{% do run_query("
        "'create table if not exists OUTSIDE.run_query_leak as select 1 as x') %}{% endif %}\n"
        "select 1 as id\n"
    ),
    "mat_leak.sql": "{{ config(materialized='leaky') }}\nselect 1 as id\n",
}

FIXTURE_TESTS = """
import pytest

from dbtproof.errors import IsolationError


def test_execute(dbt):
    with pytest.raises(IsolationError, match=r"created table [\\w.]*OUTSIDE.exec_leak "
                       r"\\((dropped again by dbtproof|owner \\w+; not dropped: dbtproof "
                       r"cannot prove this run created it)\\), by dbt.execute\\('create table"):
        dbt.execute("create table OUTSIDE.exec_leak as select 1 as x")


def test_post_hook(dbt):
    with pytest.raises(IsolationError, match=r"OUTSIDE.post_hook_leak .*by `dbt build"):
        dbt.build(select="post_hook_leak")


def test_custom_materialization(dbt):
    with pytest.raises(IsolationError, match=r"OUTSIDE.mat_leak .*by `dbt run --select mat_leak"):
        dbt.run(select="mat_leak")


def test_run_query_in_run_model(dbt):
    with pytest.raises(IsolationError, match=r"OUTSIDE.run_query_leak .*run_model\\('run_query"):
        dbt.run_model("run_query_leak", given={})


def test_a_clean_call_passes(dbt):
    dbt.build(select="+stg_customers")
    assert len(dbt.table("stg_customers")) == 10
"""

LEAKS = ("exec_leak", "post_hook_leak", "mat_leak", "run_query_leak")


def _leaky(shop: Path, outside: str) -> None:
    """Add the models, materialization and pytest tests that write to *outside*."""
    (shop / "macros" / "leaky.sql").write_text(LEAKY_MATERIALIZATION.replace("OUTSIDE", outside))
    (shop / "models" / "leaks").mkdir()
    for name, text in MODELS.items():
        (shop / "models" / "leaks" / name).write_text(text.replace("OUTSIDE", outside))
    (shop / "pytests" / "test_leaks.py").write_text(FIXTURE_TESTS.replace("OUTSIDE", outside))


def _hook(shop: Path, sql: str) -> None:
    project = shop / "dbt_project.yml"
    project.write_text(project.read_text() + f'\non-run-start:\n  - "{sql}"\n')


def _attach_lake(shop: Path) -> Path:
    """Attach a DuckDB database 'lake' to the dev target, holding one table of the user's."""
    lake = shop.parent / f"{shop.name}_lake.duckdb"
    duckdb_query(lake, "create table users_table as select 42 as answer")
    profiles = yaml.safe_load((shop / "profiles.yml").read_text())
    profiles["shop"]["outputs"]["dev"]["attach"] = [{"path": str(lake), "alias": "lake"}]
    (shop / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))
    return lake


def _lake_tables(lake: Path) -> list[str]:
    rows = duckdb_query(lake, "select table_name from duckdb_tables() order by 1")
    return [str(row[0]) for row in rows]


@pytest.fixture
def pg_outside(shop: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The example pointed at PostgreSQL as a fresh role with its own ``"$user"`` schema.

    A role of its own, so that what these tests write (on purpose) outside the namespace
    is invisible to other runs' guards: they only watch objects their own role owns.
    """
    prefix = unique_prefix()
    role = f"{prefix}role"
    connection = superuser_connection()
    with connection.cursor() as cursor:
        cursor.execute(f"create role {role} login nosuperuser nocreatedb nocreaterole")
        with database_acl_turn(cursor):
            cursor.execute(f"grant create, temporary on database {PG_DATABASE} to {role}")
        cursor.execute(f"create schema {role}")  # owned by the superuser, as a DBA sets it up
        cursor.execute(f"grant usage, create on schema {role} to {role}")
    connection.close()
    point_shop_at_pg(shop, monkeypatch, role, prefix)
    try:
        yield role
    finally:
        drop_pg_prefix(prefix, role)


def _pg_tables(schema: str) -> list[str]:
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute("select relname from pg_class c join pg_namespace n on n.oid = "
                       "c.relnamespace where n.nspname = %s order by 1", (schema,))  # fmt: skip
        return [row[0] for row in cursor.fetchall()]


def _summary(output: str) -> str:
    match = re.search(r"dbtproof: writes outside the namespace =+\n(.*?)(?:\n=|\Z)", output, re.S)
    assert match, output
    return match.group(1)


def _check_fixture_holes(
    result: pytest.RunResult, output: str, leaks: tuple[str, ...] = LEAKS
) -> None:
    # Each fixture call raised IsolationError (the inner tests assert it), yet the run fails.
    assert f"{len(leaks) + 1} passed" in output, output
    assert result.ret == 1, output
    summary = _summary(output)
    for leak in leaks:
        assert len(re.findall(rf"created table \S*\.{leak} ", summary)) == 1, summary


# -- DuckDB -------------------------------------------------------------------------------


def test_duckdb_fixture_calls_that_write_outside_raise(
    pytester: pytest.Pytester, shop: Path
) -> None:
    lake = _attach_lake(shop)
    _leaky(shop, "lake.main")
    leaks = LEAKS
    if tuple(int(part) for part in version("dbt-duckdb").split(".")[:2]) < (1, 9):
        # dbt-duckdb 1.8 fails every hook with transaction: False ("cannot commit - no
        # transaction is active"), and a hook in the model's transaction cannot write to a
        # second attached database: this route cannot write outside there at all.
        leaks = tuple(leak for leak in LEAKS if leak != "post_hook_leak")
        tests = shop / "pytests" / "test_leaks.py"
        text = tests.read_text()
        start = text.index("def test_post_hook(")
        tests.write_text(text[:start] + text[text.index("def test_custom_materialization(") :])
    result = pytester.runpytest_subprocess("pytests", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    _check_fixture_holes(result, output, leaks)
    assert _lake_tables(lake) == ["users_table"]


ADAPTER_LEAK_MODEL = """
{% if execute %}
  {% do adapter.create_schema(api.Relation.create(database='lake', schema='adapter_leak')) %}
{% endif %}
select 1 as id
"""

ADAPTER_LEAK_TESTS = """
import pytest

from dbtproof import source
from dbtproof.errors import IsolationError


def test_a_clean_call_first(dbt):
    assert dbt.run_model("stg_customers", given={source("shop", "raw_customers"): []}) == []


def test_create_schema_in_run_model(dbt):
    # adapter.create_schema runs no run_query: dbt's adapter runs it, unseen by dbtproof
    with pytest.raises(IsolationError, match=r"created schema lake.adapter_leak .*"
                       r"run_model\\('adapter_leak"):
        dbt.run_model("adapter_leak", given={})
"""


def test_duckdb_run_model_writes_outside_through_the_adapter_raise(
    pytester: pytest.Pytester, shop: Path
) -> None:
    # A run_model whose render writes without a query (an adapter method) is caught at
    # that call, though the look after a call that provably wrote nothing is skipped.
    lake = _attach_lake(shop)
    (shop / "models" / "leaks").mkdir()
    (shop / "models" / "leaks" / "adapter_leak.sql").write_text(ADAPTER_LEAK_MODEL)
    (shop / "pytests" / "test_adapter_leak.py").write_text(ADAPTER_LEAK_TESTS)
    result = pytester.runpytest_subprocess("pytests/test_adapter_leak.py", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert "2 passed" in output, output
    assert result.ret == 1, output  # the breach fails the run
    assert "created schema lake.adapter_leak" in _summary(output)
    assert duckdb_query(lake, "select schema_name from duckdb_schemas() where "
                        "schema_name = 'adapter_leak'") == []  # fmt: skip


def test_duckdb_on_run_start_hook_errors_its_items(pytester: pytest.Pytester, shop: Path) -> None:
    lake = _attach_lake(shop)
    _hook(shop, "create table if not exists lake.main.hook_leak as select 1 as x")
    result = pytester.runpytest_subprocess(
        "dbt_project.yml", "-p", "no:cacheprovider", "-v", "--dbt-select", "stg_customers"
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, output
    assert re.search(r"stg_customers::build ERROR", output), output
    assert "created table lake.main.hook_leak (dropped again by dbtproof), by `dbt build" in output
    assert len(re.findall(r"hook_leak", _summary(output))) >= 1
    assert _lake_tables(lake) == ["users_table"]


# -- PostgreSQL ---------------------------------------------------------------------------


def test_postgres_fixture_calls_that_write_outside_raise(
    pytester: pytest.Pytester, shop: Path, pg_outside: str
) -> None:
    _leaky(shop, pg_outside)
    result = pytester.runpytest_subprocess("pytests", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    _check_fixture_holes(result, output)
    assert f"(owner {pg_outside}; not dropped: dbtproof cannot prove" in output, output
    assert "dropped again" not in output, output
    # run_model's transaction is rolled back: its table went with it
    assert _pg_tables(pg_outside) == sorted(set(LEAKS) - {"run_query_leak"})


def test_postgres_on_run_start_hook_errors_its_items(
    pytester: pytest.Pytester, shop: Path, pg_outside: str
) -> None:
    _hook(shop, f"create schema if not exists leak_{pg_outside}")
    result = pytester.runpytest_subprocess(
        "dbt_project.yml", "-p", "no:cacheprovider", "-v", "--dbt-select", "stg_customers"
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, output
    assert re.search(r"stg_customers::build ERROR", output), output
    assert (
        f"created schema test.leak_{pg_outside} (owner {pg_outside}; not dropped: dbtproof "
        f"cannot prove this run created it)" in output
    ), output
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute("select 1 from pg_namespace where nspname = %s", (f"leak_{pg_outside}",))
        assert cursor.fetchone() == (1,)
        cursor.execute(f"drop schema leak_{pg_outside}")  # the test's own, left in place


FUNCTION_LEAK_TESTS = """
import pytest

from dbtproof.errors import IsolationError


def test_execute_creates_a_function_outside(dbt):
    with pytest.raises(IsolationError, match=r"created function [\\w.]*OUTSIDE.fn_leak\\(\\) "):
        dbt.execute("create function OUTSIDE.fn_leak() returns int language sql as 'select 1'")
"""


def test_postgres_a_function_created_outside_is_a_breach(
    pytester: pytest.Pytester, shop: Path, pg_outside: str
) -> None:
    # A function is an object the run can create outside (a hook, dbt.execute, a
    # function's schema dbtproof did not move): the guard lists functions too.
    (shop / "pytests" / "test_fn_leak.py").write_text(
        FUNCTION_LEAK_TESTS.replace("OUTSIDE", pg_outside)
    )
    result = pytester.runpytest_subprocess("pytests", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert "1 passed" in output, output
    assert result.ret == 1, output
    assert f"created function test.{pg_outside}.fn_leak() (owner" in _summary(output)


UNQUALIFIED_TESTS = """
def test_unqualified_sql_lands_in_the_namespace(dbt):
    dbt.execute("create table unqualified_t as select 1 as x")
    assert dbt.query(f'select x from "{dbt.schema}".unqualified_t') == [{"x": 1}]


def test_an_unqualified_hook_lands_in_the_namespace(dbt):
    dbt.build(select="raw_customers")
    assert dbt.query(f'select x from "{dbt.schema}".hook_t') == [{"x": 1}]
"""


def test_postgres_search_path_is_the_namespace(
    pytester: pytest.Pytester, shop: Path, pg_outside: str
) -> None:
    # The role's "$user" schema comes first in PostgreSQL's default search_path.
    _hook(shop, "create table if not exists hook_t as select 1 as x")
    (shop / "pytests" / "test_unqualified.py").write_text(UNQUALIFIED_TESTS)
    result = pytester.runpytest_subprocess("pytests", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "2 passed" in output and "writes outside the namespace" not in output, output
    assert _pg_tables(pg_outside) == []


DUCKDB_FILE_TESTS = """
import pytest

from dbtproof.errors import DbtproofError


def test_attach_create_detach(dbt):
    with pytest.raises(DbtproofError, match="Permission Error"):
        dbt.execute("attach 'OTHER' as other_db; "
                    "create table other_db.main.t as select 1 as x; detach other_db")


def test_copy_to_a_file_outside(dbt):
    with pytest.raises(DbtproofError, match="Permission Error"):
        dbt.execute("copy (select 1 as x) to 'OUTFILE'")


def test_seeds_and_the_lake_still_work(dbt):
    dbt.build(select="+stg_customers")
    assert len(dbt.table("stg_customers")) == 10
    assert dbt.query("select answer from lake.main.users_table") == [{"answer": 42}]
"""


def test_duckdb_sql_cannot_touch_files_outside_the_run(
    pytester: pytest.Pytester, shop: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _attach_lake(shop)
    outside = tmp_path_factory.mktemp("outside")
    other, outfile = outside / "other.duckdb", outside / "out.csv"
    (shop / "pytests" / "test_files.py").write_text(
        DUCKDB_FILE_TESTS.replace("OTHER", str(other)).replace("OUTFILE", str(outfile))
    )
    result = pytester.runpytest_subprocess("pytests/test_files.py", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "3 passed" in output, output
    assert not other.exists() and not outfile.exists(), output


REMOTE_SOURCE = """
version: 2
sources:
  - name: remote
    meta:
      external_location: "s3://nowhere/{name}.parquet"
    tables:
      - name: events
"""

LEFT_ATTACHED_TESTS = """
import pytest

from dbtproof.errors import IsolationError


def test_a_file_left_attached(dbt):
    with pytest.raises(IsolationError, match=r"created table left_db.main.t \\(dropped again"):
        dbt.execute("attach 'LEFT' as left_db; create table left_db.main.t as select 1 as x")
"""


def test_duckdb_a_file_left_attached_has_its_tables_dropped(
    pytester: pytest.Pytester, shop: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # a source read from S3: dbtproof does not limit file access, the guard still sees
    # (and undoes) what is left attached
    (shop / "models" / "staging" / "remote.yml").write_text(REMOTE_SOURCE)
    left = tmp_path_factory.mktemp("outside") / "left.duckdb"
    (shop / "pytests" / "test_left.py").write_text(LEFT_ATTACHED_TESTS.replace("LEFT", str(left)))
    result = pytester.runpytest_subprocess("pytests/test_left.py", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, output  # the breach fails the run
    assert "1 passed" in output, output
    assert "file access not limited" in output, output
    assert duckdb_query(left, "select table_name from duckdb_tables()") == [], output
