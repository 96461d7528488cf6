"""A wrong password stops the run with one clear message.

The shared PostgreSQL server trusts every local login, so this test starts a
private PostgreSQL cluster that checks passwords (scram-sha-256; see private_postgres.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import PG_ROLE
from private_postgres import private_postgres
from test_errors import run_failing


@pytest.fixture(scope="module")
def password_postgres() -> Iterator[int]:
    """A private PostgreSQL that requires passwords; yields its port. The suite's role, password
    'right'."""
    with private_postgres("scram-sha-256") as cluster:
        cluster.psql(f"create role {PG_ROLE} login password 'right'")
        # an identity that may create roles: the run logs in as its run role, by password
        cluster.psql("create role dbtproof_creator login createrole password 'creator-secret'")
        cluster.psql("grant create on database postgres to dbtproof_creator")
        yield cluster.port


def test_wrong_password(
    pytester: pytest.Pytester, shop_pg: str, password_postgres: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_PG_PORT", str(password_postgres))
    monkeypatch.setenv("SHOP_PG_DATABASE", "postgres")
    monkeypatch.setenv("SHOP_PG_PASSWORD", "wrong-secret")
    output = run_failing(pytester)
    assert "cannot connect to the warehouse of target 'postgres'" in output
    assert f"port: {password_postgres}" in output and f"user: {PG_ROLE}" in output
    assert f'password authentication failed for user "{PG_ROLE}"' in output
    assert "SHOP_PG_PASSWORD=set" in output
    assert "wrong-secret" not in output


RUN_ROLE_LOGIN_TESTS = """
import os
from pathlib import Path


def test_logs_in_as_the_run_role(dbt):
    assert dbt.query("select current_user as who, session_user as login") == [
        {"who": f"{dbt.schema}_role", "login": f"{dbt.schema}_role"}
    ]
    # what the process holds in its DBTPROOF_SECRET_* variables, for the outer test to look for
    values = [v for k, v in os.environ.items() if k.startswith("DBTPROOF_SECRET_")]
    Path("secret_values.txt").write_text("\\n".join(values))
"""


def test_the_run_role_logs_in_with_a_password_nothing_shows(
    pytester: pytest.Pytester, shop_pg: str, password_postgres: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_PG_PORT", str(password_postgres))
    monkeypatch.setenv("SHOP_PG_DATABASE", "postgres")
    monkeypatch.setenv("SHOP_PG_USER", "dbtproof_creator")
    monkeypatch.setenv("SHOP_PG_PASSWORD", "creator-secret")
    (pytester.path / "pytests" / "test_login.py").write_text(RUN_ROLE_LOGIN_TESTS)
    result = pytester.runpytest_subprocess(
        "pytests/test_login.py", "-p", "no:cacheprovider", "--dbt-keep"
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "logs in as it" in output, output
    values = (pytester.path / "secret_values.txt").read_text().split("\n")
    passwords = [v for v in values if len(v) == 43]  # secrets.token_urlsafe(32)
    assert len(passwords) == 1, values
    kept = [
        path.read_text(errors="replace")
        for path in pytester.path.rglob("*")
        if path.is_file() and path.name != "secret_values.txt"
    ]
    assert not any(passwords[0] in text for text in [output, *kept])
