"""Model unit tests (``dbt.run_model``) on DuckDB and PostgreSQL, in-process.

Each test runs on both targets: a :class:`~dbtproof.session.session.DbtSession` is opened once
per target on a copy of the example project, extended with what the example does not
show (a dispatched macro, a macro called through another one, a package, a snapshot,
env vars, an append-only incremental model). PostgreSQL runs as the suite's
non-superuser role. The plugin end to end is in ``test_engine_plugin.py``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_shop, engine_session

from dbtproof import DbtproofError, Rows, ref, source
from dbtproof import _dbt_compat as compat
from dbtproof.engine.request import ModelRunRequest
from dbtproof.errors import (
    FixtureColumnError,
    FixtureFormatError,
    FixtureValueError,
    IntrospectiveQueryError,
    IsolationError,
    MissingInputError,
    ModelRenderError,
    ModelSQLError,
    ModelTestError,
    QueryKeyError,
    UnexpectedInputError,
    UnknownColumnsError,
    UnknownMacroError,
    UnknownModelError,
)

EXTRA_FILES = {
    "macros/greeting.sql": """
        {% macro greeting() %}{{ return(adapter.dispatch('greeting')()) }}{% endmacro %}
        {% macro default__greeting() %}'hello'{% endmacro %}
        {% macro shout(text) %}upper({{ text }}){% endmacro %}
        {% macro loud_greeting() %}{{ shout(greeting()) }}{% endmacro %}
    """,
    "models/extra/greetings.sql": """
        select {{ loud_greeting() }} as greeting, {{ tools.tool_value() }} as tool,
            '{{ env_var("SHOP_REGION", "eu") }}' as region, customer_id
        from {{ ref('stg_customers') }}
    """,
    "models/extra/stamped.sql": """
        select customer_id, '{{ invocation_id }}' as run_id from {{ ref('stg_customers') }}
    """,
    "models/extra/order_log.sql": """
        {{ config(materialized='incremental', incremental_strategy='append') }}
        select order_id, status from {{ ref('stg_orders') }}
        {% if is_incremental() %}where order_id > (select max(order_id) from {{ this }}){% endif %}
    """,
    "models/extra/order_history.sql": """
        select order_id, status, dbt_valid_from, dbt_valid_to
        from {{ ref('orders_snapshot') }}
    """,
    "snapshots/orders_snapshot.sql": """
        {% snapshot orders_snapshot %}
        {{ config(target_schema=target.schema, unique_key='order_id', strategy='check',
                  check_cols=['status']) }}
        select * from {{ ref('stg_orders') }}
        {% endsnapshot %}
    """,
    # Introspective models: they query the warehouse while they render (run with queries=).
    "macros/column_values.sql": """
        {#- What dbt_utils.get_column_values does: refuse an ephemeral relation (a CTE), check
            that the relation exists, then select the column's distinct values from it. -#}
        {% macro column_values(relation, column) %}
            {%- if not execute %}{{ return([]) }}{% endif -%}
            {%- if relation.is_cte -%}
                {{ exceptions.raise_compiler_error("column_values() cannot read the ephemeral "
                                                   ~ relation) }}
            {%- endif -%}
            {%- if load_relation(relation) is none -%}
                {{ exceptions.raise_compiler_error("column_values(): " ~ relation
                                                   ~ " does not exist") }}
            {%- endif -%}
            {%- call statement('column_values', fetch_result=true) %}
                select {{ column }} as value from {{ relation }}
                group by {{ column }} order by count(*) desc, 1
            {%- endcall -%}
            {{ return(load_result('column_values')['data'] | map(attribute=0) | list) }}
        {% endmacro %}
        {#- What dbt_utils.star does: the relation's columns (but *except*), quoted. -#}
        {% macro star_of(relation, except=[]) -%}
            {%- if not execute %}{{ return('*') }}{% endif -%}
            {%- if relation.is_cte -%}
                {{ exceptions.raise_compiler_error("star_of() cannot read the ephemeral "
                                                   ~ relation) }}
            {%- endif -%}
            {%- set skip = except | map('lower') | list -%}
            {%- set names = [] -%}
            {%- for column in adapter.get_columns_in_relation(relation) -%}
                {%- if column.column | lower not in skip %}{% do names.append(column.column) %}
                {%- endif -%}
            {%- endfor -%}
            {%- for name in names %}{{ adapter.quote(name) }}{{ ", " if not loop.last }}
            {%- endfor -%}
        {%- endmacro %}
        {#- What dbt_utils.union_relations does: the superset of the relations' columns (a
            string column as its widest), each relation's select cast to its types, with
            nulls for the columns it lacks and the relation it came from. -#}
        {% macro union_of(relations) -%}
            {%- set relation_columns = {} -%}
            {%- set column_superset = {} -%}
            {%- for relation in relations -%}
                {%- do relation_columns.update({relation: []}) -%}
                {%- for col in adapter.get_columns_in_relation(relation) -%}
                    {%- do relation_columns[relation].append(col.column) -%}
                    {%- if col.column in column_superset -%}
                        {%- set stored = column_superset[col.column] -%}
                        {%- if col.is_string() and stored.is_string()
                               and col.string_size() > stored.string_size() -%}
                            {%- do column_superset.update({col.column: col}) -%}
                        {%- endif -%}
                    {%- else -%}
                        {%- do column_superset.update({col.column: col}) -%}
                    {%- endif -%}
                {%- endfor -%}
            {%- endfor -%}
            {%- for relation in relations %}
            select
                cast({{ dbt.string_literal(relation.identifier) }} as {{ dbt.type_string() }})
                    as _source_relation
                {%- for name, col in column_superset.items() %},
                cast({{ adapter.quote(name) if name in relation_columns[relation] else 'null' }}
                    as {{ col.data_type }}) as {{ adapter.quote(name) }}
                {%- endfor %}
            from {{ relation }}
            {% if not loop.last %}union all{% endif %}
            {%- endfor %}
        {%- endmacro %}
        {% macro column_list(relation) -%}
            {%- for column in adapter.get_columns_in_relation(relation) -%}
                {{ column.name }}{{ ", " if not loop.last }}
            {%- endfor -%}
        {%- endmacro %}
    """,
    "models/introspective/payment_pivot.sql": """
        {%- set methods = [] -%}
        {%- if execute -%}
            {%- set found = run_query("select distinct payment_method from "
                                      ~ ref('stg_payments') ~ " order by 1") -%}
            {%- set methods = found.columns[0].values() -%}
        {%- endif %}
        select
            order_id
            {%- for method in methods %},
            sum(case when payment_method = '{{ method }}' then amount else 0 end)
                as {{ method }}_amount
            {%- endfor %}
        from {{ ref('stg_payments') }}
        group by order_id
    """,
    "models/introspective/payment_pivot_by_macro.sql": """
        select
            order_id
            {%- for method in column_values(ref('stg_payments'), 'payment_method') %},
            sum(case when payment_method = '{{ method }}' then amount else 0 end)
                as {{ method }}_amount
            {%- endfor %}
        from {{ ref('stg_payments') }}
        group by order_id
    """,
    "models/introspective/payment_columns.sql": """
        select {{ column_list(ref('stg_payments')) }} from {{ ref('stg_payments') }}
    """,
    "models/introspective/payments_star.sql": """
        select {{ star_of(ref('stg_payments'), except=['payment_id']) }}
        from {{ ref('stg_payments') }}
    """,
    "models/introspective/people_and_payments.sql": """
        {{ union_of([ref('stg_customers'), ref('stg_payments')]) }}
    """,
    "models/introspective/payments_star_all.sql": "select * from {{ ref('payments_star') }}",
    "models/introspective/people_and_payments_all.sql": (
        "select * from {{ ref('people_and_payments') }}"
    ),
    "models/introspective/probed.sql": """
        {%- set one = run_query("select 1 as one") if execute else none -%}
        {%- set lookup = run_query("select code from dbtproof_no_such_lookup") if execute
                         and var('with_lookup', false) else none -%}
        select {{ one.columns[0].values()[0] if execute else 0 }} as one, customer_id
        from {{ ref('stg_customers') }}
    """,
    "models/introspective/new_orders.sql": """
        {{ config(materialized='incremental', unique_key='order_id') }}
        {%- set since = 0 -%}
        {%- if execute and is_incremental() -%}
            {%- set since = run_query("select coalesce(max(order_id), 0) from "
                                      ~ this).columns[0].values()[0] -%}
        {%- endif %}
        select order_id, status from {{ ref('stg_orders') }} where order_id > {{ since }}
    """,
    # A source loaded outside the project (dbt-core's suite seeds it with another target):
    # no table where the run reads it, no seed of the project loads it, no columns declared.
    "models/extra/elsewhere.yml": """
        sources:
          - name: elsewhere
            schema: "{{ target.schema }}_other"
            tables:
              - name: raw_customers
    """,
    "models/extra/all_customers.sql": """
        select * from {{ source('shop', 'raw_customers') }}
        union all
        select * from {{ source('elsewhere', 'raw_customers') }}
    """,
    # A package as `dbt deps` installs a local one (dbt 1.12 refuses a package that
    # packages.yml does not name).
    "packages.yml": "packages:\n  - local: dbt_packages/tools\n",
    "dbt_packages/tools/dbt_project.yml": """
        name: tools
        version: "1.0.0"
        config-version: 2
        macro-paths: ["macros"]
    """,
    "dbt_packages/tools/macros/tool_value.sql": """
        {% macro tool_value() %}{{ tools.tool_inner() }}{% endmacro %}
        {% macro tool_inner() %}1{% endmacro %}
    """,
}


def make_project(destination: Path) -> Path:
    """A copy of the example project with the extra files above."""
    copy_shop(destination)
    for name, text in EXTRA_FILES.items():
        path = destination / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    (destination / "dbt_project.yml").write_text(
        (destination / "dbt_project.yml")
        .read_text()
        .replace(
            'macro-paths: ["macros"]', 'macro-paths: ["macros"]\nsnapshot-paths: ["snapshots"]'
        )
    )
    return destination


@pytest.fixture(scope="session", params=["duckdb", "postgres"])
def dbt(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """A started dbt session on the extended example project, one per target."""
    target = request.param
    project = make_project(tmp_path_factory.mktemp(f"engine_{target}"))
    with engine_session(request, tmp_path_factory, project, target) as session:
        yield session


STG_CUSTOMERS = [{"customer_id": 1, "first_name": "Ada"}, {"customer_id": 2, "first_name": "Al"}]
ORDERS = [
    {"order_id": 1, "customer_id": 1, "order_date": "2024-02-01", "status": "done", "amount": 10},
    {
        "order_id": 2,
        "customer_id": 1,
        "order_date": "2024-02-03",
        "status": "returned",
        "amount": 5,
    },
]


# -- running models --------------------------------------------------------------------


def test_plain_model_with_typed_nulls_for_missing_columns(dbt) -> None:
    out = dbt.run_model("customers", given={ref("stg_customers"): STG_CUSTOMERS, "orders": ORDERS})
    assert isinstance(out, Rows)
    assert out.columns == (
        "customer_id", "first_name", "last_name", "first_order", "most_recent_order",
        "number_of_orders", "customer_lifetime_value",
    )  # fmt: skip
    assert out == [
        {"customer_id": 1, "last_name": None, "first_order": date(2024, 2, 1),
         "number_of_orders": 2, "customer_lifetime_value": Decimal("10.00")},
        {"customer_id": 2, "last_name": None, "first_order": None,
         "number_of_orders": 0, "customer_lifetime_value": 0},
    ]  # fmt: skip


def test_values_are_cast_to_the_upstream_column_types(dbt) -> None:
    # Strings become dates and numbers as the upstream's columns say, like dbt's unit tests.
    out = dbt.run_model(
        "stg_orders",
        given={source("shop", "raw_orders"): [{"order_id": "7", "order_date": "2024-05-01"}]},
    )
    assert out.ordered == [{"order_id": 7, "order_date": date(2024, 5, 1), "status": None}]
    assert isinstance(out[0]["order_id"], int)


def test_input_formats(dbt, tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    pyarrow = pytest.importorskip("pyarrow")
    expected = [{"payment_id": 1, "amount": Decimal("0.25")}, {"payment_id": 2, "amount": None}]
    csv_text = "payment_id,amount\n1,25\n2,\n"
    path = tmp_path / "payments.csv"
    path.write_text(csv_text)
    formats = [
        [{"payment_id": 1, "amount": 25}, {"payment_id": 2, "amount": None}],
        csv_text,
        str(path),
        path,
        pandas.DataFrame({"payment_id": [1, 2], "amount": [25, None]}),
        pyarrow.table({"payment_id": [1, 2], "amount": [25, None]}),
        Rows(["payment_id", "amount"], [(1, 25), (2, None)]),
    ]
    for data in formats:
        out = dbt.run_model("stg_payments", given={source("shop", "raw_payments"): data})
        assert out == expected, type(data)
    empty = dbt.run_model("stg_payments", given={source("shop", "raw_payments"): []})
    assert len(empty) == 0 and "amount" in empty.columns


def test_csv_path_relative_to_the_test_file(dbt) -> None:
    folder = Path(__file__).parent / "engine_fixtures"
    assert (folder / "raw_customers.csv").is_file()
    out = dbt.run_model(
        "stg_customers",
        given={source("shop", "raw_customers"): "engine_fixtures/raw_customers.csv"},
    )
    assert out == [
        {"customer_id": 1, "email": "ada@example.com", "signup_date": date(2024, 1, 3)},
        {"customer_id": 2, "email": None, "signup_date": None},
    ]


def test_depends_on_hints_in_comments_need_no_fixture(dbt) -> None:
    # stg_payments has `-- depends_on: {{ ref('raw_payments') }}`; only the source is read.
    out = dbt.run_model("stg_payments", given={source("shop", "raw_payments"): []})
    assert len(out) == 0


def test_vars_and_env_apply_to_one_call_only(dbt) -> None:
    given = {ref("stg_payments"): [{"order_id": 1, "payment_method": "cash", "amount": 2}]}
    out = dbt.run_model("int_order_payments", given=given, vars={"payment_methods": ["cash"]})
    assert out.columns == ("order_id", "cash_amount", "total_amount")
    assert dbt.run_model("int_order_payments", given=given).columns[1] == "credit_card_amount"
    customers = {ref("stg_customers"): [{"customer_id": 1}]}
    assert dbt.run_model("greetings", given=customers, env={"SHOP_REGION": "us"}) == [
        {"region": "us"}
    ]
    assert dbt.run_model("greetings", given=customers) == [{"region": "eu"}]


def test_macro_overrides_reach_indirect_dispatched_and_package_macros(dbt) -> None:
    customers = {ref("stg_customers"): [{"customer_id": 1}]}
    assert dbt.run_model("greetings", given=customers) == [{"greeting": "HELLO", "tool": 1}]
    # greeting() is called by loud_greeting(), through adapter.dispatch's implementation too.
    assert dbt.run_model("greetings", given=customers, macros={"greeting": "'hi'"}) == [
        {"greeting": "HI"}
    ]
    assert dbt.run_model("greetings", given=customers, macros={"default__greeting": "'yo'"}) == [
        {"greeting": "YO"}
    ]
    # A callable gets the macro's arguments.
    out = dbt.run_model(
        "greetings", given=customers, macros={"shout": lambda text: f"lower({text})"}
    )
    assert out == [{"greeting": "hello"}]
    # A package's macro, called by another macro of that package, by name or package.name.
    for name in ("tool_inner", "tools.tool_inner"):
        assert dbt.run_model("greetings", given=customers, macros={name: 42}) == [{"tool": 42}]


def test_macro_overrides_replace_values_of_dbt_context_as_in_dbt(dbt) -> None:
    # dbt's unit tests let `overrides: macros` replace a context value that is no macro.
    customers = {ref("stg_customers"): [{"customer_id": 1}]}
    assert dbt.run_model("stamped", given=customers)[0]["run_id"] != "fixed-run"
    out = dbt.run_model("stamped", given=customers, macros={"invocation_id": "fixed-run"})
    assert out == [{"customer_id": 1, "run_id": "fixed-run"}]


def test_column_names_differing_in_case_from_row_to_row_are_one_column(dbt) -> None:
    # As dbt's unit tests read given rows (format_row lowercases each row's names).
    payments = [{"payment_id": 1, "amount": 25}, {"PAYMENT_ID": 2, "Amount": 50}]
    out = dbt.run_model("stg_payments", given={source("shop", "raw_payments"): payments})
    assert out.ordered == [
        {"payment_id": 1, "amount": Decimal("0.25")},
        {"payment_id": 2, "amount": Decimal("0.50")},
    ]
    # One row naming a column twice is still refused.
    twice = [{"payment_id": 1}, {"payment_id": 2, "PAYMENT_ID": 3}]
    with pytest.raises(FixtureColumnError, match="names column 'payment_id' of .* twice"):
        dbt.run_model("stg_payments", given={source("shop", "raw_payments"): twice})


def test_a_source_of_unknown_columns_read_whole_is_named_when_the_sql_fails(dbt) -> None:
    # Its table is not where the run reads it and nothing declares its columns, so the
    # fixture's are all dbtproof knows; `select *` then gives the union too few columns.
    given = {
        source("shop", "raw_customers"): [{"customer_id": 1, "first_name": "Emily"}],
        source("elsewhere", "raw_customers"): [{"customer_id": 2, "first_name": "Joan"}],
    }
    with pytest.raises(UnknownColumnsError) as raised:
        dbt.run_model("all_customers", given=given)
    message = str(raised.value)
    assert message.startswith("dbtproof: model all_customers reads every column of ")
    assert "source('elsewhere', 'raw_customers')" in message
    assert "source('shop', 'raw_customers')" not in message  # its seed says its columns
    assert "_other" in message and "raw_customers" in message  # where its table was looked for
    assert "models/extra/elsewhere.yml" in message  # where to declare them
    assert "--- SQL ---" not in message and len(message.splitlines()) <= 6  # short
    # Every column given in the fixture: the model runs.
    whole = {"customer_id": 2, "first_name": "Joan", "last_name": "B", "email": "j@x",
             "signup_date": date(2024, 1, 2)}  # fmt: skip
    given[source("elsewhere", "raw_customers")] = [whole]
    assert len(dbt.run_model("all_customers", given=given)) == 2


def test_ephemeral_models_as_input_and_under_test(dbt) -> None:
    out = dbt.run_model(
        "orders",
        given={
            ref("stg_orders"): [{"order_id": 1, "customer_id": 1}],
            ref("int_order_payments"): [{"order_id": 1, "gift_card_amount": 3, "total_amount": 3}],
        },
    )
    assert out == [{"order_id": 1, "gift_card_amount": 3, "coupon_amount": 0, "amount": 3}]
    out = dbt.run_model(
        "int_order_payments",
        given={ref("stg_payments"): [{"order_id": 1, "payment_method": "coupon", "amount": 2}]},
    )
    assert out == [{"order_id": 1, "coupon_amount": 2, "total_amount": 2}]


def test_snapshot_as_input(dbt) -> None:
    out = dbt.run_model(
        "order_history",
        given={ref("orders_snapshot"): [
            {"order_id": 1, "status": "placed", "dbt_valid_from": "2024-01-01 10:00:00"},
        ]},
    )  # fmt: skip
    assert out == [{"order_id": 1, "dbt_valid_from": "2024-01-01 10:00:00", "dbt_valid_to": None}]


def test_incremental_branch_and_apply(dbt) -> None:
    orders = [
        {"order_id": 1, "order_date": "2024-03-01", "status": "completed", "amount": 10},
        {"order_id": 2, "order_date": "2024-03-02", "status": "completed", "amount": 20},
        {"order_id": 3, "order_date": "2024-03-03", "status": "completed", "amount": 7},
    ]
    before = [
        {"order_date": "2024-03-01", "number_of_orders": 1, "revenue": 99},
        {"order_date": "2024-03-02", "number_of_orders": 1, "revenue": 1},
    ]
    full = dbt.run_model("fct_daily_revenue", given={"orders": orders})
    assert len(full) == 3
    selected = dbt.run_model(
        "fct_daily_revenue", given={"orders": orders}, is_incremental=True, this=before
    )
    assert selected == [
        {"order_date": "2024-03-02", "revenue": 20},
        {"order_date": "2024-03-03", "revenue": 7},
    ]
    after = dbt.run_model("fct_daily_revenue", given={"orders": orders}, this=before, apply=True)
    assert after == [
        {"order_date": "2024-03-01", "revenue": 99},  # untouched
        {"order_date": "2024-03-02", "revenue": 20},  # deleted and inserted by unique_key
        {"order_date": "2024-03-03", "revenue": 7},  # new
    ]
    # On an empty table the filter compares with max() of nothing, NULL: as in dbt, no rows.
    assert dbt.run_model("fct_daily_revenue", given={"orders": orders}, this=[], apply=True) == []
    # An append-only model.
    log = dbt.run_model(
        "order_log",
        given={
            ref("stg_orders"): [{"order_id": 1, "status": "new"}, {"order_id": 5, "status": "x"}]
        },
        this=[{"order_id": 1, "status": "old"}],
        apply=True,
    )
    assert log == [{"order_id": 1, "status": "old"}, {"order_id": 5, "status": "x"}]


def test_apply_leaves_nothing_behind(dbt) -> None:
    dbt.run_model("order_log", given={ref("stg_orders"): [{"order_id": 2}]}, this=[], apply=True)
    tables = dbt.query(
        "select table_name from information_schema.tables "
        f"where table_schema = '{dbt.schema}' and table_name like 'dbtproof%'"
    )
    assert len(tables) == 0


def test_ordered_and_parametrized_calls_reuse_the_render(dbt) -> None:
    engine = dbt.engine
    given = {ref("stg_customers"): STG_CUSTOMERS, "orders": []}
    dbt.run_model("customers", given=given)
    renders = len(engine._renders)
    for customer_id in range(3, 8):
        rows = [{"customer_id": customer_id}]
        out = dbt.run_model("customers", given={ref("stg_customers"): rows, "orders": []})
        assert out == [{"customer_id": customer_id, "number_of_orders": 0}]
    assert len(engine._renders) == renders, "same overrides: rendered once"
    dbt.run_model("customers", given=given, vars={"unused": 1})
    assert len(engine._renders) == renders + 1
    ordered = dbt.run_model(
        "stg_customers", given={source("shop", "raw_customers"): []}, ordered=True
    )
    assert ordered == [] and ordered.rows.columns[0] == "customer_id"


# -- introspective models: queries= ------------------------------------------------------

PAYMENTS = [
    {"order_id": 1, "payment_method": "card", "amount": 2},
    {"order_id": 1, "payment_method": "cash", "amount": 3},
    {"order_id": 2, "payment_method": "card", "amount": 4},
]
CARD_AND_COUPON = [{"payment_method": "card"}, {"payment_method": "coupon"}]


def test_queries_give_the_result_of_run_query(dbt) -> None:
    out = dbt.run_model(
        "payment_pivot",
        given={ref("stg_payments"): PAYMENTS},
        queries={"select distinct payment_method": CARD_AND_COUPON},
    )
    assert out.columns == ("order_id", "card_amount", "coupon_amount")
    assert out == [
        {"order_id": 1, "card_amount": 2, "coupon_amount": 0},
        {"order_id": 2, "card_amount": 4, "coupon_amount": 0},
    ]
    # Whitespace and case do not matter to a substring; CSV text and Rows work as fixtures do.
    for result in ("payment_method\ncoupon\n", Rows(["m"], [("coupon",)])):
        out = dbt.run_model(
            "payment_pivot",
            given={ref("stg_payments"): PAYMENTS},
            queries={"SELECT  DISTINCT\n payment_method FROM": result},
        )
        assert out.columns == ("order_id", "coupon_amount")


def test_queries_by_regex_through_get_relation_and_statement(dbt) -> None:
    # column_values() does what dbt_utils.get_column_values does: it checks that the relation
    # exists (adapter.get_relation), then runs its query through the statement macro.
    out = dbt.run_model(
        "payment_pivot_by_macro",
        given={ref("stg_payments"): PAYMENTS},
        queries={re.compile(r"select\s+payment_method as value"): [{"value": "coupon"}]},
    )
    assert out.columns == ("order_id", "coupon_amount")


def test_queries_on_given_inputs_without_a_result_read_the_fixture_rows(dbt) -> None:
    # What the model would see in a real run on that upstream data.
    for model in ("payment_pivot", "payment_pivot_by_macro"):
        out = dbt.run_model(model, given={ref("stg_payments"): PAYMENTS})
        assert sorted(out.columns) == ["card_amount", "cash_amount", "order_id"], model
        assert out == [
            {"order_id": 1, "card_amount": 2, "cash_amount": 3},
            {"order_id": 2, "card_amount": 4, "cash_amount": 0},
        ]
        # Not cached: other rows, other values.
        bank = [{"order_id": 3, "payment_method": "bank", "amount": 1}]
        out = dbt.run_model(model, given={ref("stg_payments"): bank})
        assert out.columns == ("order_id", "bank_amount"), model
    # `this`: the incremental branch asks for the newest order of the given `this`.
    orders = [{"order_id": n, "status": "new"} for n in (1, 2, 3)]
    out = dbt.run_model(
        "new_orders",
        given={ref("stg_orders"): orders},
        is_incremental=True,
        this=[{"order_id": 2, "status": "old"}],
    )
    assert out == [{"order_id": 3, "status": "new"}]
    after = dbt.run_model(
        "new_orders",
        given={ref("stg_orders"): orders},
        this=[{"order_id": 1, "status": "old"}, {"order_id": 2, "status": "old"}],
        apply=True,
    )
    assert after == [
        {"order_id": 1, "status": "old"},
        {"order_id": 2, "status": "old"},
        {"order_id": 3, "status": "new"},
    ]


def test_query_without_a_given_result_runs_in_the_warehouse(dbt) -> None:
    # `select 1` needs nothing: it runs on the namespace's connection (with execute true).
    out = dbt.run_model("probed", given={ref("stg_customers"): [{"customer_id": 7}]})
    assert out == [{"one": 1, "customer_id": 7}]
    out = dbt.run_model(
        "probed",
        given={ref("stg_customers"): [{"customer_id": 7}]},
        queries={"select 1 as one": [{"one": 5}]},
    )
    assert out == [{"one": 5, "customer_id": 7}]


def test_the_guard_looks_after_a_call_unless_it_provably_wrote_nothing(dbt) -> None:
    # On DuckDB, a call whose render reached nothing of dbt's adapter and whose statement
    # is one SELECT by DuckDB's parser skips the guard's look; every other call looks.
    guard = dbt.guard
    duckdb = dbt.adapter_type == "duckdb"
    customers = {ref("stg_customers"): [{"customer_id": 1}]}

    def looked(call: Any) -> bool:
        looks, skipped = guard.looks, guard.skipped
        call()
        assert guard.looks + guard.skipped == looks + skipped + 1
        return guard.looks == looks + 1

    # adapter.dispatch reaches no statement
    assert looked(lambda: dbt.run_model("greetings", given=customers)) is not duckdb
    assert looked(lambda: dbt.run_model("greetings", given=customers)) is not duckdb  # cached
    # run_query in the warehouse, a Python macro override, two statements: a look each
    assert looked(
        lambda: dbt.run_model("probed", given={ref("stg_customers"): [{"customer_id": 7}]})
    )
    assert looked(
        lambda: dbt.run_model("greetings", given=customers, macros={"shout": lambda t: t})
    )
    two = ModelRunRequest("greetings", customers, rewrite=lambda sql: f"select 1 as a;\n{sql}")
    assert looked(lambda: dbt.session.run_model(two))
    if not duckdb:
        return
    # What an unwatched write left is seen by the next look, not lost with a skipped one.
    handle = compat.held_handle(dbt.session.engine.host.adapter())
    handle.cursor().execute("attach ':memory:' as dbtproof_unwatched")
    try:
        assert not looked(lambda: dbt.run_model("greetings", given=customers))
        with pytest.raises(
            IsolationError, match=r"created schema dbtproof_unwatched.main.*dbt.query"
        ):
            dbt.query("select 1 as x")
    finally:
        dbt.execute("detach database if exists dbtproof_unwatched")


def test_failing_query_without_a_given_result_names_it_and_the_fix(dbt) -> None:
    given = {ref("stg_customers"): [{"customer_id": 7}]}
    with pytest.raises(IntrospectiveQueryError) as excinfo:
        dbt.run_model("probed", given=given, vars={"with_lookup": True})
    message = str(excinfo.value)
    assert "select code from dbtproof_no_such_lookup" in message
    assert "probed" in message and "queries={" in message
    assert "dbtproof_no_such_lookup" in message.partition("--- query SQL ---")[0]
    # The fix the message shows works, and the session goes on.
    out = dbt.run_model(
        "probed",
        given=given,
        vars={"with_lookup": True},
        queries={"from dbtproof_no_such_lookup": [{"code": "a"}]},
    )
    assert out == [{"one": 1, "customer_id": 7}]
    # A query on an upstream the test did not give: give it, or give the query's result.
    with pytest.raises(MissingInputError) as excinfo:
        dbt.run_model("payment_pivot", given={})
    message = str(excinfo.value)
    assert "ref('stg_payments')" in message and "queries=" in message
    with pytest.raises(MissingInputError, match=r"reads this, .* with this=rows"):
        dbt.run_model("new_orders", given={ref("stg_orders"): []}, is_incremental=True)


def test_columns_of_a_given_input_are_the_columns_of_its_given_rows(dbt) -> None:
    # The warehouse has no such relation, and would answer no columns (dbt_utils.star
    # would render none): the columns are those of the relation the given rows make,
    # the upstream's known columns (payment_id too) typed as they are there.
    given = {ref("stg_payments"): PAYMENTS}
    out = dbt.run_model("payment_columns", given=given)
    assert out.columns == ("payment_id", "order_id", "payment_method", "amount")
    assert out == [{"payment_id": None, **row} for row in PAYMENTS]
    out = dbt.run_model("payments_star", given=given)
    assert out.columns == ("order_id", "payment_method", "amount") and out == PAYMENTS
    # Overriding the macro that asks still works.
    out = dbt.run_model("payment_columns", given=given, macros={"column_list": "order_id, amount"})
    assert out.columns == ("order_id", "amount")
    # An upstream the test did not give: give it.
    with pytest.raises(MissingInputError) as excinfo:
        dbt.run_model("payments_star", given={})
    message = str(excinfo.value)
    assert "the columns of ref('stg_payments')" in message and "given=" in message


def test_union_of_given_inputs_by_their_columns_and_types(dbt) -> None:
    # A union_relations-like macro reads each relation's Column objects: .column,
    # .data_type (every select is cast to them), is_string() and string_size().
    customers = [{"customer_id": 7, "first_name": "Ada", "signup_date": "2024-01-05"}]
    payments = [{"payment_id": 3, "order_id": 1, "payment_method": "card", "amount": 2.5}]
    given = {ref("stg_customers"): customers, ref("stg_payments"): payments}
    out = dbt.run_model("people_and_payments", given=given)
    assert out.columns == (
        "_source_relation", "customer_id", "first_name", "last_name", "email", "signup_date",
        "payment_id", "order_id", "payment_method", "amount",
    )  # fmt: skip
    rows = sorted(out, key=lambda row: row["_source_relation"])
    assert [row["_source_relation"] for row in rows] == [
        "__dbtproof__model__shop__stg_customers",
        "__dbtproof__model__shop__stg_payments",
    ]
    assert rows[0]["signup_date"] == date(2024, 1, 5) and rows[0]["amount"] is None
    assert rows[1]["payment_method"] == "card" and rows[1]["amount"] == Decimal("2.5")
    assert rows[1]["customer_id"] is None and rows[1]["signup_date"] is None
    # The empty-fixture sweep: no rows, every column.
    empty = dbt.run_model(
        "people_and_payments", given={ref("stg_customers"): [], ref("stg_payments"): []}
    )
    assert empty == [] and empty.columns == out.columns


def test_columns_of_a_model_whose_macros_ask_for_its_upstreams_columns(dbt) -> None:
    # Worked out as for any model (its SQL on empty relations of its upstreams), the star
    # and the union asking those relations: a model reading them knows every column.
    out = dbt.run_model("payments_star_all", given={ref("payments_star"): []})
    assert out.columns == ("order_id", "payment_method", "amount")
    rows = [{"_source_relation": "x", "signup_date": "2024-01-05", "amount": "2.5"}]
    out = dbt.run_model("people_and_payments_all", given={ref("people_and_payments"): rows})
    assert len(out.columns) == 10 and out.columns[-1] == "amount"
    assert out[0]["signup_date"] == date(2024, 1, 5) and out[0]["amount"] == Decimal("2.5")


def test_queries_keys_must_each_match_one_query(dbt) -> None:
    given = {ref("stg_payments"): PAYMENTS}
    with pytest.raises(QueryKeyError) as excinfo:
        dbt.run_model(
            "payment_pivot",
            given=given,
            queries={"select distinct payment_method": CARD_AND_COUPON, "select distinct stat": []},
        )
    message = str(excinfo.value)
    assert "'select distinct stat'" in message and "matched no query" in message
    assert "select distinct payment_method from __dbtproof__model__shop__stg_payments" in message
    assert "'select distinct payment_method'" not in message.partition("matched no query")[0]
    with pytest.raises(QueryKeyError, match=r"2 keys of queries= match one query"):
        dbt.run_model(
            "payment_pivot",
            given=given,
            queries={"select distinct": [], re.compile("payment_method"): []},
        )
    with pytest.raises(QueryKeyError, match="matched no query"):
        dbt.run_model("stg_payments", given={source("shop", "raw_payments"): []},
                      queries={"anything": []})  # fmt: skip
    with pytest.raises(QueryKeyError, match="a substring of the query's SQL or a compiled"):
        dbt.run_model("payment_pivot", given=given, queries={1: []})
    with pytest.raises(FixtureFormatError, match="queries"):
        dbt.run_model("payment_pivot", given=given, queries={"select distinct": [1]})


# -- bad input: one clear error each ---------------------------------------------------


def test_unknown_model_suggests_close_names(dbt) -> None:
    with pytest.raises(
        UnknownModelError, match=r"'customer' is not a model.*Did you mean: customers"
    ):
        dbt.run_model("customer", given={})
    with pytest.raises(UnknownModelError, match=r"'raw_orders' is a seed, not a model"):
        dbt.run_model("raw_orders", given={})


def test_given_key_the_model_does_not_reference(dbt) -> None:
    with pytest.raises(UnexpectedInputError) as excinfo:
        dbt.run_model("customers", given={ref("stg_payments"): [], "stg_customers": []})
    message = str(excinfo.value)
    assert "ref('stg_payments')" in message and "does not reference" in message
    assert "references: ref('stg_customers'), ref('orders')" in message
    with pytest.raises(UnexpectedInputError, match="not a node of the project"):
        dbt.run_model("customers", given={source("shop", "nope"): []})


def test_missing_upstream_lists_them(dbt) -> None:
    with pytest.raises(MissingInputError) as excinfo:
        dbt.run_model("customers", given={})
    assert "ref('stg_customers'), ref('orders')" in str(excinfo.value)
    with pytest.raises(MissingInputError, match=r"this \(pass this=rows"):
        dbt.run_model("fct_daily_revenue", given={"orders": []}, is_incremental=True)


def test_fixture_column_the_upstream_does_not_have(dbt) -> None:
    with pytest.raises(FixtureColumnError) as excinfo:
        dbt.run_model("customers", given={"stg_customers": [{"customer_idd": 1}], "orders": []})
    message = str(excinfo.value)
    assert "'customer_idd'" in message and "customer_id, first_name, last_name" in message


def test_unreadable_or_ragged_csv(dbt, tmp_path: Path) -> None:
    key = source("shop", "raw_payments")
    with pytest.raises(FixtureFormatError, match=r"line 3 has 1 field\(s\) but the header has 2"):
        dbt.run_model("stg_payments", given={key: "payment_id,amount\n1,2\n3\n"})
    with pytest.raises(FixtureFormatError, match="was not found"):
        dbt.run_model("stg_payments", given={key: "no_such_file.csv"})
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"payment_id\n\xff\xfe\n")
    with pytest.raises(FixtureFormatError, match="cannot read the CSV file"):
        dbt.run_model("stg_payments", given={key: bad})
    with pytest.raises(FixtureFormatError, match="is empty"):
        dbt.run_model("stg_payments", given={key: "\n"})
    with pytest.raises(FixtureFormatError, match="not a dict"):
        dbt.run_model("stg_payments", given={key: [1, 2]})


def test_value_that_cannot_be_cast(dbt) -> None:
    with pytest.raises(FixtureValueError) as excinfo:
        dbt.run_model(
            "stg_payments",
            given={source("shop", "raw_payments"): [{"payment_id": 1}, {"payment_id": "two"}]},
        )
    message = str(excinfo.value)
    assert "row 2, column 'payment_id': 'two' cannot be cast to" in message
    assert "source('shop', 'raw_payments')" in message
    # Values only the database can judge are narrowed down to the row after it refuses.
    with pytest.raises(FixtureValueError, match="row 2 cannot be typed"):
        dbt.run_model(
            "stg_orders",
            given={source("shop", "raw_orders"): [
                {"order_date": "2024-01-01"}, {"order_date": "2024-13-45"},
            ]},
        )  # fmt: skip


def test_macro_override_naming_no_macro(dbt) -> None:
    with pytest.raises(
        UnknownMacroError, match=r"'cents_to_dollar' \(did you mean cents_to_dollars"
    ):
        dbt.run_model(
            "stg_payments",
            given={source("shop", "raw_payments"): []},
            macros={"cents_to_dollar": "1"},
        )


def test_sql_errors_show_the_sql(dbt) -> None:
    with pytest.raises(ModelSQLError) as excinfo:
        dbt.run_model(
            "stg_payments",
            given={source("shop", "raw_payments"): []},
            macros={"cents_to_dollars": "no_such_column_xyz"},
        )
    message = str(excinfo.value)
    assert "no_such_column_xyz" in message and "--- SQL ---" in message
    # The session keeps working after a database error.
    assert len(dbt.run_model("stg_payments", given={source("shop", "raw_payments"): []})) == 0


def test_render_errors_and_apply_misuse(dbt) -> None:
    with pytest.raises(ModelRenderError, match="could not render"):
        dbt.run_model("int_order_payments", given={"stg_payments": []}, vars={"payment_methods": 5})
    with pytest.raises(ModelTestError, match="materialized as 'table'"):
        dbt.run_model("customers", given={}, this=[], apply=True)
    with pytest.raises(ModelTestError, match="apply=True needs this=rows"):
        dbt.run_model("fct_daily_revenue", given={"orders": []}, apply=True)
    assert issubclass(ModelTestError, DbtproofError)


# -- the speed-ups give what dbt gives ---------------------------------------------------


def _flat_macros(values: dict) -> dict:
    """A context dict's macros as comparable values: name -> macro id, or package -> {...}."""
    from dbt.clients.jinja import MacroGenerator

    flat = {}
    for key, value in values.items():
        if isinstance(value, MacroGenerator):
            flat[key] = value.macro.unique_id
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, MacroGenerator) for v in value.values())
        ):
            flat[key] = {k: v.macro.unique_id for k, v in value.items()}
    return flat


def _namespace_shape(namespace) -> tuple:
    def ids(space: dict) -> dict:
        return {name: generator.macro.unique_id for name, generator in space.items()}

    return (
        ids(namespace.global_namespace),
        ids(namespace.local_namespace),
        ids(namespace.global_project_namespace),
        {package: ids(space) for package, space in namespace.packages.items()},
    )


def test_cached_macro_namespace_is_the_one_dbt_builds(dbt) -> None:
    import dataclasses

    from dbt.clients.jinja import MacroGenerator
    from dbt.context.providers import ModelContext, RuntimeProvider

    from dbtproof import _dbt_compat as compat

    caches = compat.RenderCaches()  # nothing cached yet
    manifest, config = dbt.manifest, dbt.runtime_config
    customers = manifest.nodes["model.shop.customers"]
    greetings = manifest.nodes["model.shop.greetings"]
    # A node of another package: its own package's macros are its local namespace.
    in_package = dataclasses.replace(greetings, package_name="tools")
    cached = caches.namespaces.context_class()
    if compat.lazy_macro_namespace():
        # dbt-core 1.12: dbt's namespace is lazy itself, nothing is cloned; the template
        # names what the namespace puts in the context, read from the manifest alone.
        assert cached is ModelContext
        for node in (customers, greetings, in_package):
            theirs = ModelContext(node, config, manifest, RuntimeProvider(), None)
            template = caches.namespaces.template(manifest, config, node.package_name)
            assert template.keys == set(theirs.namespace), node.package_name
        assert "tool_value" in caches.namespaces.template(manifest, config, "tools").keys
        return
    assert cached is not ModelContext, "the cached namespace is used on this dbt version"
    for node in (customers, greetings, in_package, customers, in_package):
        theirs = ModelContext(node, config, manifest, RuntimeProvider(), None)
        ours = cached(node, config, manifest, RuntimeProvider(), None)
        their_dict, our_dict = theirs.to_dict(), ours.to_dict()
        assert set(our_dict) == set(their_dict)
        assert _flat_macros(our_dict) == _flat_macros(their_dict)
        assert _namespace_shape(ours.namespace) == _namespace_shape(theirs.namespace)
        # Every macro is bound to this context's dict, node and macro stack, and the
        # package entries of the dict are the namespace's own dicts.
        generators = [v for v in our_dict.values() if isinstance(v, MacroGenerator)]
        assert len(generators) > 100
        for generator in generators:
            assert generator.context is our_dict
            assert generator.node is node
            assert generator.stack is ours.macro_stack
        assert our_dict["tools"] is ours.namespace.packages["tools"]
        assert our_dict["dbt"] is ours.namespace.global_project_namespace
    assert (
        "tool_value"
        in _namespace_shape(
            cached(in_package, config, manifest, RuntimeProvider(), None).namespace
        )[1]
    )
    keys = set(caches.namespaces.of_manifest(manifest))
    assert {key[1] for key in keys} == {"shop", "tools"}, "one template per package"
    # The templates are the caches' own: other caches have none.
    assert compat.RenderCaches().namespaces.of_manifest(manifest) == {}
    # A new manifest (a new parse) starts anew.
    assert caches.namespaces.of_manifest(dataclasses.replace(manifest)) == {}


def test_inputs_resolve_to_their_fixture_ctes_or_markers(dbt) -> None:
    # What ref/source/this render as, without dbt's context or a render.
    from dbtproof import _dbt_compat as compat
    from dbtproof.engine.render import InputResolver, RenderSpec, code_only, cte_name

    manifest, config = dbt.manifest, dbt.runtime_config
    node = manifest.nodes["model.shop.customers"]
    given = manifest.nodes["model.shop.stg_customers"]
    spec = RenderSpec(node, {given.unique_id: cte_name(given)}, is_incremental=True)
    relations = compat.CteRelations()
    inputs = InputResolver(spec, config.project_name, manifest, dbt.adapter(), relations)
    assert str(inputs.this()) == "__dbtproof_missing_this__"
    relation = inputs.ref("stg_customers")
    assert str(relation) == cte_name(given) and not relation.is_cte  # a table to macros
    assert inputs.ref("stg_customers") is relation  # made once
    marker = str(inputs.ref("orders"))
    assert marker == "__dbtproof_missing_1__"
    assert set(inputs.stand_ins) == {"__dbtproof_missing_this__", cte_name(given), marker}
    # A marker in a comment is no read; the given input is.
    code = code_only(f"select * from {cte_name(given)} -- {marker}\n")
    assert inputs.used(code) == [given.unique_id]
    inputs.check_given(code)
    with pytest.raises(MissingInputError, match=r"this \(pass this=rows.*ref\('orders'\)"):
        inputs.check_given(code_only(f"select * from {marker}, __dbtproof_missing_this__"))
    with pytest.raises(ModelRenderError, match="not an enabled node"):
        inputs.ref("no_such_model")
    with pytest.raises(ModelRenderError, match="not a source"):
        inputs.source("shop", "no_such_table")


def test_each_context_is_its_own(dbt) -> None:
    # Overrides in one render never reach the next: each context has its own macros.
    from dbtproof import _dbt_compat as compat

    manifest, config = dbt.manifest, dbt.runtime_config
    node = manifest.nodes["model.shop.greetings"]
    caches = compat.RenderCaches()
    first = compat.RenderContext(node, config, manifest, caches)
    assert first.override_macro("greeting", lambda: "'overridden'")
    second = compat.RenderContext(node, config, manifest, caches)
    assert str(second.call_macro("loud_greeting")).strip() == "upper('hello')"
    assert str(first.call_macro("loud_greeting")).strip() == "upper('overridden')"
    first.close()
    assert first.values == {}
    assert str(second.call_macro("loud_greeting")).strip() == "upper('hello')"
    out = dbt.run_model(
        "greetings", given={ref("stg_customers"): [{"customer_id": 1}]}, macros={"greeting": "'hi'"}
    )
    assert out == [{"greeting": "HI", "customer_id": 1}]
    out = dbt.run_model("greetings", given={ref("stg_customers"): [{"customer_id": 1}]})
    assert out == [{"greeting": "HELLO", "customer_id": 1}]


EXPRESSION_ONLY = [
    "select * from {{ ref('stg_orders') }}\n",
    "select * from {{ ref('stg_orders') }}",
    "select * from {{ ref('stg_orders') }}\n\n",
    "{{ config(materialized='table', tags=['a', \"b\"]) }}\nselect 1 as x from {{ this }}",
    "select {{ var('missing', 3) }} as v, '{{ env_var('NOPE', 'x') | upper }}' as e",
    "select {{ undefined_name }} as nothing, {{ 1 + 2 }} as three, '}' as brace",
    "select * from {{ ref(\n  'stg_orders'\n) }} -- a comment with % and #\n",
    "select {{ -1 }} as minus, {{ 'a' ~ 'b' }} as ab",
]
NOT_EXPRESSION_ONLY = [
    "select 1",  # no Jinja: dbt returns it as is
    "{% if true %}select 1{% endif %}",
    "{# comment #}select 1 from {{ ref('stg_orders') }}",
    "select {{- ' x' -}} as x",
    "select {{ ' x' -}} as x",
    "select {{ {'a': 1}['a'] }} as x",
    "select '{{ \"}}\" }}' as x",
    "select {{ ref('stg_orders') }}\r\nfrom x",
    "select 1 %} {{ 2 }}",
    "select {{ 1 + }} as broken",
]


def test_expression_only_models_render_as_dbt_renders_them(dbt) -> None:
    from dbt.clients.jinja import get_rendered

    from dbtproof import _dbt_compat as compat

    node = dbt.manifest.nodes["model.shop.customers"]
    caches = compat.RenderCaches()
    context = compat.RenderContext(node, dbt.runtime_config, dbt.manifest, caches)
    context.values["ref"] = lambda name: f"<{name}>"

    def fast_render(text: str):
        """*text* rendered one expression at a time, or None when it has more Jinja."""
        plan = caches.expressions.plan(text)
        return None if plan is None else caches.expressions.render(plan, context.values, node)

    def dbt_render(text: str):
        try:
            return str(get_rendered(text, context.values, node))
        except Exception as exc:  # noqa: BLE001
            return type(exc), str(exc)

    for text in EXPRESSION_ONLY:
        fast = fast_render(text)
        assert fast is not None, text
        assert fast == dbt_render(text), text
        assert context.render(text) == fast
    for text in NOT_EXPRESSION_ONLY:
        assert fast_render(text) is None, text
        if not isinstance(dbt_render(text), tuple):
            assert context.render(text) == dbt_render(text), text
    # Errors are dbt's errors, raised as dbt raises them.
    for text in ("select {{ nothing.attribute }}", "select {{ ref('a', 'b', 'c') }}"):
        expected = dbt_render(text)
        assert isinstance(expected, tuple), text
        with pytest.raises(expected[0]) as raised:
            fast_render(text)
        assert str(raised.value) == expected[1]


def test_models_render_the_same_with_and_without_dbt_context(dbt, monkeypatch) -> None:
    # A model whose Jinja is only {{ ref/source/config }} expressions renders without
    # dbt's context; every model renders as it does in dbt's full context.
    from dbtproof import _dbt_compat as compat
    from dbtproof.engine.render import RenderSpec, cte_name, render
    from dbtproof.project.nodes import resource_type

    manifest, config = dbt.manifest, dbt.runtime_config
    adapter = dbt.adapter()
    caches = compat.RenderCaches()
    # The project's namespace template, which dbt's `config` outside its context needs.
    compat.RenderContext(manifest.nodes["model.shop.customers"], config, manifest, caches)
    built: list[str] = []
    build = compat.RenderContext._build

    def counting_build(self):
        built.append(self.node.name)
        return build(self)

    monkeypatch.setattr(compat.RenderContext, "_build", counting_build)
    # Introspective models query their inputs while they render: run_model's business.
    models = [
        n
        for n in manifest.nodes.values()
        if resource_type(n) == "model" and "introspective" not in n.original_file_path
    ]
    lazy_models = set()
    for node in models:
        inputs = {
            uid: cte_name(manifest.nodes.get(uid) or manifest.sources[uid])
            for uid in node.depends_on.nodes
        }
        for is_incremental in (False, True):
            spec = RenderSpec(
                node, inputs, this="__this", is_incremental=is_incremental, require_inputs=False
            )
            built.clear()
            lazy = render(spec, config, manifest, adapter, caches)
            if not built:
                lazy_models.add(node.name)
            full = render(spec, config, manifest, adapter, caches, keep_context=True)
            assert built[-1] == node.name
            assert lazy.sql == full.sql, node.name
    assert {"stg_customers", "stg_orders", "customers"} <= lazy_models
    assert "greetings" not in lazy_models and "order_log" not in lazy_models


def test_a_macro_named_config_needs_dbt_context(dbt) -> None:
    from dbtproof import _dbt_compat as compat

    manifest, config = dbt.manifest, dbt.runtime_config
    node = manifest.nodes["model.shop.customers"]
    caches = compat.RenderCaches()
    compat.RenderContext(node, config, manifest, caches)  # the package's namespace template
    text = "{{ config(materialized='view') }}select 1 as x"
    context = compat.RenderContext(node, config, manifest, caches, lazy=True)
    assert context.render(text) == "select 1 as x"
    assert context._values is None, "rendered without dbt's context"
    template = caches.namespaces.template(manifest, config, node.package_name)
    template.keys = template.keys | {"config"}  # as if the project had a `config` macro
    try:
        context = compat.RenderContext(node, config, manifest, caches, lazy=True)
        assert context.render(text) == "select 1 as x"
        assert context._values is not None, "dbt's context, where the macro would be"
    finally:
        template.keys = template.keys - {"config"}
    # A name that was not given, or a macro replaced later, needs dbt's context too.
    for text, later in (("select {{ var('x', 1) }}", None), ("{{ is_incremental() }}", True)):
        context = compat.RenderContext(node, config, manifest, caches, lazy=True)
        context.set_value("ref", lambda name: name)
        if later is not None:
            context.override_macro_later("is_incremental", lambda later=later: later)
        assert context.render(text) in ("select 1", "True")
        assert context._values is not None


# -- several sessions in one process ---------------------------------------------------


def test_a_session_keeps_its_own_adapter_after_another_came_and_went(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """dbt keeps one adapter per type for the whole process: a session started and torn
    down in between must not leave the first session talking to its (deleted) database."""
    first_project = make_project(tmp_path_factory.mktemp("first"))
    second_project = make_project(tmp_path_factory.mktemp("second"))
    with engine_session(request, tmp_path_factory, first_project, "duckdb") as first:
        with engine_session(request, tmp_path_factory, second_project, "duckdb") as second:
            second.query("create table only_in_second as select 1 as x")
        assert first.adapter().config.credentials.path == str(first.database_file)
        tables = first.query(
            "select table_name from information_schema.tables where table_name = 'only_in_second'"
        )
        assert tables == []
        assert first.query("select 41 + 1 as answer") == [{"answer": 42}]
