"""dbt-duckdb ``external`` models write their files into the run's folder, never the lake.

A profile's ``external_root`` (often an S3 lake) and a model's own ``location`` are
moved under the run's folder, which is deleted when the run ends.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

EXTERNAL_TESTS = """
from pathlib import Path


def test_external_models_write_under_the_run_folder(dbt):
    dbt.build(select="ext_default ext_located")
    assert dbt.table("ext_default") == [{"id": 1}]
    assert dbt.table("ext_located") == [{"id": 2}]
    written = sorted(p.name for p in Path(dbt._session.workdir).rglob("*.parquet"))
    assert written == ["ext_default.parquet", "located.parquet"], written
"""


def _external_project(shop: Path, lake: Path, elsewhere: Path) -> None:
    profiles = yaml.safe_load((shop / "profiles.yml").read_text())
    profiles["shop"]["outputs"]["dev"]["external_root"] = str(lake)
    (shop / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))
    models = shop / "models" / "external"
    models.mkdir()
    (models / "ext_default.sql").write_text(
        "{{ config(materialized='external') }}\nselect 1 as id\n"
    )
    (models / "ext_located.sql").write_text(
        f"{{{{ config(materialized='external', location='{elsewhere}/located.parquet') }}}}\n"
        "select 2 as id\n"
    )
    (shop / "pytests" / "test_external.py").write_text(EXTERNAL_TESTS)


def test_external_models_write_nothing_outside_the_run(
    pytester: pytest.Pytester, shop: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    lake, elsewhere = outside / "lake", outside / "elsewhere"
    lake.mkdir()
    elsewhere.mkdir()
    _external_project(shop, lake, elsewhere)
    result = pytester.runpytest_subprocess("pytests", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert list(lake.iterdir()) == [] and list(elsewhere.iterdir()) == []
    assert list(shop.rglob("*.parquet")) == [], "the run left files behind"


def test_an_external_model_writing_through_a_plugin_is_refused(
    pytester: pytest.Pytester, shop: Path
) -> None:
    models = shop / "models" / "external"
    models.mkdir()
    (models / "ext_plugin.sql").write_text(
        "{{ config(materialized='external', plugin='excel') }}\nselect 1 as id\n"
    )
    (shop / "pytests" / "test_nothing.py").write_text("def test_nothing(dbt):\n    pass\n")
    result = pytester.runpytest_subprocess("pytests", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret != 0, output
    assert (
        "model.shop.ext_plugin (models/external/ext_plugin.sql) writes through `plugin: excel`"
        in output
    )
    assert "Traceback" not in output
