"""A source loaded outside the project is read where dbt reads it.

dbt-core's own unit-test suite (``test_ut_sources.py::TestUnitTestSourceInputSameNames``)
loads a source's table with another target of the same profile (``dbt seed --target
otherschema`` into ``<schema>_other``) and declares the source as ``schema: "{{
target.schema }}_other"``. No node of the project writes it, so a run reads it where the
profile's target puts it, as dbt does (its columns too: the unit test's given rows name
only some of them), read-only; the run role may read it and nothing of it changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import (
    PG_DATABASE,
    PG_HOST,
    PG_PASSWORD,
    PG_PORT,
    PG_ROLE,
    drop_pg_prefix,
    superuser_connection,
    unique_prefix,
)

BIN = Path(sys.executable).parent

#: dbt-core's test, as its fixtures write it (1.11.latest), but for the second source's table,
#: which another target loads from a seed of its own name: dbt 1.8 cannot tell two sources'
#: tables of one name apart in a unit test ("depends on a source named
#: 'seed_sources.raw_customers' which was not found"; the CTE named twice).
FILES = {
    "seeds/raw_customers.csv": "id,first_name,last_name,email\n1,Michael,Perez,mp@example.com\n",
    "seeds/more_customers.csv": "id,first_name,last_name,email\n2,Shawn,Mccoy,sm@example.com\n",
    "models/customers_duplicate_source_names.sql": """
        select * from {{ source('seed_sources', 'raw_customers') }}
        union all
        select * from {{ source('seed_sources_2', 'more_customers') }}
    """,
    "models/sources.yml": """
        sources:
          - name: seed_sources
            schema: "{{ target.schema }}"
            tables:
              - name: raw_customers
          - name: seed_sources_2
            schema: "{{ target.schema }}_other"
            tables:
              - name: more_customers

        unit_tests:
          - name: test_customers
            model: customers_duplicate_source_names
            given:
              - input: source('seed_sources', 'raw_customers')
                rows:
                  - {id: 1, first_name: Emily}
              - input: source('seed_sources_2', 'more_customers')
                rows:
                  - {id: 2, first_name: Michelle}
            expect:
              rows:
                - {id: 1, first_name: Emily}
                - {id: 2, first_name: Michelle}
    """,
    "dbt_project.yml": """
        name: loaded
        version: "1.0.0"
        config-version: 2
        profile: test
    """,
}


def _write_project(root: Path, user: str, schema: str) -> None:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    target = {
        "type": "postgres",
        "host": PG_HOST,
        "port": PG_PORT,
        "user": user,
        "password": PG_PASSWORD if user == PG_ROLE else "",
        "dbname": PG_DATABASE,
        "schema": schema,
        "threads": 1,
    }
    # The tables are loaded as the superuser (and granted to the suite's role): what the
    # suite's role creates outside a run's namespace, another test's run on that role (no run
    # role) would see appear and blame, under xdist.
    loader = {**target, "user": "postgres", "password": ""}
    outputs = {
        "default": target,
        "otherschema": {**target, "schema": f"{schema}_other"},
        "loader": loader,
        "loader_other": {**loader, "schema": f"{schema}_other"},
    }
    profile = {"test": {"target": "default", "outputs": outputs}}
    (root / "profiles.yml").write_text(json.dumps(profile))


def _dbt(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dbt"), *args, "--profiles-dir", "."],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )


def _dbt_unit_verdict(root: Path) -> str:
    run = _dbt(root, "test", "--select", "test_type:unit")
    results = json.loads((root / "target" / "run_results.json").read_text())["results"]
    assert len(results) == 1, run.stdout
    return str(results[0]["status"])


def _loaded(schema: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The relations (with their owners) of *schema* and ``<schema>_other``, and the rows of
    the table loaded there."""
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute(
            "select n.nspname, c.relname, pg_get_userbyid(c.relowner) from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname in (%s, %s) "
            "order by 1, 2",
            (schema, f"{schema}_other"),
        )
        relations = cursor.fetchall()
        cursor.execute(f'select * from "{schema}_other".more_customers order by 1')
        return relations, cursor.fetchall()


@pytest.mark.parametrize("user", ["postgres", PG_ROLE], ids=["run_role", "no_run_role"])
def test_a_source_loaded_by_another_target_is_read_where_dbt_reads_it(
    pytester: pytest.Pytester, pg_role: dict[str, str], user: str
) -> None:
    prefix = unique_prefix()
    schema = f"{prefix}dev"
    root = pytester.path
    _write_project(root, user, schema)
    (root / "pytest.ini").write_text(f"[pytest]\ndbt_schema_prefix = {prefix}\n")
    try:
        # dbt-core's test: `dbt seed`, then `dbt seed --target otherschema`
        for target in ("loader", "loader_other"):
            loaded = _dbt(root, "seed", "--target", target)
            assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        with superuser_connection() as connection, connection.cursor() as cursor:
            for name in (schema, f"{schema}_other"):
                cursor.execute(f'grant usage on schema "{name}" to {PG_ROLE}')
                cursor.execute(f'grant select on all tables in schema "{name}" to {PG_ROLE}')
        before = _loaded(schema)
        sources = root / "models" / "sources.yml"
        original = sources.read_text()
        last = original.rindex("Michelle")  # the expected row's
        for expected, verdict in (("Michelle", "pass"), ("Nobody", "fail")):
            sources.write_text(original[:last] + expected + original[last + len("Michelle") :])
            assert _dbt_unit_verdict(root) == verdict
            result = pytester.runpytest_subprocess(
                "dbt_project.yml", "-p", "no:cacheprovider", "-rA", "--dbt-select", "test_type:unit"
            )
            out = result.stdout.str() + result.stderr.str()
            line = next((x for x in out.splitlines() if "test_customers" in x and "::" in x), out)
            assert ("PASSED" if verdict == "pass" else "FAILED") in line, out
            assert "Error" not in line, out
            assert (
                f"source seed_sources_2.more_customers: read in {schema}_other, where it was "
                "loaded outside the project (read-only)"
            ) in out
        assert _loaded(schema) == before  # read only
    finally:
        drop_pg_prefix(prefix, prefix)
