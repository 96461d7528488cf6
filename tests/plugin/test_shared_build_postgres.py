"""Under ``pytest -n 2`` on PostgreSQL the project is built once for the run, in ``<run>_shared``.

The generated project of ``test_batched_data_tests.py`` (planted failures, warn-severity
tests, thresholds, tests that cannot be batched, one that stores its failures) is run by
the dbt CLI and by ``pytest dbt_project.yml -n 2``, with a run role (the identity may
create roles) and without one (the suite's role, which may not). Under ``-n 2`` each node
is built once, in the run-level schema ``<run id>_shared``, on two dbt threads: the seed and
the model every other reads by one worker, then the rest in two groups, each built by the
first worker free to take it;
both workers run data tests against it, each test once, and every test's verdict, failure
count and message are the dbt CLI's; the run-level schema exists while the run tests and is
gone after it, and so are the run roles.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PG_DATABASE,
    PG_HOST,
    PG_PASSWORD,
    PG_PORT,
    PG_ROLE,
    Command,
    drop_pg_prefix,
    pg_schemas,
    superuser_connection,
    unique_prefix,
)
from test_batched_data_tests import by_name, cli_outcomes, write_project

BIN = Path(sys.executable).parent
#: What every other node of the generated project reads: built first, by one worker.
TRUNK = {"seed.batched.raw_items", "model.batched.items"}

#: Each worker's outcomes, the dbt invocations it ran (with their arguments) and the
#: run-level schemas it saw while its data tests ran.
RECORDER = """
import json, os
from dbtproof.session.runner import DbtRunner

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
_invoke = DbtRunner.invoke


def _record(entry):
    with open(f"invocations-{WORKER}.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\\n")


def _recording_invoke(self, command, **kwargs):
    result = _invoke(self, command, **kwargs)
    nodes = [[n.unique_id, n.status] for n in result.nodes]
    _record({"command": command, "nodes": nodes, "args": list(kwargs.get("extra_args") or [])})
    return result


DbtRunner.invoke = _recording_invoke

import dbtproof.plugin.batches as _tests

_run_batched = _tests.run_batched


def _recording_batched(session, unique_ids, **kwargs):
    run = _run_batched(session, unique_ids, **kwargs)
    seen = session.connections.query(
        "select nspname from pg_namespace where nspname like '%\\\\_shared%' order by 1"
    )
    nodes = [[uid, result.status] for uid, result in run.results.items()]
    _record({"command": "batched", "nodes": nodes, "schemas": [r["nspname"] for r in seen]})
    return run


_tests.run_batched = _recording_batched


def pytest_sessionfinish(session):
    found = {}
    for item in session.items:
        outcome = getattr(item, "dbt_outcome", None)
        if getattr(item, "kind", "") == "data" and outcome is not None:
            found[item.unique_id] = [outcome.status, outcome.failures, outcome.message]
    if found:
        with open(f"outcomes-{WORKER}.json", "w") as out:
            json.dump(found, out)
"""


def profile(prefix: str, user: str, password: str) -> str:
    """The generated project's profile: ``dev`` (dbtproof's) logs in as *user*, ``cli``
    (the dbt CLI's, in ``<prefix>cli``) as the superuser, whose schemas no role another
    test's run works as watches."""
    output = (
        f"      type: postgres\n      host: {PG_HOST}\n      port: {PG_PORT}\n"
        f"      dbname: {PG_DATABASE}\n      threads: 1\n"
    )
    return (
        "batched:\n  target: dev\n  outputs:\n"
        f"    dev:\n{output}      user: {user}\n      password: '{password}'\n"
        f"      schema: {prefix}dev\n"
        f"    cli:\n{output}      user: postgres\n      password: ''\n"
        f"      schema: {prefix}cli\n"
    )


def pytest_run(
    run_command: Command, root: Path, env: dict[str, str], *options: str
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]], str]:
    """``pytest dbt_project.yml *options``: each data test's status, failures and message,
    each worker's recorded invocations (``main`` without xdist), and the output."""
    for path in [*root.glob("outcomes-*.json"), *root.glob("invocations-*.jsonl")]:
        path.unlink()
    command = [str(BIN / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-v",
               "dbt_project.yml", *options]  # fmt: skip
    run = run_command(command, root, env)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output  # planted failures, nothing errors
    outcomes: dict[str, Any] = {}
    for path in root.glob("outcomes-*.json"):
        outcomes.update(json.loads(path.read_text()))
    calls = {
        path.stem.removeprefix("invocations-"): [
            json.loads(line) for line in path.read_text().splitlines()
        ]
        for path in sorted(root.glob("invocations-*.jsonl"))
    }
    return by_name(outcomes), calls, output


def roles(prefix: str) -> list[str]:
    """The roles whose names start with *prefix*."""
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute("select rolname from pg_roles where starts_with(rolname, %s)", (prefix,))
        return sorted(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("run_role", [True, False], ids=["run_role", "no_run_role"])
def test_postgres_xdist_builds_once_in_the_run_level_schema(
    tmp_path: Path, run_command: Command, pg_role: dict[str, str], run_role: bool
) -> None:
    prefix = unique_prefix()
    root = tmp_path / "project"
    # the superuser may create roles: the run works as run roles; the suite's role may not
    user, password = ("postgres", "") if run_role else (PG_ROLE, PG_PASSWORD)
    write_project(root, profile(prefix, user, password))
    for model in ("plain_0", "plain_1"):  # a custom schema, written by both groups
        path = root / "models" / f"{model}.sql"
        path.write_text("{{ config(schema='extra') }}\n" + path.read_text())
    (root / "conftest.py").write_text(RECORDER)
    (root / "pytest.ini").write_text(f"[pytest]\ndbt_schema_prefix = {prefix}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    try:
        dbt = cli_outcomes(run_command, root, {**env, "DBT_TARGET": "cli"})
        serial, _, _ = pytest_run(run_command, root, env)
        outcomes, calls, output = pytest_run(run_command, root, env, "-n", "2")
        left_schemas, left_roles = pg_schemas(prefix), roles(prefix)
    finally:
        drop_pg_prefix(prefix, "")
    assert (" run role " in output) is run_role, output
    # the verdicts, failure counts and messages: the dbt CLI's, with -n 2 as without
    assert dbt["unique_items_id"][:2] == ["fail", 1]
    assert dbt["statuses_warned"][:2] == ["warn", 2]
    assert outcomes == dbt
    assert serial == dbt
    # each node built once: first the trunk (the seed and `items`, which every other model
    # reads) by one worker, then the rest in groups the workers build side by side
    builds = [(w, c) for w, cs in calls.items() for c in cs if c["command"] == "build"]
    built = [uid for _, c in builds for uid, _ in c["nodes"]]
    assert len(built) == len(set(built)) == 15, built  # the seed, 14 models (one ephemeral)
    trunks = [c for _, c in builds if {uid for uid, _ in c["nodes"]} == TRUNK]
    assert len(trunks) == 1 and len(builds) == 3, builds  # the trunk, then two groups
    # both workers tested, each test once, reading the run-level schema while it lived
    tested = [uid for cs in calls.values() for c in cs if c["command"] in ("test", "batched")
              for uid, _ in c["nodes"]]  # fmt: skip
    assert len(tested) == len(set(tested)) == len(dbt), tested
    batched = [c for cs in calls.values() for c in cs if c["command"] == "batched"]
    assert {w for w, cs in calls.items() if any(c["command"] == "batched" for c in cs)} == {
        "gw0",
        "gw1",
    }
    shared = {schema for call in batched for schema in call["schemas"] if schema.startswith(prefix)}
    assert len(shared) == 2 and {s.rsplit("_shared", 1)[1] for s in shared} == {"", "_extra"}
    # on two dbt threads (the profile says 1): the trunk's (the other worker waits), and each
    # group's (twice a worker's share: two groups side by side, four connections at most)
    for _, build in builds:
        assert build["args"][build["args"].index("--threads") + 1] == "2", build
    # gone with the run: only the dbt CLI's schemas are left, and no role
    assert left_schemas == [f"{prefix}cli", f"{prefix}cli_dbt_test__audit", f"{prefix}cli_extra"]
    assert left_roles == [], left_roles
