"""The connection an agent's approved query runs on is read-only in the database itself
(no MCP needed: this runs on every dbt leg)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize(("target", "environment"), [("dev", "duckdb_env"), ("postgres", "pg_env")])
def test_the_agent_read_connection_is_read_only_in_the_database(
    shop_copy: Path, target: str, environment: str, request: pytest.FixtureRequest
) -> None:
    """What an approved singular test runs on refuses a write (DuckDB's read-only
    transaction, PostgreSQL's read-only session as the run role), while the same
    session's own connection may write its namespace."""
    from dbtproof.agents.readonly import read_only
    from dbtproof.agents.workspace import open_workspace

    request.getfixturevalue(environment)
    with open_workspace(shop_copy, target=target, profiles_dir=shop_copy) as ws:
        relation = ws.relation("orders")
        copy = relation.removesuffix('"') + '_copy"'
        with read_only(ws.session) as query:
            assert query(f"select count(*) from {relation}")[0][0] > 0
            with pytest.raises(Exception, match="read-only|read only"):
                query(f"create table {copy} as select * from {relation}")
        ws.session.execute(f"create table {copy} as select * from {relation}")
