"""Data tests in batches give dbt's verdicts: status, failure count and message of every test.

A generated project with planted failures (a duplicate key, a null under a warn-severity
test, values outside ``accepted_values`` under ``warn_if``/``error_if`` thresholds either
side of the count, a failing singular test, a test with ``where``, a test of an ephemeral
model, and tests that cannot be batched: ``store_failures``, ``limit``, a custom
``fail_calc``) is run three ways: the dbt CLI's ``dbt test`` (its ``run_results.json``),
``pytest dbt_project.yml`` batched (the default), and the same with
``dbt_batch_data_tests = false`` (every test in ``dbt test``). All three agree on every
test, on DuckDB and on PostgreSQL; the batched run sends to ``dbt test`` exactly the tests
that cannot be batched (read from the run's evidence), the others ran in statements of their
own.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_DATABASE, PG_HOST, PG_PORT, Command, drop_pg_schemas, unique_prefix

BIN = Path(sys.executable).parent
#: Models with three plain data tests each.
PLAIN_MODELS = 12
#: The tests the batches leave to ``dbt test``.
UNBATCHABLE = {"stored_failures", "limited", "summed"}

SEED = "id,status,amount\n" + "".join(
    f"{i},{['new', 'open', 'closed'][i % 3]},{i * 7 % 50}\n" for i in range(1, 21)
)
# planted: id 3 twice, a null status, two statuses outside the accepted values (three rows)
SEED += "3,open,5\n21,,4\n22,lost,3\n23,lost,2\n24,gone,1\n"

SCHEMA = """
version: 2
models:
  - name: items
    columns:
      - name: id
        data_tests:
          - unique
          - not_null
      - name: status
        data_tests:
          - not_null:
              config: {severity: warn}
          - accepted_values:
              name: statuses_warned
              values: [new, open, closed]
              config: {warn_if: ">1", error_if: ">5"}
          - accepted_values:
              name: statuses_failed
              values: [new, open, closed]
              config: {error_if: ">1"}
          - accepted_values:
              name: statuses_tolerated
              values: [new, open, closed]
              config: {warn_if: ">10", error_if: ">10"}
          - accepted_values:
              name: statuses_warned_only
              values: [new, open, closed]
              config: {severity: warn, error_if: ">100"}
          - accepted_values:
              name: statuses_where
              values: [new, open, closed]
              config: {where: "id < 22"}
          - accepted_values:
              name: stored_failures
              values: [new, open, closed]
              config: {store_failures: true}
          - accepted_values:
              name: limited
              values: [new, open, closed]
              config: {limit: 2}
          - accepted_values:
              name: summed
              values: [new, open, closed]
              config: {fail_calc: "sum(n_records)"}
  - name: items_ephemeral
    columns:
      - name: id
        data_tests: [not_null]
  - name: from_ephemeral
    columns:
      - name: id
        data_tests:
          - relationships: {to: "ref('items')", field: id}
"""

CONFTEST = '''
import json


def pytest_sessionfinish(session):
    """Each dbt data test's outcome as dbtproof reported it."""
    found = {}
    for item in session.items:
        outcome = getattr(item, "dbt_outcome", None)
        if getattr(item, "kind", "") == "data" and outcome is not None:
            found[item.unique_id] = [outcome.status, outcome.failures, outcome.message]
    with open("outcomes.json", "w") as out:
        json.dump(found, out)
'''


def write_project(root: Path, profile: str) -> None:
    """The generated project with its planted failures, and *profile* as its profiles.yml."""
    (root / "models").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "tests").mkdir()
    (root / "dbt_project.yml").write_text(
        "name: batched\nprofile: batched\nconfig-version: 2\n"
        "models:\n  batched:\n    +materialized: table\n"
    )
    (root / "profiles.yml").write_text(profile)
    (root / "seeds" / "raw_items.csv").write_text(SEED)
    models = root / "models"
    (models / "items.sql").write_text("select * from {{ ref('raw_items') }}\n")
    (models / "items_ephemeral.sql").write_text(
        "{{ config(materialized='ephemeral') }}\nselect id + 100 as id from {{ ref('items') }}\n"
    )
    (models / "from_ephemeral.sql").write_text(
        "select id - 100 as id from {{ ref('items_ephemeral') }} where id < 130\n"
    )
    schema = SCHEMA
    for index in range(PLAIN_MODELS):
        (models / f"plain_{index}.sql").write_text(
            f"select id, status, amount + {index} as amount from {{{{ ref('items') }}}}"
            f" where id <> {index}\n"
        )
        schema += (
            f"  - name: plain_{index}\n    columns:\n      - name: id\n"
            "        data_tests: [not_null]\n      - name: amount\n"
            "        data_tests: [not_null, unique]\n"
        )
    (models / "schema.yml").write_text(schema)
    (root / "tests" / "assert_small_amounts.sql").write_text(
        "select * from {{ ref('items') }} where amount > 40\n"
    )
    (root / "conftest.py").write_text(CONFTEST)


def by_name(outcomes: dict[str, Any]) -> dict[str, Any]:
    """*outcomes* keyed by the test's name (the unique id without its project and hash)."""
    return {uid.split(".")[2]: value for uid, value in outcomes.items()}


def cli_outcomes(run_command: Command, root: Path, env: dict[str, str]) -> dict[str, Any]:
    """The dbt CLI's ``dbt build`` of the nodes, then its ``dbt test`` (dbtproof builds all
    it tests, and ``dbt build`` would skip what a failing test sits upstream of): each
    data test's status, failures and message."""
    build = [str(BIN / "dbt"), "build", "--profiles-dir", ".", "--exclude", "resource_type:test"]
    run = run_command(build, root, env)
    assert run.returncode == 0, run.stdout + run.stderr
    run = run_command([str(BIN / "dbt"), "test", "--profiles-dir", "."], root, env)
    assert run.returncode == 1, run.stdout + run.stderr  # tests fail, nothing errors
    results = json.loads((root / "target" / "run_results.json").read_text())["results"]
    found = {
        r["unique_id"]: [r["status"], r["failures"], r["message"]]
        for r in results
        if r["unique_id"].startswith("test.")
    }
    return by_name(found)


def dbtproof_outcomes(
    run_command: Command, root: Path, env: dict[str, str], *options: str
) -> tuple[dict[str, Any], set[str]]:
    """``pytest dbt_project.yml``: each data test's status, failures and message, and the
    names of the tests it ran in ``dbt test`` (from its evidence)."""
    (root / "outcomes.json").unlink(missing_ok=True)
    evidence = root / f"evidence-{len(list(root.glob('evidence-*.jsonl')))}.jsonl"
    command = [str(BIN / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-q",
               "dbt_project.yml", "--dbt-evidence", evidence.name, *options]  # fmt: skip
    run = run_command(command, root, env)
    assert run.returncode == 1, run.stdout + run.stderr
    in_dbt_test = set()
    for line in evidence.read_text().splitlines():
        record = json.loads(line)
        if record.get("type") == "invocation" and record["command"] == "test":
            in_dbt_test |= {node["unique_id"].split(".")[2] for node in record["nodes"]}
    return by_name(json.loads((root / "outcomes.json").read_text())), in_dbt_test


def assert_parity(run_command: Command, root: Path, env: dict[str, str]) -> None:
    """dbt's CLI, batched and unbatched runs agree; only the unbatchable went to dbt test."""
    dbt = cli_outcomes(run_command, root, env)
    batched, batched_in_dbt_test = dbtproof_outcomes(run_command, root, env)
    unbatched, unbatched_in_dbt_test = dbtproof_outcomes(
        run_command, root, env, "-o", "dbt_batch_data_tests=false"
    )
    # the planted cases came out as planted (the comparison compares something)
    assert dbt["unique_items_id"][:2] == ["fail", 1]
    assert dbt["not_null_items_status"][:2] == ["warn", 1]
    assert dbt["statuses_warned"][:2] == ["warn", 2]
    assert dbt["statuses_failed"][:2] == ["fail", 2]
    assert dbt["statuses_tolerated"][:2] == ["pass", 0]
    assert dbt["statuses_warned_only"][:2] == ["warn", 2]
    assert dbt["statuses_where"][:2] == ["pass", 0]
    assert dbt["assert_small_amounts"][0] == "fail"
    assert len(dbt) == 14 + 3 * PLAIN_MODELS
    assert batched == dbt
    assert unbatched == dbt
    assert batched_in_dbt_test == UNBATCHABLE
    assert unbatched_in_dbt_test == set(dbt)


def test_batched_data_tests_agree_with_dbt_on_duckdb(
    tmp_path: Path, run_command: Command, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    write_project(
        root,
        "batched:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {root / 'cli.duckdb'}\n      schema: main\n      threads: 1\n",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    assert_parity(run_command, root, env)


def test_batched_data_tests_agree_with_dbt_on_postgres(
    tmp_path: Path, run_command: Command
) -> None:
    prefix = unique_prefix()
    root = tmp_path / "project"
    write_project(
        root,
        "batched:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
        f"      host: {PG_HOST}\n      port: {PG_PORT}\n      dbname: {PG_DATABASE}\n"
        # the superuser: the dbt CLI's schemas (`<prefix>cli`, its test audit schema) then
        # belong to no role another test's run (as the suite's role, without a run role of
        # its own) watches, under xdist
        "      user: postgres\n      password: ''\n"
        f"      schema: {prefix}cli\n      threads: 1\n",
    )
    (root / "pytest.ini").write_text(f"[pytest]\ndbt_schema_prefix = {prefix}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    try:
        assert_parity(run_command, root, env)
    finally:
        drop_pg_schemas(prefix)
