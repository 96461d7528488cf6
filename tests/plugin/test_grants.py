"""Access rules on DuckDB, which has neither grants nor roles: the example's `grants` item and
its `as_role` tests are skipped with the reason, never passed; the options and the marker
are checked as users write them. PostgreSQL, with real roles: test_grants_postgres.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SHOP


def granted_on_duckdb(shop: Path) -> Path:
    """The example with its mart's grants on DuckDB too (the example leaves them out there:
    dbt-duckdb 1.8 fails on a grant, later versions ignore it with a warning)."""
    schema = shop / "models" / "marts" / "schema.yml"
    schema.write_text(schema.read_text().replace("in ('spark', 'duckdb')", "== 'spark'"))
    return shop


def test_grants_items_and_as_role_are_skipped_on_duckdb_with_the_reason(
    pytester: pytest.Pytester, shop: Path
) -> None:
    granted_on_duckdb(shop)
    shutil.copy(SHOP / "pytests" / "test_access.py", shop / "pytests" / "test_access.py")
    result = pytester.runpytest_subprocess(
        "pytests", "dbt_project.yml", "-k", "grants or access", "-rs", "-v"
    )
    result.assert_outcomes(skipped=3, deselected=result.parseoutcomes()["deselected"])
    output = result.stdout.str()
    assert "dbt_project.yml::customers::grants SKIPPED" in output
    assert (
        "dbtproof: the duckdb adapter has no grants (dbt does not apply them there): the "
        "grants of model customers (models/marts/customers.sql) cannot be checked" in output
    )
    # -rs's summary gives each skipped as_role test its reason, at the test's own line (the
    # progress lines may repeat it on a wide terminal: they are not counted)
    reasons = [
        line
        for line in result.stdout.lines
        if line.startswith("SKIPPED [1] pytests/test_access.py:")
        and line.endswith("dbt.as_role('reporter') needs roles, and the duckdb adapter has none")
    ]
    assert len(reasons) == 2, output


def test_no_dbt_grants_leaves_the_items_out(pytester: pytest.Pytester, shop: Path) -> None:
    granted_on_duckdb(shop)
    ids = pytester.runpytest_subprocess("dbt_project.yml", "--collect-only", "-q").stdout.lines
    assert [i for i in ids if i.endswith("::grants")] == ["dbt_project.yml::customers::grants"]
    off = pytester.runpytest_subprocess(
        "dbt_project.yml", "--collect-only", "-q", "--no-dbt-grants"
    )
    assert not [i for i in off.stdout.lines if "::grants" in i], off.stdout.str()


@pytest.mark.parametrize(
    ("ini", "args", "said"),
    [
        ("dbt_grant_roles = reporter\n", (), "dbt_grant_roles in "),
        ("", ("--dbt-grant-roles", "reporter:"), "--dbt-grant-roles: 'reporter:'"),
    ],
)
def test_a_malformed_role_mapping_is_one_error(
    pytester: pytest.Pytester, shop: Path, ini: str, args: tuple[str, ...], said: str
) -> None:
    (shop / "pytest.ini").write_text("[pytest]\ntestpaths = pytests\n" + ini)
    result = pytester.runpytest_subprocess("dbt_project.yml", *args)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert said in output, output
    assert "is not ROLE:CI_ROLE" in output and "reporter:ci_reporter" in output
    assert "Traceback" not in output


def test_the_marker_takes_one_role_name(pytester: pytest.Pytester, shop: Path) -> None:
    (shop / "pytests" / "test_marked.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.dbt_role('reporter', 'analyst')\n"
        "def test_two(dbt):\n"
        "    pass\n"
    )
    result = pytester.runpytest_subprocess("pytests", "--strict-markers")
    result.assert_outcomes(failed=1)
    assert "@pytest.mark.dbt_role takes one role name" in result.stdout.str()
