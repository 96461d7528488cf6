"""Example tests of the shop project's marts, built in this run's own namespace.

Run them from examples/shop with `pytest` (DuckDB), `pytest --dbt-target postgres` or
`pytest --dbt-target spark`.
"""

from decimal import Decimal

import pytest

from dbtproof import DbtproofError


@pytest.fixture(scope="module")
def marts(dbt):
    """Build the seeds and every model up to the marts, once for this module."""
    dbt.build(select="+customers +orders")
    return dbt


def test_customers_have_lifetime_value(marts):
    # Compare only the columns you care about; order does not matter.
    assert marts.query(
        f"select customer_id, number_of_orders from {marts.relation('customers')} "
        "where customer_id in (1, 10)"
    ) == [
        {"customer_id": 1, "number_of_orders": 3},
        {"customer_id": 10, "number_of_orders": 0},
    ]


def test_every_order_is_in_the_mart(marts):
    raw = marts.table("raw_orders")
    orders = marts.table("orders")
    assert len(orders) == len(raw)
    assert sorted(r["order_id"] for r in orders) == sorted(r["order_id"] for r in raw)


def test_amounts_are_dollars(marts):
    # Numbers compare by value: 1, 1.0 and Decimal("1.00") are equal.
    total = marts.query(f"select sum(amount) as total from {marts.relation('orders')}")
    payments = marts.query(
        f"select sum(amount) / 100.0 as total from {marts.relation('raw_payments')}"
    )
    assert total == [{"total": Decimal(str(payments[0]["total"]))}]


def test_marts_land_in_the_run_namespace(dbt):
    # The custom schema `marts` lands inside this run's namespace, never in dev or prod.
    assert dbt.node("customers").schema == f"{dbt.schema}_marts"
    assert dbt.schema in dbt.relation("customers")


def test_compile_shows_the_sql(dbt):
    sql = dbt.compile("orders")
    assert "select" in sql.lower()
    assert dbt.schema in sql


def test_query_errors_show_the_sql(dbt):
    with pytest.raises(DbtproofError) as excinfo:
        dbt.query("select * from a_table_that_does_not_exist")
    assert "a_table_that_does_not_exist" in str(excinfo.value)
