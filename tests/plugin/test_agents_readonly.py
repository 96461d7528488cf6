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
        ws.session.connections.execute(f"create table {copy} as select * from {relation}")


#: A view whose every read takes a sequence value: a write, which a read-only
#: transaction refuses (PostgreSQL: "cannot execute nextval() in a read-only
#: transaction"; DuckDB: a write in a read-only transaction).
_PROBE = """{{ config(materialized='view',
    pre_hook="create sequence if not exists {{ this.schema }}.dbtproof_probe_seq") }}
select nextval('{{ this.schema }}.dbtproof_probe_seq') as probe, order_id
from {{ ref('orders') }}
"""


@pytest.mark.parametrize(("target", "environment"), [("dev", "duckdb_env"), ("postgres", "pg_env")])
def test_the_reads_of_profile_and_run_proposal_are_read_only_in_the_database(
    shop_copy: Path, target: str, environment: str, request: pytest.FixtureRequest
) -> None:
    """profile_columns and run_proposal (what the tools of the same names call) read on a
    connection the database makes read-only: a model whose read writes (a sequence's
    nextval) is refused by the database there, while the run's own connection (which
    builds models) still reads it, and a plain model profiles as before."""
    from dbtproof.agents.datatests import DataTest
    from dbtproof.agents.profiling import profile_columns
    from dbtproof.agents.proposals import Proposal, run_proposal
    from dbtproof.agents.workspace import open_workspace
    from dbtproof.errors import DbtproofError

    # the database's own refusal (DuckDB's, PostgreSQL's), not dbtproof's wording
    refusal = "launched in read-only mode|in a read-only transaction"
    (shop_copy / "models" / "marts" / "read_probe.sql").write_text(_PROBE)
    request.getfixturevalue(environment)
    with open_workspace(shop_copy, target=target, profiles_dir=shop_copy) as ws:
        relation = ws.relation("read_probe")
        assert (
            len(ws.session.connections.query(f"select probe from {relation}")) > 0
        )  # a write: allowed
        with pytest.raises(DbtproofError, match=refusal) as refused:
            profile_columns(ws, "read_probe")
        assert "read_probe" in str(refused.value)
        probe = Proposal(
            id="read_probe.probe.not_null",
            model="read_probe",
            kind="data_test",
            yaml="- not_null\n",
            passes=True,
            kills=[],
            mutants=[],
            column="probe",
            test=DataTest("probe", "not_null"),
        )
        with pytest.raises(DbtproofError, match=refusal):
            run_proposal(ws, probe)
        figures = {p.name: p for p in profile_columns(ws, "orders")}
        assert figures["order_id"].row_count and figures["order_id"].distinct_count
