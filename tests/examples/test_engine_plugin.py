"""``dbt.run_model`` through the plugin, as users run it: the example's model tests.

pytest runs in a subprocess inside a copy of the example project, on DuckDB with
pytest-xdist (``-n 2``) and on PostgreSQL as the suite's non-superuser role.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import copy_shop, pg_schemas

MODEL_TESTS = 13  # in examples/shop/pytests/test_models.py, parametrized cases included


def _only_model_tests(shop: Path) -> None:
    copy_shop(shop, with_example_tests=True)
    for path in (shop / "pytests").glob("test_*.py"):
        if path.name != "test_models.py":
            path.unlink()


def test_model_tests_pass_on_duckdb_with_xdist(pytester: pytest.Pytester, shop: Path) -> None:
    _only_model_tests(shop)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--no-dbt-tests")
    result.assert_outcomes(passed=MODEL_TESTS)


def test_model_tests_pass_on_postgres(pytester: pytest.Pytester, shop: Path, shop_pg: str) -> None:
    _only_model_tests(shop)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-dbt-tests")
    result.assert_outcomes(passed=MODEL_TESTS)
    assert pg_schemas(shop_pg) == [], "run_model leaves nothing behind"


def test_a_failing_model_test_shows_the_row_diff(pytester: pytest.Pytester, shop: Path) -> None:
    (shop / "pytests" / "test_wrong.py").write_text(
        "from dbtproof import source\n\n\n"
        "def test_wrong(dbt):\n"
        "    out = dbt.run_model('stg_payments', given={\n"
        "        source('shop', 'raw_payments'): [{'payment_id': 1, 'amount': 100}]})\n"
        "    assert out == [{'payment_id': 1, 'amount': 2}]\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-dbt-tests")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "amount" in output and "Decimal('1.00')" in output
