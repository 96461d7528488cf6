"""The one deliberate difference from dbt: numbers in unit tests compare by value.

dbt compares a unit test's actual and expected rows as text, so on PostgreSQL it fails
``1.5`` against ``1.5000000000000000`` (numeric division) and ``20.0`` against ``20.00``
(a sum of ``numeric(16,2)``). dbtproof compares by value and passes both. This test shows each
case with the dbt CLI and with dbtproof, side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Command

from dbtproof.safety.namespace import new_run_id

BIN = Path(sys.executable).parent

UNIT_TESTS = """
unit_tests:
  - name: division_compares_by_value
    model: amounts
    given:
      - input: ref('base')
        rows:
          - {amount: 3}
    expect:
      rows:
        - {half: 1.5}
  - name: scale_compares_by_value
    model: amounts
    given:
      - input: ref('base')
        rows:
          - {amount: 3}
    expect:
      rows:
        - {fixed: 20.0}
"""


def test_numbers_compare_by_value_where_dbt_compares_text(
    tmp_path: Path, shop_pg: str, monkeypatch: pytest.MonkeyPatch, run_command: Command
) -> None:
    root = tmp_path / "numeric"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: numeric\nprofile: numeric\nconfig-version: 2\n")
    (root / "profiles.yml").write_text(
        "numeric:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n"
        "      host: 127.0.0.1\n      port: 5432\n      dbname: test\n"
        f"      user: {os.environ['SHOP_PG_USER']}\n"
        "      password: \"{{ env_var('SHOP_PG_PASSWORD') }}\"\n"
        # Named like a namespace: the guards of concurrent runs (same role) ignore it.
        f"      schema: {new_run_id(shop_pg)}_cli\n      threads: 1\n"
    )
    (root / "pytest.ini").write_text(f"[pytest]\ndbt_schema_prefix = {shop_pg}\n")
    (root / "models" / "base.sql").write_text("select 3 as amount\n")
    (root / "models" / "amounts.sql").write_text(
        "select sum(amount) / 2.0 as half,\n"
        "    sum(cast(amount * 20 / 3 as numeric(16, 2))) as fixed\n"
        "from {{ ref('base') }}\n"
    )
    (root / "models" / "unit_tests.yml").write_text(UNIT_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return run_command(list(command), root, env)

    built = run(str(BIN / "dbt"), "run", "--select", "base", "--profiles-dir", ".")
    assert built.returncode == 0, built.stdout
    run(str(BIN / "dbt"), "test", "--select", "test_type:unit", "--profiles-dir", ".")
    results = json.loads((root / "target" / "run_results.json").read_text())["results"]
    by_dbt = {r["unique_id"].rsplit(".", 1)[-1]: r["status"] for r in results}
    assert by_dbt == {"division_compares_by_value": "fail", "scale_compares_by_value": "fail"}

    ours = run(str(BIN / "python"), "-m", "pytest", "-p", "no:cacheprovider", "dbt_project.yml",
               "--junitxml=unit.xml")  # fmt: skip
    assert ours.returncode == 0, ours.stdout
    cases = ET.parse(root / "unit.xml").getroot().iter("testcase")
    passed = {
        c.get("name")
        for c in cases
        if not any(c.find(tag) is not None for tag in ("failure", "error", "skipped"))
        and c.get("name") != "build"
    }
    assert passed == {"division_compares_by_value", "scale_compares_by_value"}
