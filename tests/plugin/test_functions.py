"""dbt 1.11's user-defined functions (``functions:``) are nodes like the rest.

A function (``functions/double_it.sql`` and its YAML) is moved into the run's namespace
(also out of the warm parse's placeholder schema), built by a build item of its own and
before every model that calls it (``{{ function('double_it') }}``), under ``-n`` too; a
model that calls one runs under ``dbt.run_model`` and dbt's native unit tests, as in dbt;
a singular data test calling it belongs to its group; and it goes with the namespace,
nothing created outside (PostgreSQL functions included in what is compared).

dbt-postgres builds functions; dbt-duckdb 1.11 has no SQL for them (dbt's own build
fails): there dbtproof gives dbt's failure, never a pass.
"""

from __future__ import annotations

import json
import os
import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import Command, pg_relations, superuser_connection

pytestmark = pytest.mark.skipif(
    tuple(int(part) for part in version("dbt-core").split(".")[:2]) < (1, 11),
    reason="dbt-core before 1.11 has no user-defined functions",
)

BIN = Path(sys.executable).parent

FILES = {
    # dbt-core's own functional test (tests/functional/functions/test_udfs.py, 1.11.latest)
    "functions/double_it.sql": "select value * 2\n",
    "functions/double_it.yml": """
functions:
  - name: double_it
    description: Doubles whatever number is passed in
    arguments:
      - name: value
        data_type: float
        description: A number to be doubled
    returns:
      data_type: float
""",
    # a function that reads a model (dbt-core's TestCanUseRefInUDF)
    "functions/total_paid.sql": "select sum(amount) from {{ ref('stg_payments') }}\n",
    "functions/total_paid.yml": """
functions:
  - name: total_paid
    returns:
      data_type: numeric
""",
    "models/functions/doubled_payments.sql": (
        "select payment_id, {{ function('double_it') }}(amount) as doubled\n"
        "from {{ ref('stg_payments') }}\n"
    ),
    "models/functions/payments_total.sql": "select {{ function('total_paid') }}() as total\n",
    "models/functions/schema.yml": """
models:
  - name: doubled_payments
    columns:
      - name: doubled
        data_tests: [not_null]
unit_tests:
  - name: test_doubled_payments
    model: doubled_payments
    given:
      - input: ref('stg_payments')
        rows:
          - {payment_id: 1, amount: 2.5}
    expect:
      rows:
        - {payment_id: 1, doubled: 5}
""",
    "tests/assert_double_it_doubles.sql": (
        "select 1 as wrong where {{ function('double_it') }}(2) <> 4\n"
    ),
    "pytests/test_functions.py": """
from dbtproof import ref


def test_run_model_calls_the_function(dbt):
    given = {ref("stg_payments"): [{"payment_id": 7, "amount": 1.25}]}
    assert dbt.run_model("doubled_payments", given=given) == [{"payment_id": 7, "doubled": 2.5}]


def test_a_build_calls_functions_and_what_they_read(dbt):
    dbt.build(select="+payments_total")
    paid = dbt.query(f"select sum(amount) as paid from {dbt.relation('stg_payments')}")
    assert dbt.table("payments_total") == [{"total": paid[0]["paid"]}]
    assert paid[0]["paid"] > 0
""",
}

#: The dbt items the functions add, each with the verdict dbt gives it on PostgreSQL.
ITEMS = {
    "double_it::build": "PASSED",
    "double_it::assert_double_it_doubles": "PASSED",
    "total_paid::build": "PASSED",
    "doubled_payments::build": "PASSED",
    "doubled_payments::not_null_doubled_payments_doubled": "PASSED",
    "doubled_payments::test_doubled_payments": "PASSED",
    "payments_total::build": "PASSED",
}


def with_functions(shop: Path) -> Path:
    """Add the functions, the models calling them, their tests and a pytest test to *shop*."""
    for name, text in FILES.items():
        path = shop / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"))
    return shop


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    return result, result.stdout.str() + result.stderr.str()


def pg_functions_named(name: str) -> list[str]:
    """The schemas of the test database holding a function *name*."""
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute(
            "select n.nspname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where p.proname = %s order by 1",
            (name,),
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize("parse", ["warm", "cold"])
def test_functions_are_built_called_and_tested_on_postgres(
    pytester: pytest.Pytester, shop: Path, shop_pg: str, parse: str
) -> None:
    with_functions(shop)
    if parse == "cold":
        ini = shop / "pytest.ini"
        ini.write_text(ini.read_text() + "dbt_warm_parse = false\n")
    before = pg_relations()
    result, output = run(pytester, "dbt_project.yml", "pytests/test_functions.py", "-v")
    for item, verdict in ITEMS.items():
        assert f"dbt_project.yml::{item} {verdict}" in output, output
    assert "test_run_model_calls_the_function PASSED" in output, output
    assert "test_a_build_calls_functions_and_what_they_read PASSED" in output, output
    assert result.ret == 0, output
    assert "dbtproof_parse" not in output
    assert pg_relations() - before == set(), "nothing written outside, nothing left behind"


AS_IS_SCHEMA_NAME = (
    "{% macro generate_schema_name(custom_schema_name, node) -%}\n"
    "  {{ custom_schema_name if custom_schema_name else target.schema }}\n"
    "{%- endmacro %}\n"
)


def test_a_function_schema_of_its_own_moves_into_the_namespace(
    pytester: pytest.Pytester, shop: Path, shop_pg: str
) -> None:
    # dbt would create the functions in the schema `udfs_...` as it is: dbtproof in
    # <ns>_udfs_..., and the guard sees no function (nor schema) created outside.
    outside = f"udfs_{shop_pg.rstrip('_')}"
    with_functions(shop)
    (shop / "macros" / "generate_schema_name.sql").write_text(AS_IS_SCHEMA_NAME)
    project = shop / "dbt_project.yml"
    project.write_text(project.read_text() + f"\nfunctions:\n  shop:\n    +schema: {outside}\n")
    before = pg_relations()
    try:
        result, output = run(pytester, "pytests/test_functions.py", "-v", "--dbt-keep")
        assert result.ret == 0, output
        assert "outside the namespace" not in output, output
        found = re.search(rf"relocated: {outside} -> (\w+_{outside}) \(2 functions\)", output)
        assert found, output
        assert pg_functions_named("double_it") == [found.group(1)]
        assert pg_functions_named("total_paid") == [found.group(1)]
        kept = pg_relations() - before
        assert all(schema.startswith(shop_pg) for schema, _ in kept), kept
    finally:  # what a run that breached isolation left (the test's own schema)
        with superuser_connection() as connection, connection.cursor() as cursor:
            cursor.execute(f'drop schema if exists "{outside}" cascade')


def test_functions_under_xdist_on_postgres(
    pytester: pytest.Pytester, shop: Path, shop_pg: str
) -> None:
    # every worker's namespace gets the functions its items and run_model calls need
    with_functions(shop)
    before = pg_relations()
    result, output = run(pytester, "dbt_project.yml", "pytests/test_functions.py", "-n", "2")
    assert result.ret == 0, output
    assert re.search(r"\b(\d+) passed", output), output
    assert " failed" not in output and " error" not in output, output
    assert pg_relations() - before == set()


def test_duckdb_gives_dbts_failure_to_build_a_function(
    pytester: pytest.Pytester, shop: Path, run_command: Command
) -> None:
    # dbt-duckdb 1.11 has no SQL for functions: dbt's own build of one fails. dbtproof
    # must say the same, and pass nothing that calls the function.
    with_functions(shop)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "SHOP_"))}
    env["SHOP_DUCKDB_PATH"] = str(shop / "dbt_cli.duckdb")
    dbt = run_command(
        [BIN / "dbt", "build", "--select", "+doubled_payments", "--profiles-dir", "."], shop, env
    )
    results = json.loads((shop / "target" / "run_results.json").read_text())["results"]
    by_dbt = {r["unique_id"]: r for r in results}
    assert dbt.returncode == 1, dbt.stdout
    assert by_dbt["function.shop.double_it"]["status"] == "error"
    said = by_dbt["function.shop.double_it"]["message"]
    assert by_dbt["model.shop.doubled_payments"]["status"] == "skipped"

    result, output = run(
        pytester, "dbt_project.yml", "pytests/test_functions.py", "-v", "-k", "double or run_model"
    )
    assert result.ret == 1, output
    assert "dbt_project.yml::double_it::build FAILED" in output, output
    assert said.splitlines()[-1].strip() in output  # dbt's own words (DuckDB's parser error)
    calling = (
        "doubled_payments::build",
        "doubled_payments::test_doubled_payments",
        "double_it::assert_double_it_doubles",
        "test_run_model_calls_the_function",
    )
    for item in calling:
        assert re.search(rf"{re.escape(item)} (FAILED|ERROR|SKIPPED)", output), (item, output)
    assert " PASSED" not in output, output


def test_changed_function_selects_what_dbt_calls_modified_and_downstream(
    pytester: pytest.Pytester, shop: Path, run_command: Command
) -> None:
    # --dbt-changed after a function's SQL changed: dbt's `state:modified+` (the function,
    # the models calling it, their tests) and the pytest tests running those models.
    from test_changed import COLLECTED, collected, dbt_modified, git

    with_functions(shop)
    (shop / "conftest.py").write_text(COLLECTED)
    git(shop, "init", "-q", "-b", "main")
    git(shop, "add", "-A")
    git(shop, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    parsed = run_command(
        [BIN / "dbt", "parse", "--profiles-dir", ".", "--target-path", "base_state", "--quiet"],
        shop, dict(os.environ),
    )  # fmt: skip
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    state = pytester.path.parent / f"{pytester.path.name}_base_state"
    (shop / "base_state").rename(state)
    everything = collected(pytester, "pytests", "dbt_project.yml")
    function = shop / "functions" / "double_it.sql"
    function.write_text("select 2 * value\n")

    changed = collected(pytester, "pytests", "dbt_project.yml", "--dbt-changed")
    expected = dbt_modified(run_command, shop, state) & everything
    assert "function.shop.double_it" in expected
    assert "model.shop.doubled_payments" in expected
    assert {uid for uid in changed if "::" not in uid} == expected
    python_tests = {uid.rsplit("::", 1)[1] for uid in changed if "::" in uid}
    assert "test_run_model_calls_the_function" in python_tests
