"""Outcome parity: dbt's native unit tests pass and fail the same under dbtproof as under dbt.

For the example project as written and for generated mutations of it (an expected value
changed, a given row dropped, a model's SQL changed), ``dbt test --select test_type:unit``
(the dbt CLI) and ``pytest dbt_project.yml --dbt-select test_type:unit`` must agree on every
unit test, on DuckDB, on PostgreSQL and on Spark. The one deliberate difference — dbt
compares numbers as text, dbtproof by value — has its own test below.

On DuckDB and PostgreSQL both tools run as their commands (``dbt``, ``python -m pytest``),
forked from the worker's zygote (dbt imported once: ``tests/pytest_zygote.py``). On Spark
both run in the test's process (dbt's ``dbtRunner``, the CLI's own entry point, and pytest
in-process), so one local Spark — one JVM — serves every mutation.
"""

from __future__ import annotations

import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Command, copy_shop, unique_prefix

from dbtproof.project.targets import spark_session_parameters
from dbtproof.safety.namespace import new_run_id

BIN = Path(sys.executable).parent
MARTS = "models/marts/schema.yml"
STAGING = "models/staging/schema.yml"
CUSTOMERS = "models/marts/customers.sql"


def _edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        text = (root / path).read_text()
        assert old in text, f"mutation no longer applies to {path}: {old!r}"
        (root / path).write_text(text.replace(old, new, 1))

    return mutate


ORDER_3 = "          - {order_id: 3, customer_id: 1, order_date: 2024-02-20, status: shipped"
MUTATIONS: dict[str, Callable[[Path], None]] = {
    "as written": lambda root: None,
    "expected value changed": _edit(MARTS, "lifetime_value: 14.25}", "lifetime_value: 15.25}"),
    "csv expected value changed": _edit(MARTS, "        2,2,20.00\n", "        2,2,21.00\n"),
    "given row dropped": _edit(MARTS, ORDER_3 + ", amount: 4.25}\n", ""),
    "expected row dropped": _edit(STAGING, "        - {payment_id: 2, amount: 0.05}\n", ""),
    "model SQL changed": _edit(CUSTOMERS, "'returned' then 0", "'placed' then 0"),
    "incremental expectation changed": _edit(MARTS, "1, revenue: 20", "2, revenue: 20"),
    "macro changed": _edit("macros/cents_to_dollars.sql", "100.0", "10.0"),
}  # fmt: skip


def dbt_outcomes(
    run_command: Command, root: Path, env: dict[str, str], target_args: list[str]
) -> dict[str, str]:
    """Run the dbt CLI's unit tests; each unit test's status from run_results.json.

    dbt's exit status is checked first: 0 (all passed) or 1 (some test failed) only, and
    its results must agree with it; anything else is a broken comparison, not a verdict.
    """
    results_file = root / "target" / "run_results.json"
    results_file.unlink(missing_ok=True)
    command = [str(BIN / "dbt"), "test", "--select", "test_type:unit", "--profiles-dir", ".",
               *target_args]  # fmt: skip
    run = run_command(command, root, env)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    results = json.loads(results_file.read_text())["results"]
    statuses = {r["unique_id"].rsplit(".", 1)[-1]: str(r["status"]) for r in results}
    assert (run.returncode == 0) == all(s == "pass" for s in statuses.values()), run.stdout
    return statuses


def dbtproof_outcomes(run_command: Command, root: Path, env: dict[str, str]) -> dict[str, str]:
    """Run the same unit tests as pytest items; each one's outcome from the JUnit XML:
    ``pass``, ``fail``, ``error`` or ``skip``."""
    report = root / "unit.xml"
    report.unlink(missing_ok=True)
    command = [str(BIN / "python"), "-m", "pytest", "-p", "no:cacheprovider", "dbt_project.yml",
               "--dbt-select", "test_type:unit", "--junitxml=unit.xml", "-q"]  # fmt: skip
    run = run_command(command, root, env)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    return junit_outcomes(report)


def junit_outcomes(report: Path) -> dict[str, str]:
    """Each test case's outcome in the JUnit XML *report*: pass, fail, error or skip."""
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "pass"
        for tag, name in (("failure", "fail"), ("error", "error"), ("skipped", "skip")):
            if case.find(tag) is not None:
                outcome = name
        outcomes[case.get("name", "")] = outcome
    return outcomes


def agree(dbt: dict[str, str], dbtproof: dict[str, str]) -> bool:
    """Whether dbtproof gave dbt's verdict on every test. A dbtproof error or skip is never
    agreement, even where dbt errored too: it is not a verdict."""
    if any(outcome in ("error", "skip") for outcome in dbtproof.values()):
        return False
    return dbtproof == dbt


Tool = Callable[[], dict[str, str]]


def cli_tools(
    run_command: Command, root: Path, env: dict[str, str], target_args: list[str]
) -> tuple[Tool, Tool]:
    """The dbt CLI's outcomes and dbtproof's (pytest's) on *root*, each run as its command."""
    return (
        lambda: dbt_outcomes(run_command, root, env, target_args),
        lambda: dbtproof_outcomes(run_command, root, env),
    )


def run_mutations(
    root: Path,
    originals: dict[Path, str],
    mutations: dict[str, Callable[[Path], None]],
    tools: tuple[Tool, Tool],
) -> tuple[list[str], dict[str, Any], int]:
    """Apply each mutation to a fresh copy of *originals*; run both *tools* on it (dbt's
    outcomes, then dbtproof's).

    Returns the mutations under which dbt failed some unit test, every disagreement
    between the tools, and how many unit tests dbt ran.
    """
    dbt, dbtproof = tools
    failing, disagreements, tests = [], {}, 0
    for name, mutate in mutations.items():
        for path, text in originals.items():
            path.write_text(text)
        mutate(root)
        expected = dbt()
        actual = dbtproof()
        tests = len(expected)
        if any(status != "pass" for status in expected.values()):
            failing.append(name)
        if not agree(expected, actual):
            disagreements[name] = {"dbt": expected, "dbtproof": actual}
    return failing, disagreements, tests


@pytest.mark.parametrize("target", ["duckdb", "postgres"])
def test_dbtproof_agrees_with_dbt_on_every_mutation(
    target: str, tmp_path: Path, request: pytest.FixtureRequest, run_command: Command
) -> None:
    root = copy_shop(tmp_path / "shop")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "SHOP_"))}
    env["SHOP_DUCKDB_PATH"] = str(tmp_path / "dbt_cli.duckdb")
    target_args = []
    if target == "postgres":
        prefix = request.getfixturevalue("shop_pg")  # the suite's role, its env, schema cleanup
        env.update({k: v for k, v in os.environ.items() if k.startswith("SHOP_PG_")})
        profiles = (root / "profiles.yml").read_text()
        (root / "profiles.yml").write_text(
            # Named like a namespace: the guards of concurrent runs (same role) ignore it.
            profiles.replace("schema: shop_dev", f"schema: {new_run_id(prefix)}_cli")
        )
        (root / "pytest.ini").write_text(
            f"[pytest]\ndbt_target = postgres\ndbt_schema_prefix = {prefix}\n"
        )
        # `dbt build` by hand would grant the customers mart to `reporter`, a role the
        # shared server lacks (dbtproof's runs map it): unit tests do not need the grant.
        marts = root / "models" / "marts" / "schema.yml"
        marts.write_text(re.sub(r"\n    config:\n(      .*\n)+", "\n", marts.read_text()))
        target_args = ["--target", "postgres"]
    # dbt's unit tests read their inputs' column types from the warehouse: build the parents.
    build = run_command(
        [BIN / "dbt", "build", "--exclude", "test_type:unit", "test_type:data",
         "--profiles-dir", ".", *target_args],
        root, env,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout
    sources = [*(root / "models").rglob("*"), *(root / "macros").rglob("*")]
    originals = {p: p.read_text() for p in sources if p.is_file()}
    failing, disagreements, tests = run_mutations(
        root, originals, MUTATIONS, cli_tools(run_command, root, env, target_args)
    )
    assert disagreements == {}
    assert tests == 4
    assert failing == list(MUTATIONS)[1:], "as written all pass; every mutation fails something"


#: The mutations the Spark leg runs (every unit test failed by one; all of MUTATIONS agreed
#: on Spark too, at about 25 s each: CI keeps the Spark leg lean).
SPARK_MUTATIONS = [
    "as written",
    "expected value changed",
    "csv expected value changed",
    "expected row dropped",
    "incremental expectation changed",
    "macro changed",
]


def dbt_in_process(root: Path, *args: str) -> dict[str, str]:
    """The dbt CLI's command *args* on *root* through ``dbtRunner`` (its own entry point)
    in this process; each node's status from run_results.json, which must agree with
    dbt's success (an exception is a broken comparison, not a verdict)."""
    from dbt.cli.main import dbtRunner

    results_file = root / "target" / "run_results.json"
    results_file.unlink(missing_ok=True)
    done = dbtRunner().invoke(
        [*args, "--project-dir", str(root), "--profiles-dir", str(root), "--target", "spark"]
    )
    assert done.exception is None, done.exception
    results = json.loads(results_file.read_text())["results"]
    statuses = {r["unique_id"].rsplit(".", 1)[-1]: str(r["status"]) for r in results}
    assert done.success == all(s in ("pass", "success") for s in statuses.values()), statuses
    return statuses


def test_dbtproof_agrees_with_dbt_on_every_mutation_on_spark(
    pytester: pytest.Pytester, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml
    from spark_support import process_databases, require_spark

    require_spark()
    prefix = unique_prefix()
    cli_schema = f"{new_run_id(prefix)}_cli"  # named like a namespace: clean would see it
    profiles = yaml.safe_load((shop / "profiles.yml").read_text())
    spark = profiles["shop"]["outputs"]["spark"]
    spark["schema"] = cli_schema
    spark["server_side_parameters"] = spark_session_parameters(
        spark.get("server_side_parameters") or {}, shop / "cli-spark"
    )
    (shop / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))
    (shop / "pytest.ini").write_text(
        f"[pytest]\ndbt_target = spark\ndbt_schema_prefix = {prefix}\n"
    )
    monkeypatch.chdir(shop)

    def dbtproof() -> dict[str, str]:
        report = shop / "unit.xml"
        report.unlink(missing_ok=True)
        result = pytester.runpytest_inprocess(
            "-p", "no:cacheprovider", "dbt_project.yml", "--dbt-select", "test_type:unit",
            f"--junitxml={report}", "-q",
        )  # fmt: skip
        assert result.ret in (0, 1), result.stdout.str()
        return junit_outcomes(report)

    try:
        # dbt's unit tests read their inputs' column types from the warehouse: build the parents.
        built = dbt_in_process(shop, "build", "--exclude", "test_type:unit", "test_type:data")
        assert set(built.values()) == {"success"}, built
        sources = [*(shop / "models").rglob("*"), *(shop / "macros").rglob("*")]
        originals = {p: p.read_text() for p in sources if p.is_file()}
        tools = (lambda: dbt_in_process(shop, "test", "--select", "test_type:unit"), dbtproof)
        mutations = {name: MUTATIONS[name] for name in SPARK_MUTATIONS}
        failing, disagreements, tests = run_mutations(shop, originals, mutations, tools)
        assert disagreements == {}
        assert tests == 4
        assert failing == SPARK_MUTATIONS[1:], "as written all pass; every mutation fails something"
        left = process_databases(prefix)
        assert left == [cli_schema, f"{cli_schema}_marts"], "dbtproof dropped all of its own"
    finally:
        from pyspark.sql import SparkSession

        for database in process_databases(prefix):
            SparkSession.builder.getOrCreate().sql(f"drop database if exists {database} cascade")


VERSIONED_SCHEMA = """
version: 2
models:
  - name: dim
    latest_version: 2
    versions: [{v: 1}, {v: 2}]
unit_tests:
  - name: dim_v2_shouts
    model: dim
    versions: {include: [2]}
    given:
      - {input: ref('codes'), format: csv, fixture: codes_fixture}
    expect:
      format: sql
      rows: |
        select 1 as id, 'X!' as code, 10 as weight
        union all select 2, 'Y!', 20
  - name: dim_v1_upper
    model: dim
    versions: {include: [1]}
    given:
      - {input: ref('codes'), rows: [{id: 1, code: q}]}
    expect:
      rows: [{id: 1, code: Q}]
"""

VERSIONED_MUTATIONS: dict[str, Callable[[Path], None]] = {
    "as written": lambda root: None,
    "fixture file changed": _edit("tests/fixtures/codes_fixture.csv", "2,y", "2,z"),
    "expected SQL changed": _edit("models/schema.yml", "select 2, 'Y!', 20", "select 2, 'Y!', 21"),
    "version 2's SQL changed": _edit("models/dim_v2.sql", "id * 10", "id * 11"),
    "version 1's expectation changed": _edit("models/schema.yml", "code: Q}", "code: q}"),
}  # fmt: skip


def test_versioned_models_fixture_files_and_sql_expectations_agree(
    tmp_path: Path, run_command: Command
) -> None:
    root = tmp_path / "vers"
    (root / "models").mkdir(parents=True)
    (root / "tests" / "fixtures").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: vers\nprofile: vers\nconfig-version: 2\n")
    (root / "profiles.yml").write_text(
        "vers:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {tmp_path / 'cli.duckdb'}\n      schema: main\n"
    )
    (root / "models" / "codes.sql").write_text(
        "select 1 as id, 'a' as code union all select 2, 'b'"
    )
    (root / "models" / "dim_v1.sql").write_text(
        "select id, upper(code) as code from {{ ref('codes') }}"
    )
    (root / "models" / "dim_v2.sql").write_text(
        "select id, upper(code) || '!' as code, id * 10 as weight from {{ ref('codes') }}"
    )
    (root / "tests" / "fixtures" / "codes_fixture.csv").write_text("id,code\n1,x\n2,y\n")
    (root / "models" / "schema.yml").write_text(VERSIONED_SCHEMA)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    command = [str(BIN / "dbt"), "run", "--select", "codes", "--profiles-dir", "."]
    build = run_command(command, root, env)
    assert build.returncode == 0, build.stdout
    originals = {p: p.read_text() for p in root.rglob("*") if p.suffix in (".sql", ".yml", ".csv")}
    failing, disagreements, tests = run_mutations(
        root, originals, VERSIONED_MUTATIONS, cli_tools(run_command, root, env, [])
    )
    assert disagreements == {}
    assert tests == 2
    assert failing == list(VERSIONED_MUTATIONS)[1:]


CONTEXT_SCHEMA = """
unit_tests:
  - name: invocation_id_overridden
    model: stamped
    overrides:
      macros:
        invocation_id: run-1
    given:
      - input: ref('src')
        rows:
          - {tested_column: 1, code: x}
    expect:
      rows:
        - {tested_column: 1, code: x, run_id: run-1}
  - name: names_differing_in_case
    model: plain
    given:
      - input: ref('src')
        rows:
          - {tested_column: 1, code: x}
          - {TESTED_COLUMN: 2, code: y}
    expect:
      rows:
        - {tested_column: 1, code: x}
        - {TESTED_COLUMN: 2, code: y}
  - name: unknown_override_ignored
    model: stamped
    overrides:
      macros:
        invocation_id: run-3
        neither_a_macro_nor_a_value: 1
    given:
      - input: ref('src')
        rows:
          - {tested_column: 7, code: z}
    expect:
      rows:
        - {tested_column: 7, code: z, run_id: run-3}
"""

CONTEXT_MUTATIONS: dict[str, Callable[[Path], None]] = {
    "as written": lambda root: None,
    "override removed": _edit("models/schema.yml",
                              "    overrides:\n      macros:\n        invocation_id: run-1\n", ""),
    "overridden value expected otherwise": _edit("models/schema.yml", "run_id: run-1}",
                                                 "run_id: run-9}"),
    "given row of the other case changed": _edit("models/schema.yml", "{TESTED_COLUMN: 2, code: y}",
                                                 "{TESTED_COLUMN: 3, code: y}"),
    "expected row of the other case changed": _edit("models/schema.yml",
                                                    "\n        - {TESTED_COLUMN: 2, code: y}",
                                                    "\n        - {TESTED_COLUMN: 5, code: y}"),
    "expected row of the ignored override changed": _edit("models/schema.yml",
                                                          "code: z, run_id: run-3}",
                                                          "code: z, run_id: run-4}"),
}  # fmt: skip


def test_context_value_overrides_and_names_differing_in_case_agree(
    tmp_path: Path, run_command: Command
) -> None:
    # dbt's unit tests let `overrides: macros` replace a context value (invocation_id) and
    # read a given or expected row's column names case-insensitively, row by row; an
    # override naming neither a macro nor a context value is ignored, as dbt ignores it.
    root = tmp_path / "ctx"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: ctx\nprofile: ctx\nconfig-version: 2\n")
    (root / "profiles.yml").write_text(
        "ctx:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {tmp_path / 'cli.duckdb'}\n      schema: main\n"
    )
    (root / "models" / "src.sql").write_text("select 1 as tested_column, 'a' as code")
    (root / "models" / "stamped.sql").write_text(
        "select tested_column, code, '{{ invocation_id }}' as run_id from {{ ref('src') }}"
    )
    (root / "models" / "plain.sql").write_text("select tested_column, code from {{ ref('src') }}")
    (root / "models" / "schema.yml").write_text(CONTEXT_SCHEMA)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    command = [str(BIN / "dbt"), "run", "--select", "src", "--profiles-dir", "."]
    build = run_command(command, root, env)
    assert build.returncode == 0, build.stdout
    originals = {p: p.read_text() for p in root.rglob("*") if p.suffix in (".sql", ".yml")}
    failing, disagreements, tests = run_mutations(
        root, originals, CONTEXT_MUTATIONS, cli_tools(run_command, root, env, [])
    )
    assert disagreements == {}
    assert tests == 3
    assert failing == list(CONTEXT_MUTATIONS)[1:]


def test_an_input_ref_with_a_keyword_of_a_custom_ref_is_refused_not_misread() -> None:
    """dbt-core 1.12's ``support_custom_ref_kwargs`` flag lets a project's own ``ref`` macro
    read ``ref('orders', revision=2)`` in a unit test's ``given`` (mapping ``revision`` to a
    version, say). dbtproof reads an input as dbt's built-in ``ref`` does: a keyword it does
    not know is one clear error, never the input ``ref('orders')`` (another version's rows)."""
    from dbtproof.engine.keys import ref
    from dbtproof.errors import UnitTestDefinitionError
    from dbtproof.plugin.native_unit import parse_input

    with pytest.raises(UnitTestDefinitionError, match=r"revision=.*support_custom_ref_kwargs"):
        parse_input("ref('orders', revision=2)", "unit test 'u' (models/u.yml)")
    assert parse_input("ref('orders', v=2)", "w") == ref("orders", version=2)
    assert parse_input("ref('orders', version=2)", "w") == ref("orders", version=2)
