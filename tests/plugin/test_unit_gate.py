"""``--dbt-unit-tests-gate``: a failing native unit test skips its model and what is
downstream, as ``dbt build`` does; checked against the dbt CLI's ``dbt build``.

Without it (the default) every node is built and tested, each item reporting its own
result: the documented difference from ``dbt build``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
BROKEN_UNIT_TEST = "stg_payments_converts_cents_to_dollars"

#: A conftest plugin: each dbt item's outcome by the unique id of its node (``build:``
#: for a build item), and the reason of each skip.
RECORDER = """
import json
from pathlib import Path

import pytest

OUTCOMES = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    uid = getattr(item, "unique_id", None)
    kind = getattr(item, "kind", "")
    if uid and kind in ("build", "data", "unit"):
        key = ("build:" if kind == "build" else "") + uid
        if key not in OUTCOMES and (report.when == "call" or not report.passed):
            reason = report.longrepr[2] if report.skipped else ""
            OUTCOMES[key] = [report.outcome, reason]
    return report


def pytest_sessionfinish(session):
    Path("outcomes.json").write_text(json.dumps(OUTCOMES))
"""


def _break_the_unit_tests(shop: Path) -> None:
    """Break a unit test of stg_payments, and one of customers, downstream of it (which
    dbt skips, not runs: the gate must not run it either)."""
    for path, good, bad in (
        ("staging", "{payment_id: 1, amount: 19.99}", "{payment_id: 1, amount: 1}"),
        ("marts", "        1,1,10.00\n", "        1,1,99.00\n"),
    ):
        schema = shop / "models" / path / "schema.yml"
        text = schema.read_text()
        assert text.count(good) == 1, good
        schema.write_text(text.replace(good, bad))


def _dbt_build(shop: Path) -> dict[str, str]:
    """``dbt build`` with the dbt CLI: each node's status (``build:`` for a buildable one)."""
    run = subprocess.run(
        [str(BIN / "dbt"), "build", "--profiles-dir", "."],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    assert run.returncode == 1, run.stdout + run.stderr  # the unit test fails
    results = json.loads((shop / "target" / "run_results.json").read_text())["results"]
    statuses = {}
    for result in results:
        uid = result["unique_id"]
        buildable = uid.split(".")[0] in ("model", "seed", "snapshot")
        statuses[("build:" if buildable else "") + uid] = result["status"]
    return statuses


def _dbtproof(pytester: pytest.Pytester, *args: str) -> dict[str, list[str]]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "dbt_project.yml", *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    return json.loads((pytester.path / "outcomes.json").read_text())


def test_the_gate_skips_what_dbt_build_skips(pytester: pytest.Pytester, shop: Path) -> None:
    _break_the_unit_tests(shop)
    (shop / "conftest.py").write_text(RECORDER)
    dbt = _dbt_build(shop)
    skipped_by_dbt = {uid for uid, status in dbt.items() if status == "skipped"}
    assert "build:model.shop.stg_payments" in skipped_by_dbt
    assert "build:model.shop.customers" in skipped_by_dbt  # downstream, and its unit tests
    assert "unit_test.shop.customers.customers_counts_orders_per_customer" in skipped_by_dbt

    gated = _dbtproof(pytester, "--dbt-unit-tests-gate")
    assert {uid for uid, (outcome, _) in gated.items() if outcome == "skipped"} == skipped_by_dbt
    failed_by_dbt = {uid for uid, status in dbt.items() if status in ("fail", "error")}
    assert {uid for uid, (outcome, _) in gated.items() if outcome == "failed"} == failed_by_dbt
    assert failed_by_dbt == {f"unit_test.shop.stg_payments.{BROKEN_UNIT_TEST}"}
    assert set(gated) == set(dbt), "every node dbt built or skipped has its item"
    for uid in skipped_by_dbt:
        reason = gated[uid][1]
        assert "dbt build skips it (--dbt-unit-tests-gate)" in reason, reason
        assert f"stg_payments: its unit test failed: {BROKEN_UNIT_TEST}" in reason, reason
        assert "customers: its unit test failed" not in reason, "downstream ones do not run"

    # the default: every node is built and tested; only the unit test fails
    (pytester.path / "outcomes.json").unlink()
    every = _dbtproof(pytester)
    assert {uid for uid, (outcome, _) in every.items() if outcome != "passed"} == {
        *failed_by_dbt,
        "unit_test.shop.customers.customers_counts_orders_per_customer",
    }
    assert every["build:model.shop.stg_payments"][0] == "passed"


def test_the_ini_key_turns_the_gate_on(pytester: pytest.Pytester, shop: Path) -> None:
    _break_the_unit_tests(shop)
    (shop / "conftest.py").write_text(RECORDER)
    ini = shop / "pytest.ini"
    ini.write_text(ini.read_text() + "dbt_unit_tests_gate = true\n")
    outcomes = _dbtproof(pytester, "--dbt-select", "stg_payments+")
    assert outcomes["build:model.shop.stg_payments"][0] == "skipped"
    assert outcomes["build:model.shop.orders"][0] == "skipped"
    assert outcomes[f"unit_test.shop.stg_payments.{BROKEN_UNIT_TEST}"][0] == "failed"
