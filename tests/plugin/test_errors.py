"""Bad input stops the run with one clear dbtproof message, and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PG_ROLE

PASSING_TEST = {
    "pytests/test_one": "def test_one(dbt):\n    pass\n\ndef test_two(dbt):\n    pass\n"
}


def run_failing(pytester: pytest.Pytester, *args: str) -> str:
    """Run pytest, assert it stopped before running any test, and return all its output."""
    pytester.makepyfile(**PASSING_TEST)
    result = pytester.runpytest_subprocess(*args)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret != 0, output
    assert "passed" not in output and "test_one" not in output, output
    assert output.count("dbtproof:") == 1, f"expected one message, got:\n{output}"
    assert "Traceback" not in output, output
    return output


def test_project_dir_without_project(pytester: pytest.Pytester) -> None:
    output = run_failing(pytester, "--dbt-project-dir", "nowhere")
    assert f"no dbt_project.yml in {pytester.path / 'nowhere'}" in output


def test_invalid_dbt_project_yml(pytester: pytest.Pytester, shop: Path) -> None:
    (shop / "dbt_project.yml").write_text("name: shop\nprofile: shop\nmodels: [unclosed\n")
    output = run_failing(pytester)
    assert f"dbt_project.yml is not valid YAML at {shop / 'dbt_project.yml'}:4:1" in output


def test_dbt_project_yml_without_profile(pytester: pytest.Pytester, shop: Path) -> None:
    (shop / "dbt_project.yml").write_text("name: shop\nversion: '1.0'\n")
    output = run_failing(pytester)
    assert "has no `profile:`" in output


def test_profile_missing(pytester: pytest.Pytester, shop: Path) -> None:
    text = (shop / "dbt_project.yml").read_text().replace("profile: shop", "profile: warehouse")
    (shop / "dbt_project.yml").write_text(text)
    output = run_failing(pytester)
    assert "profile 'warehouse' (named by dbt_project.yml) is not in" in output
    assert "Profiles there: shop." in output


def test_profiles_yml_missing(pytester: pytest.Pytester, shop: Path) -> None:
    (shop / "profiles.yml").unlink()
    output = run_failing(pytester, "--dbt-profiles-dir", str(shop / "nothing-here"))
    assert f"no profiles.yml in {shop / 'nothing-here'}" in output


def test_target_missing(pytester: pytest.Pytester, shop: Path) -> None:
    output = run_failing(pytester, "--dbt-target", "staging")
    assert "target 'staging' is not in profile 'shop'" in output
    assert "Targets there: dev, postgres, prod, spark." in output


def test_protected_target_refused(pytester: pytest.Pytester, shop: Path) -> None:
    output = run_failing(pytester, "--dbt-target", "prod")
    assert "target 'prod' of profile 'shop'" in output and "is protected" in output
    assert "--dbt-allow-protected-target" in output
    assert not (shop / "prod.duckdb").exists()


def test_protected_targets_come_from_ini(pytester: pytest.Pytester, shop: Path) -> None:
    (shop / "pytest.ini").write_text("[pytest]\ntestpaths = pytests\ndbt_protected_targets = dev\n")
    output = run_failing(pytester)
    assert "target 'dev' of profile 'shop'" in output and "protected targets: dev" in output


def test_protected_target_allowed_explicitly(pytester: pytest.Pytester, shop: Path) -> None:
    pytester.makepyfile(**PASSING_TEST)
    result = pytester.runpytest_subprocess(
        "pytests", "--dbt-target", "prod", "--dbt-allow-protected-target"
    )
    result.assert_outcomes(passed=2)
    assert not (shop / "prod.duckdb").exists(), "even then, writes go to the run's own file"


def test_env_var_without_value(
    pytester: pytest.Pytester, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles = (shop / "profiles.yml").read_text()
    profiles = profiles.replace(
        "      schema: shop_dev\n",
        "      schema: shop_dev\n      role: \"{{ env_var('SHOP_PG_ROLE') }}\"\n",
    )
    (shop / "profiles.yml").write_text(profiles)
    monkeypatch.setenv("SHOP_PG_USER", "someone")
    output = run_failing(pytester, "--dbt-target", "postgres")
    assert "Env var required but not provided: 'SHOP_PG_ROLE'" in output
    assert "SHOP_PG_ROLE=unset" in output and "SHOP_PG_USER=set" in output
    assert "someone" not in output, "values of environment variables are never shown"


def test_nodes_that_cannot_be_moved_apart(pytester: pytest.Pytester, shop: Path) -> None:
    # Schemas `Raw` and `raw` are one schema to most warehouses: moved into the namespace,
    # the two models would overwrite each other. Everything else is moved, not refused.
    for name, schema in (("clash_a", "Raw"), ("clash_b", "raw")):
        (shop / "models" / f"{name}.sql").write_text(
            f"{{{{ config(schema='{schema}', alias='clash') }}}}\nselect 1 as id\n"
        )
    output = run_failing(pytester)
    assert "cannot move this project into the run's namespace" in output
    assert "model.shop.clash_a, model.shop.clash_b would all be" in output
    assert "Give these nodes distinct aliases" in output


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_unreachable_host(
    pytester: pytest.Pytester, shop_pg: str, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    monkeypatch.setenv("SHOP_PG_PORT", "9")  # nothing listens on the discard port
    output = run_failing(pytester, *xdist)
    assert "cannot connect to the warehouse of target 'postgres'" in output
    assert "adapter: postgres" in output
    assert f"host: 127.0.0.1, port: 9, database: test, user: {PG_ROLE}" in output
    assert "Connection refused" in output
    assert "SHOP_PG_PORT=set" in output and "SHOP_PG_PASSWORD=set" in output
    assert "dbtproof-ci-password" not in output


@pytest.mark.parametrize("option", ["--dbt-select", "--dbt-exclude"])
def test_bad_selector_is_one_clear_error(
    pytester: pytest.Pytester, shop: Path, option: str
) -> None:
    output = run_failing(pytester, option, "no_such_method:orders")
    assert f"dbtproof: dbt cannot use {option} 'no_such_method:orders' in project 'shop'" in output
    assert "no_such_method" in output.split("in project 'shop':", 1)[1]
    assert "None" not in output


def test_runs_without_pytests_tmpdir_plugin(
    pytester: pytest.Pytester, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-p no:tmpdir``: the run keeps its files in a temporary folder of its own, removed at
    the end."""
    import sys

    temp = pytester.mkdir("temp")
    monkeypatch.setenv("TMPDIR", str(temp))
    one = "def test_one(dbt):\n    assert dbt.query('select 1 as x') == [{'x': 1}]\n"
    pytester.makepyfile(**{"pytests/test_one": one})
    # Not runpytest_subprocess: it passes --basetemp, an option of the tmpdir plugin.
    result = pytester.run(sys.executable, "-m", "pytest", "pytests", "-p", "no:tmpdir",
                          "-p", "no:cacheprovider")  # fmt: skip
    result.assert_outcomes(passed=1)
    assert list(temp.iterdir()) == []


def test_connect_retries_must_be_a_small_whole_number(
    pytester: pytest.Pytester, shop: Path
) -> None:
    (shop / "pytest.ini").write_text("[pytest]\ntestpaths = pytests\ndbt_connect_retries = many\n")
    output = run_failing(pytester)
    assert "dbtproof: dbt_connect_retries = 'many' in " in output
    assert "is not a whole number from 0 to 10" in output


#: Nine times nine ... (nine levels): 387,420,489 values once the aliases are expanded.
ALIAS_BOMB = (
    "{a0: &a0 [x, x, x, x, x, x, x, x, x], "
    + ", ".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10))
    + "}"
)


@pytest.mark.parametrize(
    ("dbt_vars", "message"),
    [
        ("{1: x, name: y}", '--dbt-vars key 1 is a int, not a string; quote it ("1").'),
        ("{a: {b: {2020-01-01: x}}}", "--dbt-vars key datetime.date(2020, 1, 1) (under a.b) is a"),
        ("{a: " + "[" * 3000 + "]" * 3000 + "}", "--dbt-vars nests more than 32 levels deep"),
        ("{a: " + "[" * 40 + "]" * 40 + "}", "--dbt-vars nests more than 32 levels deep"),
        (ALIAS_BOMB, "--dbt-vars holds more than 10,000 values once its YAML aliases"),
        ("{a: '" + "x" * 70_000 + "'}", "--dbt-vars is 70,007 characters long; at most 65,536"),
    ],
    ids=["int-key", "date-key", "deep-yaml", "deep-value", "alias-bomb", "too-long"],
)
def test_dbt_vars_are_read_within_limits(
    pytester: pytest.Pytester, shop: Path, dbt_vars: str, message: str
) -> None:
    output = run_failing(pytester, "--dbt-vars", dbt_vars)
    assert f"dbtproof: {message}" in output
    assert len(output) < 2000, "one short message, not the input echoed back"


#: dbt v2's package metadata (the Rust engine, "Fusion"), as dbt-core 2.0.0rc9's sdist on
#: PyPI declares it (PKG-INFO's first lines). Its wheel is downloaded from GitHub while it
#: installs, so it cannot be installed here; its metadata is what dbtproof reads.
FUSION_METADATA = """\
Metadata-Version: 2.1
Name: dbt-core
Version: 2.0.0rc9
Summary: Build analytics the way engineers build applications
Requires-Python: >=3.10
Requires-Dist: mashumaro[msgpack]>=3.14
License: Apache-2.0
Classifier: Programming Language :: Rust
"""


@pytest.mark.fresh_process
def test_dbt_v2_installed_stops_pytest_and_the_cli_with_one_message(
    pytester: pytest.Pytester,
    shop: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dbt-core 2.x (the Rust engine) found first on the path: one dbtproof message naming
    what is supported and why, from pytest and from the ``dbtproof`` command."""
    site = tmp_path_factory.mktemp("fusion-site")
    (site / "dbt_core-2.0.0rc9.dist-info").mkdir()
    (site / "dbt_core-2.0.0rc9.dist-info" / "METADATA").write_text(FUSION_METADATA)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    output = run_failing(pytester)
    assert "dbt-core 2.0.0rc9 is installed: dbt v2, the Rust engine" in output, output
    assert "supports dbt-core>=1.8,<1.13, the Python engine" in output, output
    doctor = subprocess.run(
        [sys.executable, "-m", "dbtproof.cli.main", "doctor"],
        cwd=shop,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = doctor.stdout + doctor.stderr
    assert doctor.returncode == 2, said
    assert said.count("dbtproof:") == 1 and "Traceback" not in said, said
    assert "dbt-core 2.0.0rc9 is installed" in said and "dbt-core>=1.8,<1.13" in said, said
