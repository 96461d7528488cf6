"""The full path on PostgreSQL: the test role logs in with a password only a provider supplies.

A private PostgreSQL cluster that checks passwords (scram-sha-256; the shared server at
127.0.0.1:5432 trusts local logins) runs on a free port for this module. The stand-in
GitHub token endpoint makes each token it issues the password of the suite's non-superuser
role (``dbtproof_ci``, or what ``DBTPROOF_SUITE_PG_ROLE`` names; the previous token stops
working), and the example project's ``postgres`` target reads
``password: "{{ env_var('DBT_ENV_SECRET_OIDC_TOKEN') }}"``.
So a test passes only if dbt invocations and dbtproof's own connections log in with the
newest token: after a token expires, both get a new one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from conftest import PG_GRANT_ROLES, PG_ROLE, unique_prefix
from credential_endpoints import GitHubTokenEndpoint, github_token_endpoint
from test_auth_postgres import password_postgres  # noqa: F401  (the private cluster)
from test_errors import run_failing

VARIABLE = "DBT_ENV_SECRET_OIDC_TOKEN"

PROFILE = f"""
shop:
  target: postgres
  outputs:
    postgres:
      type: postgres
      host: 127.0.0.1
      port: "{{{{ env_var('SHOP_PG_PORT') | as_number }}}}"
      user: {PG_ROLE}
      password: "{{{{ env_var('{VARIABLE}') }}}}"
      dbname: postgres
      schema: shop_dev
      threads: 1
"""

TESTS = f"""
import os
import time

VARIABLE = "{VARIABLE}"


def test_builds_and_queries_as_the_role(dbt):
    assert VARIABLE not in os.environ
    dbt.build(select="+stg_customers")
    assert VARIABLE not in os.environ
    assert dbt.query("select current_user as u")[0]["u"] == "{PG_ROLE}"
    assert len(dbt.table("stg_customers")) > 0
    assert VARIABLE not in os.environ


def test_after_the_token_expired(dbt):
    wait = float(os.environ.get("WAIT_FOR_EXPIRY", "0"))
    time.sleep(wait)  # the last token expired; the role's password is the next one
    assert dbt.query("select current_user as u")[0]["u"] == "{PG_ROLE}"
    time.sleep(wait)
    dbt.build(select="+stg_orders")
    assert VARIABLE not in os.environ
"""


def _superuser(port: int):  # type: ignore[no-untyped-def]
    connection = psycopg2.connect(
        host="127.0.0.1", port=port, user="postgres", password="superpw", dbname="postgres"
    )
    connection.autocommit = True
    return connection


@pytest.fixture
def role_endpoint(
    password_postgres: int,  # noqa: F811
    shop: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[GitHubTokenEndpoint]:
    """The token endpoint whose every token becomes the suite role's only password; the
    project pointed at the private cluster."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "ACTIONS_", "DBT_ENV_SECRET_")):
            monkeypatch.delenv(name)
    connection = _superuser(password_postgres)
    with connection.cursor() as cursor:
        cursor.execute(f"grant create on database postgres to {PG_ROLE}")
        cursor.execute(f"alter role {PG_ROLE} password 'not-a-token'")

    def become_password(token: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"alter role {PG_ROLE} password %s", (token,))

    (shop / "profiles.yml").write_text(PROFILE)
    (shop / "pytest.ini").write_text(
        f"[pytest]\ntestpaths = pytests\ndbt_schema_prefix = {unique_prefix()}\n" + PG_GRANT_ROLES
    )
    (shop / "pytests" / "test_role.py").write_text(TESTS)
    monkeypatch.setenv("SHOP_PG_PORT", str(password_postgres))
    try:
        with github_token_endpoint(on_issue=become_password) as endpoint:
            for name, value in endpoint.environ().items():
                monkeypatch.setenv(name, value)
            yield endpoint
    finally:
        connection.close()


def test_the_role_logs_in_with_the_minted_token(
    pytester: pytest.Pytester, role_endpoint: GitHubTokenEndpoint
) -> None:
    result = pytester.runpytest_subprocess(
        "--dbt-credentials", f"github-oidc:audience=postgres,variable={VARIABLE}"
    )
    # the project's own dbt tests and builds (batched dbt invocations) pass too
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["pytests/test_role.py ..*", "dbt_project.yml ...*"])
    assert set(role_endpoint.audiences) == {"postgres"}
    assert len(role_endpoint.issued) == 1  # a five-minute token lasts the short run
    output = result.stdout.str() + result.stderr.str()
    assert all(token not in output for token in role_endpoint.issued)


def test_an_expired_token_is_minted_anew_for_dbt_and_for_dbtproof(
    pytester: pytest.Pytester, role_endpoint: GitHubTokenEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    role_endpoint.lifetime = 3
    monkeypatch.setenv("WAIT_FOR_EXPIRY", "3.5")
    result = pytester.runpytest_subprocess(
        "pytests", "--dbt-credentials", "github-oidc:audience=postgres"
    )
    result.assert_outcomes(passed=2)
    # each wait outlives a token: the query and the build after it each needed a new one
    assert len(role_endpoint.issued) >= 3


def test_without_the_provider_the_role_cannot_log_in(
    pytester: pytest.Pytester, role_endpoint: GitHubTokenEndpoint
) -> None:
    output = run_failing(pytester)
    assert f"{VARIABLE}=unset" in output
    assert f"{VARIABLE} is set by no one: set it, or mint it with --dbt-credentials" in output
    assert role_endpoint.issued == []
