"""Each adapter's namespace keys, checked through dbt's own profile parsing.

The derived profile of a run must parse with the adapter's dbt plugin, with the run's
namespace as its schema (BigQuery's ``dataset``), no duplicate keys, and Spark's
database following the schema. Parsing a profile needs no server, so every adapter that
is installed is tested; one that is not is skipped naming the package to install
(``/work/venv-adapters``-style environments install dbt-bigquery, dbt-snowflake,
dbt-spark, dbt-trino and dbt-athena next to dbt-core).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SHOP, engine_session

from dbtproof import _dbt_compat as compat
from dbtproof.project import targets
from dbtproof.project.discovery import load_profile_target, write_derived_profiles

NAMESPACE = "dbtproof_202611251234_abc123"

#: A minimal target of each adapter, as users write it (aliases included).
TARGETS: dict[str, dict[str, Any]] = {
    "bigquery": {"type": "bigquery", "method": "oauth", "project": "acme-dev",
                 "dataset": "analytics", "threads": 1},
    "snowflake": {"type": "snowflake", "account": "acme", "user": "u", "password": "pw",
                  "role": "r", "database": "DEV", "warehouse": "w", "schema": "analytics"},
    "spark": {"type": "spark", "method": "thrift", "host": "h", "port": 10000,
              "schema": "analytics", "database": "analytics"},
    "databricks": {"type": "databricks", "host": "h.cloud", "http_path": "/sql/1", "token": "t",
                   "catalog": "main", "schema": "analytics"},
    "trino": {"type": "trino", "method": "none", "host": "h", "port": 8080, "user": "u",
              "catalog": "hive", "schema": "analytics"},
    "athena": {"type": "athena", "s3_staging_dir": "s3://bucket/tmp/", "region_name": "eu-west-1",
               "database": "awsdatacatalog", "schema": "analytics"},
    "postgres": {"type": "postgres", "host": "h", "port": 5432, "user": "u", "password": "pw",
                 "dbname": "d", "schema": "analytics"},
    "duckdb": {"type": "duckdb", "path": "x.duckdb", "schema": "main"},
}  # fmt: skip


#: Modules an adapter's credentials import while they are checked, and the package with them.
EXTRAS = {"spark": ("pyhive", "dbt-spark[PyHive]")}


def _need_adapter(adapter: str, parsing: bool = False) -> None:
    """Skip when the adapter is not installed — or fail, where the suite's script installed it
    (``DBTPROOF_REQUIRE_ADAPTERS``, set by scripts/test: CI must not skip these)."""
    required = adapter in os.environ.get("DBTPROOF_REQUIRE_ADAPTERS", "").split()
    missing = None
    if importlib.util.find_spec(f"dbt.adapters.{adapter}") is None:
        missing = f"needs the dbt-{adapter} package (pip install 'dbt-{adapter}>=1.8,<1.12')"
    module, package = EXTRAS.get(adapter, (None, None))
    if parsing and module is not None and importlib.util.find_spec(module) is None:
        missing = missing or f"dbt-{adapter} checks its profile only with {package} installed"
    if missing and required:
        pytest.fail(f"{missing}; scripts/test installs it (DBTPROOF_REQUIRE_ADAPTERS)")
    if missing:
        pytest.skip(missing)


def _derive(tmp_path: Path, output: dict[str, Any]) -> Path:
    (tmp_path / "profiles.yml").write_text(
        yaml.safe_dump({"p": {"target": "t", "outputs": {"t": output}}})
    )
    target = load_profile_target(tmp_path, "p", None)
    return write_derived_profiles(target, {"schema": NAMESPACE}, tmp_path / "derived")


@pytest.mark.parametrize("adapter", sorted(TARGETS))
def test_derived_profile_parses_with_the_namespace_as_schema(tmp_path: Path, adapter: str) -> None:
    _need_adapter(adapter, parsing=True)
    derived = _derive(tmp_path, TARGETS[adapter])
    credentials = compat.parse_profile(str(derived), "p", "t")  # dbt's own checks
    assert credentials.schema == NAMESPACE
    output = yaml.safe_load((derived / "profiles.yml").read_text())["p"]["outputs"]["t"]
    rules = targets.rules_for(adapter)
    assert [key for key in rules.schema_keys if key in output] == [
        "dataset" if adapter == "bigquery" else "schema"
    ], "one key holds the schema: the one the user wrote"
    if rules.database_is_schema:
        assert output["database"] == NAMESPACE


@pytest.mark.parametrize("password_key", ["password", "pass"])
def test_the_run_roles_login_replaces_the_password_under_the_key_written(
    tmp_path: Path, password_key: str
) -> None:
    """dbt-core's own test profiles write ``pass:``; the run role's login (user, password,
    no role) must replace it, not sit beside it (dbt: "Got duplicate keys")."""
    _need_adapter("postgres", parsing=True)
    output = {k: v for k, v in TARGETS["postgres"].items() if k != "password"}
    output[password_key] = "identity-pw"
    (tmp_path / "profiles.yml").write_text(
        yaml.safe_dump({"p": {"target": "t", "outputs": {"t": output}}})
    )
    target = load_profile_target(tmp_path, "p", None)
    login = {"schema": NAMESPACE, "user": "run_role", "password": "role-pw", "role": None}
    derived = write_derived_profiles(target, login, tmp_path / "derived")
    credentials = compat.parse_profile(str(derived), "p", "t")  # dbt's own checks
    assert (credentials.user, credentials.password) == ("run_role", "role-pw")
    written = yaml.safe_load((derived / "profiles.yml").read_text())["p"]["outputs"]["t"]
    assert [key for key in ("password", "pass") if key in written] == [password_key]


@pytest.mark.parametrize("adapter", sorted(TARGETS))
def test_the_rules_know_the_adapters_aliases(adapter: str) -> None:
    _need_adapter(adapter)
    plugin = importlib.import_module(f"dbt.adapters.{adapter}").Plugin
    # Trino's plugin names a factory; its credential classes live beside it.
    module = sys.modules[plugin.credentials.__module__]
    aliases: dict[str, str] = {}
    for value in [plugin.credentials, *vars(module).values()]:
        if isinstance(value, type) and isinstance(getattr(value, "_ALIASES", None), dict):
            aliases.update(value._ALIASES)
    rules = targets.rules_for(adapter)
    assert {a for a, canonical in aliases.items() if canonical == "schema"} == set(
        rules.schema_keys[1:]
    )
    assert {a for a, canonical in aliases.items() if canonical == "database"} == set(
        rules.database_keys[1:]
    )
    assert {a for a, canonical in aliases.items() if canonical == "password"} == set(
        rules.password_keys[1:]
    )


def test_drop_relations_first_where_the_drop_does_not_cascade(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The path taken for Trino and Athena, on a real DuckDB file through dbt's adapter."""
    with engine_session(request, tmp_path_factory, SHOP, "duckdb") as session:
        schema = f"{session.schema}_extra"
        session.connections.execute(f"create schema {schema}")
        session.connections.execute(f"create table {schema}.t as select 1 as a")
        session.connections.execute(f"create view {schema}.v as select * from {schema}.t")
        adapter = session.adapter()
        with compat.connection(adapter, "drop"):
            relation = adapter.Relation.create(database=session.database, schema=schema)
            assert len(adapter.list_relations_without_caching(relation)) == 2
            compat.drop_schemas(adapter, session.database, [schema], cascade=False)
            assert schema not in compat.list_schemas(adapter, session.database)
    assert not targets.rules_for("trino").drop_cascades
    assert targets.rules_for("postgres").drop_cascades
