"""Prevention on PostgreSQL: a run whose identity may create roles runs as a role of its own.

The run role may create only in the namespace's schemas and read what the project
reads, so SQL that names another schema fails with PostgreSQL's own "permission
denied" instead of being caught (and undone) by the guard afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    EXAMPLE_ACCESS_TESTS,
    PG_DATABASE,
    PG_HOST,
    PG_PORT,
    SHOP,
    database_acl_turn,
    drop_pg_prefix,
    point_shop_at_pg,
    superuser_connection,
    unique_prefix,
)
from test_lifecycle_postgres import DBTPROOF

INNER_TESTS = """
import pytest

from dbtproof.errors import DbtproofError


def test_runs_as_the_run_role(dbt):
    assert dbt.query("select current_user as who") == [{"who": f"{dbt.schema}_role"}]


def test_writing_outside_is_refused_by_postgres(dbt):
    with pytest.raises(DbtproofError, match="permission denied") as caught:
        dbt.execute("create table OUTSIDE.leak_x as select 1 as x")
    assert "outside its namespace" not in str(caught.value)


def test_still_the_run_role_after_a_failed_statement(dbt):
    with pytest.raises(DbtproofError):
        dbt.execute("select * from no_such_table_anywhere")
    assert dbt.query("select current_user as who") == [{"who": f"{dbt.schema}_role"}]


def test_a_source_outside_the_namespace_is_read(dbt):
    dbt.build(select="lake_copy")
    assert dbt.table("lake_copy") == [{"x": 1}]
"""

LAKE_SOURCE = """
version: 2
sources:
  - name: lake
    schema: OUTSIDE
    tables:
      - name: lake_table
"""


@pytest.fixture
def pg_creator(shop: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A login role with CREATEROLE (not superuser), and a schema outside it can write.

    Yields ``(prefix, outside)``: the run's schema prefix and the outside schema, which
    holds ``lake_table``, owned by the creator (so it may grant reading it). Every role,
    schema and object under the prefix is dropped afterwards.
    """
    prefix = unique_prefix()
    creator, outside = f"{prefix}creator", f"{prefix}outside"
    connection = superuser_connection()
    with connection.cursor() as cursor:
        cursor.execute(f"create role {creator} login nosuperuser nocreatedb createrole")
        with database_acl_turn(cursor):
            cursor.execute(f"grant create, temporary on database {PG_DATABASE} to {creator}")
        cursor.execute(f"create schema {outside}")  # owned by the superuser, as a DBA sets it up
        cursor.execute(f"grant create on schema {outside} to {creator}")
        # The identity may pass reading on (so the run role reads the source).
        cursor.execute(f"grant usage on schema {outside} to {creator} with grant option")
        cursor.execute(f"create table {outside}.lake_table as select 1 as x")
        cursor.execute(f"alter table {outside}.lake_table owner to {creator}")
    connection.close()
    point_shop_at_pg(shop, monkeypatch, creator, prefix)
    try:
        yield prefix, outside
    finally:
        drop_pg_prefix(prefix, creator)


def _roles(prefix: str) -> list[str]:
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute("select rolname from pg_roles where starts_with(rolname, %s)", (prefix,))
        return sorted(row[0] for row in cursor.fetchall())


def _tables(schema: str) -> list[str]:
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute("select relname from pg_class c join pg_namespace n on n.oid = "
                       "c.relnamespace where n.nspname = %s order by 1", (schema,))  # fmt: skip
        return [row[0] for row in cursor.fetchall()]


def _add_lake(shop: Path, outside: str) -> None:
    """A source in the outside schema, a model reading it, and the inner tests."""
    (shop / "models" / "staging" / "lake.yml").write_text(LAKE_SOURCE.replace("OUTSIDE", outside))
    (shop / "models" / "lake_copy.sql").write_text(
        "{{ config(materialized='table') }}\nselect x from {{ source('lake', 'lake_table') }}\n"
    )
    (shop / "pytests" / "test_run_role.py").write_text(INNER_TESTS.replace("OUTSIDE", outside))


def test_postgres_run_role_prevents_writes_outside(
    pytester: pytest.Pytester, shop: Path, pg_creator: tuple[str, str]
) -> None:
    prefix, outside = pg_creator
    _add_lake(shop, outside)
    shutil.copytree(SHOP / "pytests", shop / "pytests", dirs_exist_ok=True)
    # as_role("reporter") needs that role: test_grants_postgres.py tests it
    (shop / "pytests" / EXAMPLE_ACCESS_TESTS).unlink()
    result = pytester.runpytest_subprocess("pytests", "dbt_project.yml", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "writes outside the namespace" not in output, output
    assert re.search(rf"dbtproof: run role {prefix}\d{{12}}_[a-z0-9]{{6}}_role ", output), output
    assert _tables(outside) == ["lake_table"]
    assert _roles(prefix) == [f"{prefix}creator"]


def test_postgres_post_hook_writing_outside_fails_with_permission_denied(
    pytester: pytest.Pytester, shop: Path, pg_creator: tuple[str, str]
) -> None:
    prefix, outside = pg_creator
    (shop / "models" / "hooked.sql").write_text(
        f"{{{{ config(post_hook='create table {outside}.hook_x as select 1 as x') }}}}\n"
        "select 1 as x\n"
    )
    result = pytester.runpytest_subprocess(
        "dbt_project.yml", "-p", "no:cacheprovider", "-v", "--dbt-select", "hooked", "--dbt-keep"
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, output
    assert re.search(r"hooked::build FAILED", output), output
    assert f"permission denied for schema {outside}" in output, output
    assert "writes outside the namespace" not in output, output
    assert _tables(outside) == ["lake_table"]
    # The kept namespace passes to the identity; the run role is gone.
    assert _roles(prefix) == [f"{prefix}creator"]
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute(
            "select distinct pg_get_userbyid(nspowner) from pg_namespace where nspname ~ %s",
            (rf"^{prefix}\d{{12}}_",),
        )
        assert cursor.fetchall() == [(f"{prefix}creator",)]


def test_postgres_run_role_can_be_turned_off(
    pytester: pytest.Pytester, shop: Path, pg_creator: tuple[str, str]
) -> None:
    prefix, _ = pg_creator
    ini = shop / "pytest.ini"
    ini.write_text(ini.read_text() + "dbt_run_role = false\n")
    (shop / "pytests" / "test_who.py").write_text(
        "def test_who(dbt):\n"
        "    assert dbt.query('select current_user as who') == [{'who': '"
        + f"{prefix}creator"
        + "'}]\n"
    )
    result = pytester.runpytest_subprocess("pytests", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "run role" not in output, output
    assert _roles(prefix) == [f"{prefix}creator"]


def test_clean_drops_run_roles_of_dead_runs(shop: Path, pg_creator: tuple[str, str]) -> None:
    prefix, _ = pg_creator
    dead = f"{prefix}202001010000_abcdef"
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute(f"set role {prefix}creator")  # as a run of this identity left them
        cursor.execute(f'create role "{dead}_role" nologin')
        cursor.execute(f'create role "{dead}_gw1_role" nologin')
        cursor.execute(f'grant "{dead}_role" to {prefix}creator')
        cursor.execute(f'create schema "{dead}" authorization "{dead}_role"')
    cleaned = subprocess.run(
        [DBTPROOF, "clean", "--older-than", "0m", "--target", "postgres", "--prefix", prefix,
         "--execute"],
        cwd=shop, capture_output=True, text=True, timeout=180, env=dict(os.environ),
    )  # fmt: skip
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert f"dropping {dead}" in cleaned.stdout, cleaned.stdout
    assert f"dropping role {dead}_role" in cleaned.stdout, cleaned.stdout
    assert f"dropping role {dead}_gw1_role" in cleaned.stdout, cleaned.stdout
    assert "dropped 2 role(s)" in cleaned.stdout, cleaned.stdout
    assert _roles(prefix) == [f"{prefix}creator"]


ESCAPE_TESTS = """
import pytest

from dbtproof.errors import DbtproofError


def test_reset_role_then_create_role(dbt):
    with pytest.raises(DbtproofError, match="permission denied to create role"):
        dbt.execute("reset role; create role PREFIXescaped")


def test_reset_role_then_alter_role_settings(dbt):
    with pytest.raises(DbtproofError, match="permission denied"):
        dbt.execute("reset role; alter role PREFIXcreator set work_mem = '7MB'")


def test_reset_role_then_grant(dbt):
    with pytest.raises(DbtproofError, match="permission denied"):
        dbt.execute("reset role; grant usage on schema OUTSIDE to public")


def test_reset_role_is_still_the_run_role(dbt):
    dbt.execute("reset role")
    assert dbt.query("select current_user as who") == [{"who": f"{dbt.schema}_role"}]
"""


def test_postgres_sql_cannot_reset_role_back_to_the_identity(
    pytester: pytest.Pytester, shop: Path, pg_creator: tuple[str, str]
) -> None:
    prefix, outside = pg_creator
    (shop / "pytests" / "test_escape.py").write_text(
        ESCAPE_TESTS.replace("PREFIX", prefix).replace("OUTSIDE", outside)
    )
    result = pytester.runpytest_subprocess("pytests/test_escape.py", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "4 passed" in output, output
    assert re.search(rf"run role {prefix}\S+_role \(.*; logs in as it\)", output), output
    assert _roles(prefix) == [f"{prefix}creator"]
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute(
            "select count(*) from pg_db_role_setting s join pg_roles r on r.oid = s.setrole "
            "where r.rolname = %s",
            (f"{prefix}creator",),
        )
        assert cursor.fetchone() == (0,)
        cursor.execute("select has_schema_privilege('public', %s, 'USAGE')", (outside,))
        assert cursor.fetchone() == (False,)


OTHER_CREATOR_TESTS = """
import psycopg2


def test_another_process_creates_a_view_meanwhile(dbt):
    other = psycopg2.connect(host="HOST", port=PORT, dbname="DATABASE", user="CREATOR")
    other.autocommit = True
    with other.cursor() as cursor:  # a developer's `dbt run`, as the same login
        cursor.execute("create view OUTSIDE.dev_view as select 1 as x")
    assert dbt.query("select 1 as x") == [{"x": 1}]
    with other.cursor() as cursor:  # still there
        cursor.execute("select count(*) from pg_views where viewname = 'dev_view'")
        assert cursor.fetchone() == (1,)
    other.close()
"""


def test_postgres_guard_leaves_another_creators_object_alone(
    pytester: pytest.Pytester, shop: Path, pg_creator: tuple[str, str]
) -> None:
    prefix, outside = pg_creator
    inner = OTHER_CREATOR_TESTS
    for name, value in {"HOST": PG_HOST, "PORT": str(PG_PORT), "DATABASE": PG_DATABASE,
                        "CREATOR": f"{prefix}creator", "OUTSIDE": outside}.items():  # fmt: skip
        inner = inner.replace(name, value)
    (shop / "pytests" / "test_other.py").write_text(inner)
    result = pytester.runpytest_subprocess("pytests/test_other.py", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "1 passed" in output, output
    assert "writes outside the namespace" not in output, output
    assert (
        f"created view test.{outside}.dev_view (owner {prefix}creator): not ours, left alone"
        in output
    ), output
    assert _tables(outside) == ["dev_view", "lake_table"], output
