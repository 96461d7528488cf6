"""A failing dbt hook is an error of what it ran for, never a pass.

``on-run-start`` and ``on-run-end`` run around every dbt invocation: when one fails, dbt
reports the invocation as failed though every node may have passed. The items a failing
hook's invocation ran for are errors naming the hook, and ``dbt.build()`` raises. A model's
``pre-hook``/``post-hook`` is part of the model: dbt fails the model, so its build item fails.
On the example project, DuckDB and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BROKEN_SQL = "select * from dbtproof_no_such_table"

FIXTURE_TEST = """
import pytest

from dbtproof import DbtRunError


def test_build_raises_naming_the_hook(dbt):
    with pytest.raises(DbtRunError, match="{hook}") as raised:
        dbt.build(select="raw_customers")
    assert "dbtproof_no_such_table" in str(raised.value)
"""


@pytest.fixture(params=["duckdb", "postgres"])
def target_shop(request: pytest.FixtureRequest, shop: Path) -> Path:
    """The example project on DuckDB, or on PostgreSQL as the suite's role."""
    if request.param == "postgres":
        request.getfixturevalue("shop_pg")
    return shop


@pytest.mark.parametrize("hook", ["on-run-start", "on-run-end"])
def test_failing_run_hook_errors_the_items_it_ran_for(
    pytester: pytest.Pytester, target_shop: Path, hook: str
) -> None:
    project = target_shop / "dbt_project.yml"
    project.write_text(project.read_text() + f'\n{hook}:\n  - "{BROKEN_SQL}"\n')
    pytester.makepyfile(**{"pytests/test_hook": FIXTURE_TEST.format(hook=hook)})
    # stg_customers' build item and its two tests, and the dbt fixture's build
    result = pytester.runpytest_subprocess(
        "pytests", "dbt_project.yml", "-k", "stg_customers or hook"
    )
    output = result.stdout.str()
    result.assert_outcomes(passed=1, errors=3)
    for item in ("build", "not_null_stg_customers_customer_id", "unique_stg_customers_customer_id"):
        assert f"ERROR dbt_project.yml::stg_customers::{item}" in output, output
    # once per item in its error section (the short summary may repeat it, width permitting)
    sections = [line for line in output.splitlines() if not line.startswith("ERROR ")]
    assert sum("a hook of its dbt invocation failed" in line for line in sections) == 3, output
    assert hook in output and "dbtproof_no_such_table" in output


def test_failing_post_hook_fails_the_models_build(
    pytester: pytest.Pytester, target_shop: Path
) -> None:
    model = target_shop / "models" / "staging" / "stg_customers.sql"
    model.write_text(f'{{{{ config(post_hook="{BROKEN_SQL}") }}}}\n' + model.read_text())
    result = pytester.runpytest_subprocess("dbt_project.yml", "-k", "stg_customers", "-rfE")
    result.assert_outcomes(failed=1, errors=2)
    result.stdout.fnmatch_lines(["FAILED dbt_project.yml::stg_customers::build*"])
    assert "dbtproof_no_such_table" in result.stdout.str()
