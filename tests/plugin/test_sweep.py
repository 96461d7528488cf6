"""Every model of a project whose sources declare no columns runs on fixtures, nothing built.

The project comes from ``bench/sweep_project.py`` (staging models that rename, cast and
clean undeclared sources, intermediate joins, aggregating marts); its own pytest file
runs each model with an empty fixture for each direct upstream, and each staging model
on one row. ``docs/performance.md`` has the same sweep at 1,000 models.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import ROOT, pg_schemas

MODELS = 45


def _write(root: Path) -> list[str]:
    spec = importlib.util.spec_from_file_location("sweep_project", ROOT / "bench/sweep_project.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_project(root, MODELS)


def _tests(names: list[str]) -> int:
    return len(names) + sum(1 for name in names if name.startswith("stg_"))


def test_every_model_runs_on_empty_fixtures_on_duckdb(pytester: pytest.Pytester) -> None:
    names = _write(pytester.path)
    # pytests/ only: the project's build items would build models of sources with no table.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "pytests")
    result.assert_outcomes(passed=_tests(names))


def test_every_model_runs_on_empty_fixtures_on_postgres(
    pytester: pytest.Pytester, pg_role: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = _write(pytester.path)
    env = {"PGHOST": "SHOP_PG_HOST", "PGPORT": "SHOP_PG_PORT", "PGUSER": "SHOP_PG_USER",
           "PGPASSWORD": "SHOP_PG_PASSWORD", "PGDATABASE": "SHOP_PG_DATABASE"}  # fmt: skip
    for name, role_name in env.items():
        monkeypatch.setenv(name, pg_role[role_name])
    prefix = "tsweep_"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--dbt-target", "postgres", "--dbt-schema-prefix", prefix,
        "pytests",
    )  # fmt: skip
    result.assert_outcomes(passed=_tests(names))
    assert pg_schemas(prefix) == []
