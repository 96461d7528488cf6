"""No secret at rest and none in a repr: the derived profiles.yml and ``--showlocals``.

The derived ``profiles.yml`` a run writes under pytest's basetemp stays on disk after
``--dbt-keep``, a SIGKILL and pytest's retention of old basetemps, so it must hold no
secret value; the run still connects, because dbt reads the secrets from variables set
in the test process only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import PG_DATABASE, PG_HOST, PG_PASSWORD, PG_PORT, PG_ROLE

DUCKDB_SECRETS = """
shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: shop.duckdb
      schema: main
      threads: 1
      settings:
        temp_directory: /tmp/settings-secret-4f1c9e
      secrets:
        - type: http
          bearer_token: bearer-secret-8d2a71
"""

PG_LITERAL = f"""
shop:
  target: pg
  outputs:
    pg:
      type: postgres
      host: {PG_HOST}
      port: {PG_PORT}
      user: {PG_ROLE}
      password: {PG_PASSWORD}
      dbname: {PG_DATABASE}
      schema: shop_dev
      threads: 1
"""

SAVE_DERIVED = """
def test_save_derived_profile(dbt):
    from pathlib import Path

    assert dbt.query("select 1 as ok") == [{"ok": 1}]
    text = (dbt._session.workdir / "profile" / "profiles.yml").read_text()
    Path("derived_profiles.yml").write_text(text)
"""

FAILING_WITH_LOCALS = """
def test_fails_holding_the_session(dbt):
    fixture = dbt
    session = dbt._session
    target = dbt._session.profile_target
    settings = dbt._session.settings
    assert session is None, "fail, so that --showlocals prints the locals"
"""


def test_duckdb_settings_and_secrets_are_not_written_and_the_run_works(
    pytester: pytest.Pytester, shop: Path
) -> None:
    (shop / "profiles.yml").write_text(DUCKDB_SECRETS)
    (shop / "pytests" / "test_save.py").write_text(SAVE_DERIVED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dbt-keep", "pytests")
    result.assert_outcomes(passed=1)
    derived = (shop / "derived_profiles.yml").read_text()
    assert "settings-secret-4f1c9e" not in derived
    assert "bearer-secret-8d2a71" not in derived
    assert "DBTPROOF_SECRET_" in derived
    kept = list(pytester.path.rglob("profile/profiles.yml"))
    assert kept, "--dbt-keep keeps the derived profile"
    for path in kept:
        assert "bearer-secret-8d2a71" not in path.read_text()


def test_postgres_literal_password_is_not_written_nor_shown_by_showlocals(
    pytester: pytest.Pytester, shop: Path, pg_role: dict[str, str]
) -> None:
    (shop / "profiles.yml").write_text(PG_LITERAL)
    (shop / "pytests" / "test_save.py").write_text(SAVE_DERIVED)
    (shop / "pytests" / "test_locals.py").write_text(FAILING_WITH_LOCALS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--showlocals", "pytests")
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "target     = ProfileTarget(" in output, "the locals are shown"
    assert PG_PASSWORD not in output
    derived = (shop / "derived_profiles.yml").read_text()
    assert PG_PASSWORD not in derived
    assert f"user: {PG_ROLE}" in derived, "settings that are not secret stay readable"


def test_env_var_templates_are_written_back_as_they_are(tmp_path: Path) -> None:
    from dbtproof.project.discovery import load_profile_target, write_derived_profiles

    (tmp_path / "profiles.yml").write_text(
        "p:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
        "      password: \"{{ env_var('P_PASS') }}\"\n      token: 12345\n      flag: true\n"
    )
    target = load_profile_target(tmp_path, "p", None)
    folder = write_derived_profiles(target, {"schema": "ns"}, tmp_path / "derived")
    text = (folder / "profiles.yml").read_text()
    output = yaml.safe_load(text)["p"]["outputs"]["dev"]
    assert output["password"] == "{{ env_var('P_PASS') }}"
    assert "12345" not in text
    assert output["token"].endswith("| as_number }}") and output["flag"].endswith("| as_bool }}")
    assert "P_PASS" not in repr(target) + str(target)
