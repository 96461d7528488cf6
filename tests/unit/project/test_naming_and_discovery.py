"""Namespace names and project/profile discovery: pure functions, no warehouse needed."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dbtproof.errors import DbtproofError, ProjectConfigError, ProjectNotFoundError
from dbtproof.project.discovery import find_profiles_dir, find_project_dir, load_profile_target
from dbtproof.safety.namespace import (
    MAX_IDENTIFIER,
    SUFFIX_ROOM,
    belongs_to,
    find_leftovers,
    new_run_id,
    parse_age,
    worker_schema,
)

NOON = datetime(2026, 11, 25, 12, 34, tzinfo=timezone.utc)


def test_run_id_encodes_utc_minute_and_is_safe() -> None:
    run_id = new_run_id(now=NOON)
    assert re.fullmatch(r"dbtproof_202611251234_[a-z0-9]{6}", run_id)
    assert new_run_id(now=NOON) != run_id
    schema = worker_schema(run_id, "gw12")
    assert schema == f"{run_id}_gw12"
    assert len(schema) + SUFFIX_ROOM <= MAX_IDENTIFIER
    assert worker_schema(run_id, None) == run_id == worker_schema(run_id, "master")


@pytest.mark.parametrize("prefix", ["Upper_", "1abc_", "has-dash_", "x" * 30])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(DbtproofError, match="namespace prefix"):
        new_run_id(prefix)


def test_belongs_to_covers_custom_schemas_only() -> None:
    assert belongs_to("dbtproof_1_ab_gw0_marts", "dbtproof_1_ab_gw0")
    assert belongs_to("DBTPROOF_1_AB_GW0", "dbtproof_1_ab_gw0")
    assert not belongs_to("dbtproof_1_ab_gw01", "dbtproof_1_ab_gw0")
    assert not belongs_to("marts", "dbtproof_1_ab_gw0")


def test_leftovers_match_only_dbtproofs_own_pattern() -> None:
    schemas = [
        "dbtproof_202611251234_abc123",
        "dbtproof_202611251234_abc123_gw3_marts",
        "dbtproof_users_table",
        "main",
        "other_202611251234_abc123",
    ]
    found = find_leftovers(schemas)
    assert [f.schema for f in found] == schemas[:2]
    assert found[0].created == NOON.replace(second=0)
    assert found[0].age(NOON + timedelta(hours=2)) == timedelta(hours=2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(days=1)),
        ("7d", timedelta(days=7)),
    ],  # fmt: skip
)
def test_parse_age(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


def test_project_found_at_or_above_rootdir(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: x\nprofile: x\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_project_dir(tmp_path / "a" / "b") == tmp_path.resolve()
    assert find_project_dir(tmp_path / "a", explicit=tmp_path) == tmp_path.resolve()
    with pytest.raises(ProjectNotFoundError, match="no dbt_project.yml in"):
        find_project_dir(tmp_path, explicit=tmp_path / "a")


def test_profiles_dir_follows_dbts_order(tmp_path: Path) -> None:
    home = Path.home() / ".dbt"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {"DBT_PROFILES_DIR": "/from/dbt", "DBT_ENGINE_PROFILES_DIR": "/from/engine"}
    assert find_profiles_dir("/explicit", env, cwd) == Path("/explicit")
    assert find_profiles_dir(None, env, cwd) == Path("/from/engine")
    assert find_profiles_dir(None, {"DBT_PROFILES_DIR": "/from/dbt"}, cwd) == Path("/from/dbt")
    assert find_profiles_dir(None, {}, cwd) == home.resolve()
    (cwd / "profiles.yml").write_text("x: {}\n")
    assert find_profiles_dir(None, {}, cwd) == cwd.resolve()


def test_profile_target_defaults_and_env_var_report(tmp_path: Path) -> None:
    (tmp_path / "profiles.yml").write_text(
        "p:\n  target: dev\n  outputs:\n"
        "    dev:\n      type: postgres\n      user: \"{{ env_var('P_USER') }}\"\n"
        "      password: \"{{ env_var('P_PASS', '') }}\"\n"
    )
    target = load_profile_target(tmp_path, "p", None)
    assert (target.target_name, target.adapter_type) == ("dev", "postgres")
    assert target.env_var_report({"P_USER": "u"}) == "P_USER=set, P_PASS=unset"
    with pytest.raises(ProjectConfigError, match="target 'qa' is not in profile 'p'"):
        load_profile_target(tmp_path, "p", "qa")


def test_project_found_from_the_paths_given_not_the_rootdir(tmp_path: Path) -> None:
    from dbtproof.project.discovery import find_project_for_invocation

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "models").mkdir(parents=True)
    elsewhere.mkdir()
    (project / "dbt_project.yml").write_text("name: x\nprofile: x\n")
    assert find_project_for_invocation(project, ["dbt_project.yml"]) == project.resolve()
    assert find_project_for_invocation(elsewhere, [str(project / "models")]) == project.resolve()
    assert find_project_for_invocation(project / "models", []) == project.resolve()
    assert find_project_for_invocation(elsewhere, ["nothing.py"], fallback=project) == (
        project.resolve()
    )
    assert find_project_for_invocation(elsewhere, []) is None


def test_an_option_value_after_a_space_does_not_move_discovery(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from conftest import copy_shop

    shop = copy_shop(pytester.path)
    other = tmp_path_factory.mktemp("profiles_elsewhere")
    (other / "profiles.yml").write_text((shop / "profiles.yml").read_text())
    (shop / "profiles.yml").unlink()
    (shop / "pytest.ini").unlink()  # no ini file to pin the rootdir, as in most dbt projects
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "dbt_project.yml", "--dbt-profiles-dir", str(other),
        "--dbt-select", "stg_customers",
    )  # fmt: skip
    output = result.stdout.str()
    assert f"profiles {other}/profiles.yml" in output, output
    result.assert_outcomes(passed=3)
