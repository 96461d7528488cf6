"""``--dbt-changed``: only what a change touches is collected, and for dbt's nodes that is
exactly what ``dbt ls --select state:modified+`` picks against a manifest of the base
revision (dbt itself is the judge, on the example project)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Command

#: Writes the unique id (dbt items) or node id (pytest tests) of every collected item.
COLLECTED = """
import json
from pathlib import Path


def pytest_collection_finish(session):
    ids = sorted(getattr(item, "unique_id", None) or item.nodeid for item in session.items)
    Path("collected.json").write_text(json.dumps(ids))
"""

TESTS = """
from dbtproof import ref


def test_customers(dbt):
    dbt.run_model("customers", given={ref("stg_customers"): [], ref("orders"): []})


def test_payments(dbt):
    dbt.run_model(model="stg_payments", given={"raw_payments": []})


def test_no_model():
    assert True
"""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout


def collected(pytester: pytest.Pytester, *args: str) -> set[str]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q", *args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    return set(json.loads((pytester.path / "collected.json").read_text()))


def dbt_modified(run_command: Command, root: Path, state: Path) -> set[str]:
    """``dbt ls --select state:modified+`` against the manifest in *state*."""
    dbt = Path(sys.executable).with_name("dbt")
    done = run_command(
        [dbt, "ls", "--profiles-dir", ".", "--select", "state:modified+", "--state", state,
         "--output", "json", "--output-keys", "unique_id", "--quiet"],
        root, dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    return {json.loads(line)["unique_id"] for line in lines if line.startswith("{")}


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ("models/staging/stg_customers.sql", "lower(email)", "upper(email)"),
        ("macros/cents_to_dollars.sql", "/ 100.0", "/ 100.00"),
        (
            "models/marts/schema.yml",
            "    config:\n",
            "    config:\n      materialized: view\n",
        ),
    ],
    ids=["model", "macro", "yaml-config"],
)
def test_changed_collects_what_dbt_calls_modified_and_downstream(
    pytester: pytest.Pytester, shop: Path, path: str, old: str, new: str, run_command: Command
) -> None:
    (shop / "conftest.py").write_text(COLLECTED)
    (shop / "pytests" / "test_calls.py").write_text(TESTS)
    git(shop, "init", "-q", "-b", "main")
    git(shop, "add", "-A")
    git(shop, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    dbt = Path(sys.executable).with_name("dbt")
    parsed = run_command(
        [dbt, "parse", "--profiles-dir", ".", "--target-path", "base_state", "--quiet"],
        shop, dict(os.environ),
    )  # fmt: skip
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    everything = collected(pytester, "pytests", "dbt_project.yml")

    target = shop / path
    text = target.read_text()
    target.write_text(text.replace(old, new, 1))
    assert target.read_text() != text
    (shop / "base_state").rename(pytester.path.parent / f"{pytester.path.name}_base_state")
    state = pytester.path.parent / f"{pytester.path.name}_base_state"

    changed = collected(pytester, "pytests", "dbt_project.yml", "--dbt-changed")
    dbt_items = {uid for uid in changed if "::" not in uid}
    assert dbt_items < {uid for uid in everything if "::" not in uid}
    expected_dbt = dbt_modified(run_command, shop, state) & everything
    assert expected_dbt, "the change must touch some dbt item"
    assert dbt_items == expected_dbt

    python_tests = {uid.rsplit("::", 1)[1] for uid in changed if "::" in uid}
    customers = "model.shop.customers" in expected_dbt
    payments = "model.shop.stg_payments" in expected_dbt
    assert ("test_customers" in python_tests) == customers
    assert ("test_payments" in python_tests) == payments
    assert "test_no_model" not in python_tests


def test_a_changed_test_file_is_collected_and_a_bad_ref_is_one_error(
    pytester: pytest.Pytester, shop: Path
) -> None:
    (shop / "conftest.py").write_text(COLLECTED)
    git(shop, "init", "-q", "-b", "main")
    git(shop, "add", "-A")
    git(shop, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    (shop / "pytests" / "test_new.py").write_text("def test_new():\n    assert True\n")
    ids = collected(pytester, "pytests", "dbt_project.yml", "--dbt-changed")
    assert ids == {"pytests/test_new.py::test_new"}

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dbt-changed=nosuchref")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--dbt-changed=nosuchref: git knows no such revision" in output
    assert output.count("no such revision") == 1
    assert "Traceback" not in output
