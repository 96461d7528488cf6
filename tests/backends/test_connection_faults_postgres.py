"""Connections that die under a test, made to die on cue: the statement terminates its own
backend (``pg_terminate_backend(pg_backend_pid())``), once (a sequence counts the tries:
``nextval`` outlives the transaction the dying backend rolls back) or every time.

A read whose connection died once passes on a fresh connection; one whose connection
always dies is an error naming the fault, not a failure; a write is never run twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import pg_schemas

DIES = "pg_terminate_backend(pg_backend_pid())"

TESTS = f"""
import pytest


@pytest.fixture
def once(dbt, request):
    name = f'"{{dbt.schema}}".{{request.node.name}}'
    dbt.execute(f"create sequence {{name}}")
    return f"(case when nextval('{{name}}') = 1 then {DIES} else true end)"


def test_a_query_whose_connection_dies_once(dbt, once):
    assert dbt.query(f"select {{once}} as alive") == [{{"alive": True}}]


def test_a_query_whose_connection_always_dies(dbt):
    dbt.query("select {DIES} as alive")


def test_a_query_that_is_wrong_still_fails(dbt, once):
    assert dbt.query(f"select {{once}} as alive") == [{{"alive": False}}]


def test_a_write_whose_connection_dies_runs_once(dbt):
    dbt.execute(f'create sequence "{{dbt.schema}}".writes')
    try:
        dbt.execute(f"select nextval('\\"{{dbt.schema}}\\".writes'), {DIES}")
    finally:
        assert dbt.query(f'select last_value from "{{dbt.schema}}".writes') == [{{"last_value": 1}}]


def test_prepares_the_data_test(dbt):
    dbt.execute(f'create sequence "{{dbt.schema}}".data_test_once')
"""

DIES_ONCE = f"""
select 1 as failure
where not (
    case when nextval('{{{{ target.schema }}}}.data_test_once') = 1 then {DIES} else true end
)
"""
DIES_ALWAYS = f"select 1 as failure where not {DIES}\n"


def test_reads_retried_once_and_errors_named(
    pytester: pytest.Pytester, shop: Path, shop_pg: str
) -> None:
    (shop / "pytests" / "test_dies.py").write_text(TESTS)
    (shop / "tests" / "dies_once.sql").write_text(DIES_ONCE)
    (shop / "tests" / "dies_always.sql").write_text(DIES_ALWAYS)
    result = pytester.runpytest_subprocess(
        "pytests", "dbt_project.yml", "--dbt-select", "dies_once dies_always",
        "--no-dbt-builds", "-n", "1", "-rfE",  # one xdist worker: verdicts travel to the controller
    )  # fmt: skip
    output = result.stdout.str()
    outcomes = {}
    for line in output.splitlines():
        for word in ("PASSED", "FAILED", "ERROR"):
            if line.startswith(f"{word} "):
                outcomes[line.split(" ")[1].split("::")[-1]] = word
    assert outcomes == {
        "test_a_query_whose_connection_always_dies": "ERROR",
        "test_a_query_that_is_wrong_still_fails": "FAILED",
        "test_a_write_whose_connection_dies_runs_once": "ERROR",
        "dies_always": "ERROR",
    }, output
    result.assert_outcomes(passed=3, failed=1, errors=3)
    assert "failed during dbt.query('select pg_terminate_backend" in output
    assert "and again on a fresh connection: " in output
    assert "server closed the connection unexpectedly" in output
    assert "failed during dbt.execute('select nextval(" in output
    assert "(a write: not retried)" in output
    assert "dbt test dies_always could not run: the connection to the warehouse failed" in output
    assert pg_schemas(shop_pg) == [], output
