"""Who may read what: the `reporter` role reads the marts and nothing upstream of them.

Roles need a warehouse that has them: on DuckDB these tests are skipped with the reason.
On PostgreSQL, create the role for CI (`CREATE ROLE reporter NOLOGIN; GRANT reporter TO
<ci user>;`) or map it to one that exists (`dbt_grant_roles = reporter:ci_reporter`).
"""

import pytest

from dbtproof import AccessDenied


def test_reporter_reads_the_customers_mart_but_not_staging(dbt):
    with dbt.as_role("reporter"):
        dbt.build(select="+customers")  # dbt commands still run as the run's identity
        assert len(dbt.table("customers")) > 0
        with pytest.raises(AccessDenied, match="stg_customers"):
            dbt.table("stg_customers")


@pytest.mark.dbt_role("reporter")
def test_reporter_cannot_read_raw_orders(dbt):
    dbt.build(select="raw_orders")
    with pytest.raises(AccessDenied):
        dbt.table("raw_orders")
