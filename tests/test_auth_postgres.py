"""A wrong password stops the run with one clear message.

The shared PostgreSQL server trusts every local login, so this test starts a
private PostgreSQL cluster that checks passwords (scram-sha-256; see private_postgres.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from private_postgres import private_postgres
from test_errors import run_failing


@pytest.fixture(scope="module")
def password_postgres() -> Iterator[int]:
    """A private PostgreSQL that requires passwords; yields its port. Role dbtproof_ci/right."""
    with private_postgres("scram-sha-256") as cluster:
        cluster.psql("create role dbtproof_ci login password 'right'")
        yield cluster.port


def test_wrong_password(
    pytester: pytest.Pytester, shop_pg: str, password_postgres: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_PG_PORT", str(password_postgres))
    monkeypatch.setenv("SHOP_PG_DATABASE", "postgres")
    monkeypatch.setenv("SHOP_PG_PASSWORD", "wrong-secret")
    output = run_failing(pytester)
    assert "cannot connect to the warehouse of target 'postgres'" in output
    assert f"port: {password_postgres}" in output and "user: dbtproof_ci" in output
    assert 'password authentication failed for user "dbtproof_ci"' in output
    assert "SHOP_PG_PASSWORD=set" in output
    assert "wrong-secret" not in output
