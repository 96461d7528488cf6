"""Credential providers through the plugin, the way users run it, on DuckDB.

The example project's DuckDB target reads the minted token in a ``settings:`` value
(DuckDB's ``home_directory``), so the token's way into dbt's profile is visible from a
test; the variable is absent from ``os.environ`` between invocations; a provider nobody
reads, a missing provider and an untrusted GitHub event are each one clear message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from credential_endpoints import (  # noqa: F401 (a fixture)
    ISSUER,
    SUBJECT,
    GitHubTokenEndpoint,
    endpoint,
)
from test_errors import run_failing

VARIABLE = "DBT_ENV_SECRET_OIDC_TOKEN"

DUCKDB_READING_THE_TOKEN = f"""
shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: shop.duckdb
      schema: main
      threads: 1
      settings:
        home_directory: "{{{{ env_var('{VARIABLE}') }}}}"
"""

TOKEN_TESTS = f"""
import os

VARIABLE = "{VARIABLE}"


def test_the_profile_reads_the_minted_token(dbt):
    assert VARIABLE not in os.environ
    value = dbt.query("select current_setting('home_directory') as h")[0]["h"]
    assert value.count(".") == 2 and value.startswith("eyJ")  # a JWT
    assert VARIABLE not in os.environ


def test_dbt_invocations_get_it_and_it_is_gone_after(dbt):
    dbt.build(select="+stg_customers")
    assert VARIABLE not in os.environ
    assert dbt.table("stg_customers")
    assert VARIABLE not in os.environ
"""


def test_the_token_reaches_the_profile_only_while_needed(
    pytester: pytest.Pytester,
    shop: Path,
    endpoint: GitHubTokenEndpoint,  # noqa: F811
) -> None:
    (shop / "profiles.yml").write_text(DUCKDB_READING_THE_TOKEN)
    (shop / "pytests" / "test_token.py").write_text(TOKEN_TESTS)
    evidence = shop / "evidence.jsonl"
    result = pytester.runpytest_subprocess(
        "pytests", "--dbt-credentials", "github-oidc:audience=duckdb.test",
        f"--dbt-evidence={evidence}",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    output = result.stdout.str()
    # the evidence names the token (issuer, audience, subject, expiry), never its value
    [described] = json.loads(evidence.read_text().splitlines()[0])["credentials"]
    assert described["provider"] == "github-oidc" and described["variable"] == VARIABLE
    assert described["audience"] == "duckdb.test"
    assert (described["issuer"], described["subject"]) == (ISSUER, SUBJECT)
    assert described["expires"] != "unknown"
    assert all(token not in evidence.read_text() for token in endpoint.issued)
    assert (
        f"dbtproof: credentials: github-oidc mints {VARIABLE} before each dbt invocation and "
        f"connection (read by settings)" in output
    )
    assert endpoint.audiences and set(endpoint.audiences) == {"duckdb.test"}
    # five-minute tokens: one for the whole short run
    assert len(endpoint.issued) == 1
    assert all(token not in output for token in endpoint.issued)


def test_the_ini_key_names_providers_too(
    pytester: pytest.Pytester,
    shop: Path,
    endpoint: GitHubTokenEndpoint,  # noqa: F811
) -> None:
    (shop / "profiles.yml").write_text(DUCKDB_READING_THE_TOKEN)
    (shop / "pytest.ini").write_text(
        "[pytest]\ntestpaths = pytests\ndbt_credentials =\n    github-oidc:audience=from.ini\n"
    )
    (shop / "pytests" / "test_token.py").write_text(TOKEN_TESTS)
    pytester.runpytest_subprocess("pytests").assert_outcomes(passed=2)
    assert set(endpoint.audiences) == {"from.ini"}


def test_without_the_provider_one_clear_message(pytester: pytest.Pytester, shop: Path) -> None:
    (shop / "profiles.yml").write_text(DUCKDB_READING_THE_TOKEN)
    output = run_failing(pytester)
    assert f"Env var required but not provided: '{VARIABLE}'" in output
    assert f"{VARIABLE} is set by no one: set it, or mint it with --dbt-credentials" in output


def test_a_provider_the_target_never_reads(
    pytester: pytest.Pytester,
    shop: Path,
    endpoint: GitHubTokenEndpoint,  # noqa: F811
) -> None:
    output = run_failing(pytester, "--dbt-credentials", "github-oidc:audience=a")
    assert f"exports {VARIABLE}, but target 'dev' ({shop / 'profiles.yml'}) never reads it" in (
        output
    )
    assert endpoint.issued == []


def test_a_misspelt_provider(pytester: pytest.Pytester, shop: Path) -> None:
    output = run_failing(pytester, "--dbt-credentials", "github-odic:audience=a")
    assert "no credential provider 'github-odic'" in output and "github-oidc" in output


@pytest.mark.parametrize("event", ["pull_request_target", "fork"])
def test_untrusted_github_events_refuse_at_start(
    pytester: pytest.Pytester,
    shop: Path,
    endpoint: GitHubTokenEndpoint,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    event: str,
) -> None:
    (shop / "profiles.yml").write_text(DUCKDB_READING_THE_TOKEN)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    if event == "fork":
        path = shop.parent / "event.json"
        path.write_text(
            json.dumps(
                {
                    "pull_request": {
                        "head": {"repo": {"full_name": "stranger/shop", "fork": True}},
                        "base": {"repo": {"full_name": "acme/shop", "fork": False}},
                    }
                }
            )
        )
        monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))
    else:
        monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request_target")
    output = run_failing(pytester, "--dbt-credentials", "github-oidc:audience=a")
    assert "refusing to mint credentials (github-oidc" in output
    assert "--dbt-allow-untrusted-credentials" in output
    assert endpoint.issued == []
    (shop / "pytests" / "test_token.py").write_text(TOKEN_TESTS)
    allowed = pytester.runpytest_subprocess(
        "pytests/test_token.py",
        "--dbt-credentials",
        "github-oidc:audience=a",
        "--dbt-allow-untrusted-credentials",
    )
    allowed.assert_outcomes(passed=2)
