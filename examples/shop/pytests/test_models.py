"""Model unit tests: run one model on fixture rows, without building anything upstream.

`dbt.run_model(model, given={...})` renders the model through dbt (macros, vars and
adapter dispatch as in a real run), with each upstream replaced by the rows a test
gives, runs it in this run's namespace and returns its rows. Columns a fixture leaves
out are NULLs of their proper type. Each test takes milliseconds.

Run them from examples/shop with `pytest` (DuckDB), `pytest --dbt-target postgres` or
`pytest --dbt-target spark`.
"""

from datetime import date

import pytest

from dbtproof import ref, source

# Give only the columns the test is about: the rest are typed NULLs.
STG_CUSTOMERS = [
    {"customer_id": 1, "first_name": "Ada"},
    {"customer_id": 2, "first_name": "Alan"},
]


def test_customers_sum_up_their_orders(dbt):
    out = dbt.run_model(
        "customers",
        given={
            ref("stg_customers"): STG_CUSTOMERS,
            ref("orders"): [
                {"order_id": 1, "customer_id": 1, "order_date": "2024-02-01", "amount": 10},
                {"order_id": 2, "customer_id": 1, "order_date": "2024-03-08", "amount": 5.5},
            ],
        },
    )
    assert out == [
        {"customer_id": 1, "number_of_orders": 2, "customer_lifetime_value": 15.5,
         "first_order": date(2024, 2, 1), "most_recent_order": "2024-03-08"},
        {"customer_id": 2, "number_of_orders": 0, "customer_lifetime_value": 0,
         "first_order": None, "most_recent_order": None},
    ]  # fmt: skip


def test_returned_orders_bring_no_value(dbt):
    out = dbt.run_model(
        "customers",
        given={
            "stg_customers": STG_CUSTOMERS,  # a plain string means ref("stg_customers")
            "orders": [
                {"order_id": 1, "customer_id": 2, "status": "completed", "amount": 20},
                {"order_id": 2, "customer_id": 2, "status": "returned", "amount": 7},
            ],
        },
    )
    assert {"customer_id": 2, "customer_lifetime_value": 20} in out


def test_payments_from_a_csv_file(dbt):
    # A CSV path is read relative to this file (then the project, then the current folder).
    out = dbt.run_model(
        "stg_payments", given={source("shop", "raw_payments"): "fixtures/raw_payments.csv"}
    )
    assert out == [
        {"payment_id": 1, "amount": 10},
        {"payment_id": 2, "amount": 2.5},
        {"payment_id": 3, "amount": 19.99},
        {"payment_id": 4, "amount": None},  # an empty CSV field is NULL
    ]


def test_csv_text_works_too(dbt):
    out = dbt.run_model(
        "stg_orders",
        given={
            source("shop", "raw_orders"): """
                order_id,customer_id,order_date,status
                7,1,2024-05-01,placed
            """.replace(" ", "")
        },
    )
    assert out == [{"order_id": 7, "order_date": date(2024, 5, 1), "status": "placed"}]


def test_payment_methods_come_from_a_var(dbt):
    # `int_order_payments` is ephemeral: it can be the model under test like any other.
    out = dbt.run_model(
        "int_order_payments",
        given={
            ref("stg_payments"): [
                {"order_id": 1, "payment_method": "cash", "amount": 3},
                {"order_id": 1, "payment_method": "coupon", "amount": 2},
            ]
        },
        vars={"payment_methods": ["cash", "coupon"]},
    )
    assert out == [{"order_id": 1, "cash_amount": 3, "coupon_amount": 2, "total_amount": 5}]


def test_orders_with_an_ephemeral_upstream_mocked(dbt):
    out = dbt.run_model(
        "orders",
        given={
            ref("stg_orders"): [{"order_id": 1, "customer_id": 1, "status": "placed"},
                                {"order_id": 2, "customer_id": 1, "status": "placed"}],
            ref("int_order_payments"): [{"order_id": 1, "coupon_amount": 4, "total_amount": 4}],
        },
    )  # fmt: skip
    assert out == [
        {"order_id": 1, "coupon_amount": 4, "credit_card_amount": 0, "amount": 4},
        {"order_id": 2, "coupon_amount": 0, "credit_card_amount": 0, "amount": 0},
    ]


def test_a_macro_can_be_overridden(dbt):
    # Replace a macro by name, with a constant (SQL) or a Python callable taking its arguments.
    out = dbt.run_model(
        "stg_payments",
        given={source("shop", "raw_payments"): [{"payment_id": 1, "amount": 250}]},
        macros={"cents_to_dollars": lambda column, scale=2: f"{column} * 1000"},
    )
    assert out == [{"payment_id": 1, "amount": 250000}]


REVENUE_ORDERS = [
    {"order_id": 1, "order_date": "2024-03-01", "status": "completed", "amount": 10},
    {"order_id": 2, "order_date": "2024-03-02", "status": "completed", "amount": 20},
    {"order_id": 3, "order_date": "2024-03-02", "status": "returned", "amount": 5},
    {"order_id": 4, "order_date": "2024-03-03", "status": "shipped", "amount": 7.5},
]
# The table as it stood before the run: 2024-03-02 was half-filled.
REVENUE_BEFORE = [
    {"order_date": "2024-03-01", "number_of_orders": 1, "revenue": 10},
    {"order_date": "2024-03-02", "number_of_orders": 1, "revenue": 15},
]


def test_incremental_model_full_build(dbt):
    out = dbt.run_model("fct_daily_revenue", given={ref("orders"): REVENUE_ORDERS})
    assert out == [
        {"order_date": "2024-03-01", "number_of_orders": 1, "revenue": 10},
        {"order_date": "2024-03-02", "number_of_orders": 1, "revenue": 20},
        {"order_date": "2024-03-03", "number_of_orders": 1, "revenue": 7.5},
    ]


def test_incremental_branch_selects_the_latest_days(dbt):
    # What the incremental run selects (as dbt's own unit tests show it).
    out = dbt.run_model(
        "fct_daily_revenue",
        given={ref("orders"): REVENUE_ORDERS},
        is_incremental=True,
        this=REVENUE_BEFORE,
    )
    assert out == [
        {"order_date": "2024-03-02", "number_of_orders": 1, "revenue": 20},
        {"order_date": "2024-03-03", "number_of_orders": 1, "revenue": 7.5},
    ]


def test_incremental_apply_shows_the_table_afterwards(dbt):
    # apply=True runs the model's strategy (delete+insert by order_date; on Spark,
    # insert_overwrite of those days' partitions) on `this` and returns the whole table
    # after the run — what dbt's unit tests cannot show.
    out = dbt.run_model(
        "fct_daily_revenue",
        given={ref("orders"): REVENUE_ORDERS},
        this=REVENUE_BEFORE,
        apply=True,
    )
    assert out == [
        {"order_date": "2024-03-01", "number_of_orders": 1, "revenue": 10},
        {"order_date": "2024-03-02", "number_of_orders": 1, "revenue": 20},  # rebuilt
        {"order_date": "2024-03-03", "number_of_orders": 1, "revenue": 7.5},  # added
    ]


@pytest.mark.parametrize(
    ("min_order_date", "days"),
    [("2024-01-01", 3), ("2024-03-02", 2), ("2025-01-01", 0)],
)
def test_revenue_respects_the_min_order_date(dbt, min_order_date, days):
    out = dbt.run_model(
        "fct_daily_revenue",
        given={ref("orders"): REVENUE_ORDERS},
        vars={"min_order_date": min_order_date},
    )
    assert len(out) == days
