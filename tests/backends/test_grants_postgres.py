"""Access rules as tests, on PostgreSQL with roles this suite creates (and drops).

A CI role that is not a superuser (it may create roles, so the run works as a run role),
a ``reporter`` role and an ``analyst`` role, under a prefix of their own; the project's
grants name ``reporter`` and ``analyst``, which ``dbt_grant_roles`` maps to them. The
grants items prove what the relations carry; ``dbt.as_role`` proves what a consumer
reads; a superuser identity is warned about, or refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import (
    PG_DATABASE,
    PG_GRANT_ROLES,
    database_acl_turn,
    drop_pg_prefix,
    point_shop_at_pg,
    superuser_connection,
)

INNER_TESTS = """
import pytest

from dbtproof import AccessDenied
from dbtproof.errors import RoleError

REPORTER = "PREFIXreporter"


def who(dbt):
    return dbt.query("select current_user as who")[0]["who"]


def test_reporter_reads_the_mart_and_not_staging(dbt):
    dbt.build(select="+customers")
    own = who(dbt)
    assert own == f"{dbt.schema}_role"
    with dbt.as_role("reporter") as role:
        assert role == REPORTER and who(dbt) == REPORTER
        assert len(dbt.table("customers")) == 10
        with pytest.raises(AccessDenied) as denied:
            dbt.table("stg_customers")
        assert denied.value.role == REPORTER
        assert denied.value.relation == dbt.relation("stg_customers")
        assert f"role {REPORTER} may not read {dbt.relation('stg_customers')}" in str(
            denied.value
        )
        assert who(dbt) == REPORTER  # still the role after a refused read
    assert who(dbt) == own  # the run role again, not the login user


def test_a_query_refused_names_the_relation(dbt):
    dbt.build(select="stg_orders")
    with dbt.as_role("reporter"), pytest.raises(AccessDenied, match="stg_orders"):
        dbt.query(f"select count(*) from {dbt.relation('stg_orders')}")


def test_the_role_comes_back_after_an_error(dbt):
    own = who(dbt)
    with pytest.raises(ZeroDivisionError), dbt.as_role("reporter"):
        1 / 0
    assert who(dbt) == own


def test_run_model_runs_as_the_role(dbt):
    with dbt.as_role("reporter"):
        assert dbt.run_model("whoami") == [{"who": REPORTER}]
    assert dbt.run_model("whoami") == [{"who": f"{dbt.schema}_role"}]


def test_dbt_commands_inside_as_role_run_as_the_run(dbt):
    with dbt.as_role("reporter"):
        dbt.build(select="whoami", force=True)  # the run role builds it; reporter may not
        assert who(dbt) == REPORTER
        with pytest.raises(AccessDenied, match="whoami"):
            dbt.table("whoami")
    assert dbt.table("whoami") == [{"who": f"{dbt.schema}_role"}]


@pytest.mark.dbt_role("reporter")
def test_the_marker_runs_the_whole_test_as_the_role(dbt):
    assert who(dbt) == REPORTER
    with pytest.raises(AccessDenied, match="stg_payments"):
        dbt.table("stg_payments")


def test_a_role_the_identity_cannot_assume_names_the_grant(dbt):
    with pytest.raises(RoleError) as refused:
        with dbt.as_role("analyst"):
            pass
    assert 'GRANT "PREFIXanalyst" TO "PREFIXci"' in str(refused.value)
    assert "mapped to 'PREFIXanalyst' by dbt_grant_roles" in str(refused.value)
"""

#: A mart granted to both roles; a hook after the commit takes the analyst's grant away.
REVOKED = """{{ config(
    materialized='table',
    grants={'select': ['reporter', 'analyst']},
    post_hook=after_commit('revoke select on {{ this }} from PREFIXanalyst'),
) }}
select 1 as x
"""
UNKNOWN = "{{ config(materialized='table', grants={'select': ['nobody_here']}) }}\nselect 1 as x\n"
WHOAMI = "select current_user as who\n"


@dataclass(frozen=True)
class Access:
    """The roles of one test: prefix, CI login role, reporter, analyst."""

    prefix: str
    ci: str
    reporter: str
    analyst: str


def _roles(prefix: str) -> list[str]:
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute("select rolname from pg_roles where starts_with(rolname, %s)", (prefix,))
        return sorted(row[0] for row in cursor.fetchall())


@pytest.fixture
def access(shop: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Access]:
    """The roles (reporter granted to the CI role, analyst not), the shop pointed at
    PostgreSQL as the CI role, and its roles mapped; every role and schema dropped after."""
    from conftest import unique_prefix

    prefix = unique_prefix()
    roles = Access(prefix, f"{prefix}ci", f"{prefix}reporter", f"{prefix}analyst")
    connection = superuser_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"create role {roles.ci} login nosuperuser nocreatedb createrole")
            with database_acl_turn(cursor):
                cursor.execute(f"grant create, temporary on database {PG_DATABASE} to {roles.ci}")
            cursor.execute(f"create role {roles.reporter} nologin")
            cursor.execute(f"create role {roles.analyst} nologin")
            cursor.execute(f"grant {roles.reporter} to {roles.ci}")
    finally:
        connection.close()
    point_shop_at_pg(shop, monkeypatch, roles.ci, prefix)
    ini = shop / "pytest.ini"
    ini.write_text(
        ini.read_text().replace(
            PG_GRANT_ROLES,
            f"dbt_grant_roles = reporter:{roles.reporter} analyst:{roles.analyst}\n",
        )
    )
    try:
        yield roles
    finally:
        drop_pg_prefix(prefix, roles.ci)
        assert _roles(prefix) == []


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str]:
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    return result, result.stdout.str() + result.stderr.str()


def test_grants_hold_fail_with_a_diff_and_name_unknown_roles(
    pytester: pytest.Pytester, shop: Path, access: Access
) -> None:
    prefix = access.prefix
    (shop / "models" / "revoked.sql").write_text(REVOKED.replace("PREFIX", prefix))
    (shop / "models" / "unknown_grantee.sql").write_text(UNKNOWN)
    (shop / "models" / "whoami.sql").write_text(WHOAMI)
    (shop / "pytests" / "test_access.py").write_text(INNER_TESTS.replace("PREFIX", prefix))
    result, output = _run(pytester, "pytests", "dbt_project.yml", "-v", "-k", "grants or access")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("failed"), outcomes.get("errors")) == (
        8,
        1,
        1,
    ), output
    assert "dbt_project.yml::customers::grants PASSED" in output
    assert "dbt_project.yml::revoked::grants FAILED" in output
    assert "dbt_project.yml::unknown_grantee::grants ERROR" in output
    # the diff: configured, found, what is missing
    assert "grants of model revoked (models/revoked.sql) differ from its grants: config" in output
    assert f"configured: select: {access.analyst}, {access.reporter}" in output
    assert f"on the relation: SELECT: {access.reporter}" in output
    assert f"- select to {access.analyst} (missing)" in output
    # the unknown role, and the two ways out
    assert (
        "the grants of model unknown_grantee (models/unknown_grantee.sql) name role(s) "
        "'nobody_here' that do not exist in the test warehouse" in output
    ), output
    assert "CREATE ROLE nobody_here NOLOGIN" in output
    assert "dbt_grant_roles = nobody_here:<ci role> in the pytest ini file" in output
    # the header: mapping, the unknown role; no excess rights
    assert (
        f"grants: roles mapped (dbt_grant_roles): analyst -> {access.analyst}, "
        f"reporter -> {access.reporter}" in output
    ), output
    assert "grants: role(s) unknown to the test warehouse: nobody_here" in output
    assert "warning: the test identity" not in output
    assert re.search(r"test_access.py::\S+ PASSED", output)
    # the run role is gone; the suite's roles are all that is left
    assert _roles(prefix) == sorted([access.analyst, access.ci, access.reporter])


def test_grants_hold_without_a_run_role(
    pytester: pytest.Pytester, shop: Path, access: Access
) -> None:
    ini = shop / "pytest.ini"
    ini.write_text(ini.read_text() + "dbt_run_role = false\n")
    (shop / "pytests" / "test_reads.py").write_text(
        "from dbtproof import AccessDenied\n"
        "import pytest\n\n"
        "def test_reporter_reads_customers(dbt):\n"
        "    dbt.build(select='+customers')\n"
        "    with dbt.as_role('reporter'):\n"
        "        assert len(dbt.table('customers')) == 10\n"
        "        with pytest.raises(AccessDenied):\n"
        "            dbt.table('stg_customers')\n"
        f"    assert dbt.query('select current_user as u') == [{{'u': '{access.ci}'}}]\n"
    )
    result, output = _run(pytester, "pytests", "dbt_project.yml", "-v", "-k", "grants or reads")
    result.assert_outcomes(passed=2)
    assert "dbt_project.yml::customers::grants PASSED" in output
    assert "run role" not in output


def test_a_superuser_is_warned_about_and_refused_on_request(
    pytester: pytest.Pytester, shop: Path, access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_PG_USER", "postgres")
    (shop / "pytests" / "test_one.py").write_text("def test_one(dbt):\n    pass\n")
    result, output = _run(pytester, "pytests")
    assert result.ret == 0, output
    assert "dbtproof: warning: the test identity postgres is a superuser" in output, output
    assert (
        "dbtproof: warning: the test identity postgres owns schema(s) outside the namespace"
        in output
    )
    ini = shop / "pytest.ini"
    ini.write_text(ini.read_text() + "dbt_require_least_privilege = true\n")
    result, output = _run(pytester, "pytests")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "dbt_require_least_privilege = true, and the test identity of target" in output
    assert "the test identity postgres is a superuser" in output
    assert "Traceback" not in output
    assert "1 passed" not in output
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute(
            "select nspname from pg_namespace where starts_with(nspname, %s)", (access.prefix,)
        )
        assert cursor.fetchall() == []
