"""dbt-duckdb ``external`` models write their files into the run's folder, never the lake.

A profile's ``external_root`` (often an S3 lake) and a model's own ``location`` are
moved under the run's folder, which is deleted when the run ends.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

EXTERNAL_TESTS = """
import re
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


def test_external_models_of_the_run_level_build_write_in_its_folder(
    pytester: pytest.Pytester, shop: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Under ``-n 2`` the run-level build's external models (one without a ``location``)
    write into the run-level build's folder, not into the building worker's, which goes
    when that worker ends; their data tests pass as in a serial run."""
    outside = tmp_path_factory.mktemp("outside")
    lake, elsewhere = outside / "lake", outside / "elsewhere"
    lake.mkdir()
    elsewhere.mkdir()
    _external_project(shop, lake, elsewhere)
    (shop / "models" / "external" / "external.yml").write_text(
        "version: 2\nmodels:\n"
        "  - name: ext_default\n    columns:\n      - name: id\n        data_tests: [not_null]\n"
        "  - name: ext_located\n    columns:\n      - name: id\n        data_tests: [unique]\n"
    )
    args = ["dbt_project.yml", "-p", "no:cacheprovider", "-k", "ext_"]
    serial = pytester.runpytest_subprocess(*args)
    result = pytester.runpytest_subprocess(*args, "-n", "2", "--dbt-keep")
    # (xdist's summary does not count the deselected items)
    assert {k: v for k, v in serial.parseoutcomes().items() if k != "deselected"} == {"passed": 4}
    assert result.parseoutcomes() == {"passed": 4}, result.stdout.str()
    kept = [Path(p) for p in re.findall(r"kept (\S+dbtproof_shared\.duckdb)", result.stdout.str())]
    assert kept, result.stdout.str()
    folder = kept[0].parent
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet"))
    located = f"external/{elsewhere.relative_to('/')}/located.parquet"
    assert written == sorted([located, "external/ext_default.parquet"]), written
    assert list(lake.iterdir()) == [] and list(elsewhere.iterdir()) == []
