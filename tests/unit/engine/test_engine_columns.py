"""``run_model`` verdicts on upstreams nobody fully describes, and fixture data that stays data.

Most projects declare in YAML only the columns they test, and their sources have no
table where tests run. These tests run models whose upstreams are: a source with
nothing declared and no table, a partly declared source, a source whose table exists,
a model whose name clashes with a source's CTE name, and same-named models of two
packages — each on DuckDB and on PostgreSQL. They also feed SQL-looking names and
values (quotes, backslashes, keywords, unicode) and check they come back as data and
nothing else ran.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import database_acl_turn, engine_session, superuser_connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine import make_project

from dbtproof import ref, source
from dbtproof.errors import FixtureColumnError, FixtureValueError

LAKE_FILES = {
    "models/lake/lake.yml": """
        version: 2
        sources:
          - name: lake
            schema: "{{ target.schema }}"
            tables:
              - name: trips          # nothing declared, and no table
              - name: fares          # partly declared (the columns a test needs)
                columns:
                  - {name: fare_id, data_type: integer, data_tests: [not_null]}
                  - {name: paid_at, data_type: timestamp}
              - name: zones          # its table exists (the test creates it)
          - name: collide
            schema: "{{ target.schema }}"
            tables:
              - name: raw_orders
    """,
    "models/lake/trip_stats.sql": """
        select trip_id, date_trunc('day', started_at) as trip_day,
            distance_km * 1000 as meters, fare / 100 as fare_units, lower(city) as city
        from {{ source('lake', 'trips') }}
        where is_valid
    """,
    "models/lake/trip_years.sql": """
        select trip_id, date_part('year', started_at) as trip_year,
            date_part('month', ended_at) as end_month
        from {{ source('lake', 'trips') }}
    """,
    "models/lake/trip_star.sql": """
        select {{ star_of(source('lake', 'trips')) }} from {{ source('lake', 'trips') }}
    """,
    "models/lake/zone_columns.sql": """
        {%- set zones = api.Relation.create(database=target.database, schema=target.schema,
                                            identifier='zones') %}
        select '{{ column_list(zones) }}' as zone_columns, trip_id
        from {{ source('lake', 'trips') }}
    """,
    "models/lake/trip_days.sql": """
        select trip_day, count(*) as trips, sum(meters) as meters
        from {{ ref('trip_stats') }}
        group by trip_day
    """,
    "models/lake/trip_log.sql": """
        {{ config(materialized='incremental', unique_key='trip_id') }}
        select f.fare_id as trip_id, f.paid_at as started_at, f.amount as fare
        from {{ source('lake', 'fares') }} as f
        {% if is_incremental() %}
        where f.paid_at > (select max(started_at) from {{ this }})
        {% endif %}
    """,
    "models/lake/zone_report.sql": """
        select zone_id, upper(zone_name) as zone_name, area * 2 as double_area
        from {{ source('lake', 'zones') }}
    """,
    "models/lake/passthrough.sql": "select * from {{ source('lake', 'trips') }}\n",
    "models/lake/collide__raw_orders.sql": "select 2 as order_id\n",
    "models/lake/collision.sql": """
        select 'source' as origin, order_id from {{ source('collide', 'raw_orders') }}
        union all
        select 'model' as origin, order_id from {{ ref('collide__raw_orders') }}
    """,
    "models/lake/dim_zone.sql": "select 'root' as owner, 1 as zone_id\n",
    "dbt_packages/tools/models/dim_zone.sql": (
        "{{ config(schema='tools') }}\nselect 'package' as owner, 1 as zone_id\n"
    ),
    # An enforced contract written with dbt's type aliases (`string`): dbt translates each
    # through the adapter's Column.translate_type (`text` on PostgreSQL).
    "models/lake/contracted.sql": "select 1 as id, 'a' as label",
    "models/lake/contracted.yml": """
        models:
          - name: contracted
            config: {contract: {enforced: true}}
            columns:
              - {name: id, data_type: integer}
              - {name: label, data_type: string}
    """,
    "models/lake/reads_contracted.sql": "select * from {{ ref('contracted') }}",
    "models/lake/zone_owners.sql": """
        select owner from {{ ref('dim_zone') }}
        union all
        select owner from {{ ref('tools', 'dim_zone') }}
    """,
}


def lake_project(destination: Path) -> Path:
    """The engine tests' project plus the models above."""
    make_project(destination)
    for name, text in LAKE_FILES.items():
        path = destination / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return destination


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def dbt(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A started dbt session on the lake project, one per target."""
    project = lake_project(tmp_path_factory.mktemp(f"lake_{request.param}"))
    with engine_session(request, tmp_path_factory, project, request.param) as session:
        yield session


def relation_count(dbt) -> int:
    """How many tables and views the connection can see, in every schema.

    On the shared PostgreSQL server, what concurrent runs of the suite's role hold (their
    namespaces, their sessions' temporary tables) comes and goes: it is left out.
    """
    sql = "select count(*) as n from information_schema.tables"
    if dbt.adapter_type == "postgres":
        sql += (
            " where table_schema like '" + dbt.schema + "%'"
            " or table_schema = (select nspname from pg_namespace where oid = pg_my_temp_schema())"
            " or (table_schema not like 'pg\\_temp\\_%'"
            " and table_schema !~ '^(t[a-z0-9]{5}_|dbtproof_[0-9]{12}_)')"
        )
    return dbt.query(sql)[0]["n"]


# -- upstreams nobody fully describes --------------------------------------------------


def test_a_contracts_type_aliases_are_translated_as_dbt_translates_them(dbt) -> None:
    out = dbt.run_model("reads_contracted", given={ref("contracted"): [{"id": 1}]})
    assert out == [{"id": 1, "label": None}]


def test_undeclared_source_without_a_table_runs_on_empty_fixtures(dbt) -> None:
    out = dbt.run_model("trip_stats", given={source("lake", "trips"): []})
    assert out == []
    assert out.columns == ("trip_id", "trip_day", "meters", "fare_units", "city")


def test_undeclared_source_typed_by_how_the_model_uses_each_column(dbt) -> None:
    # started_at goes through date_trunc (a timestamp), distance_km and fare through
    # arithmetic, is_valid is a condition: the ISO string and the numbers get those types.
    trips = [
        {"trip_id": 1, "started_at": "2024-03-01 10:30:00", "distance_km": 2.5,
         "fare": 1200, "city": "Oslo", "is_valid": True},
        {"trip_id": 2, "started_at": "2024-03-02 08:00:00", "distance_km": 1,
         "fare": 300, "city": "Bergen", "is_valid": False},
    ]  # fmt: skip
    out = dbt.run_model("trip_stats", given={source("lake", "trips"): trips})
    assert out == [
        {"trip_id": 1, "trip_day": datetime(2024, 3, 1), "meters": 2500, "fare_units": 12,
         "city": "oslo"},
    ]  # fmt: skip


def test_date_part_types_its_column_argument_as_a_timestamp(dbt) -> None:
    # date_part('year', started_at) is the only use of started_at: without a type from
    # the function, the ISO strings stay strings (or an empty fixture's column untyped)
    # and the database cannot choose a date_part.
    trips = [
        {"trip_id": 1, "started_at": "2024-03-01 10:30:00", "ended_at": "2024-04-01"},
        {"trip_id": 2, "started_at": "2023-12-31 23:00:00", "ended_at": None},
    ]
    out = dbt.run_model("trip_years", given={source("lake", "trips"): trips})
    assert out == [
        {"trip_id": 1, "trip_year": 2024, "end_month": 4},
        {"trip_id": 2, "trip_year": 2023, "end_month": None},
    ]
    assert dbt.run_model("trip_years", given={source("lake", "trips"): []}) == []


def test_columns_asked_of_an_undeclared_source_are_those_given_each_time(dbt) -> None:
    # Nothing knows the source's columns: a star over it has the given rows' columns, and
    # a second call with other columns is rendered again (not served the first render).
    trips = source("lake", "trips")
    out = dbt.run_model("trip_star", given={trips: [{"trip_id": 1}]})
    assert out.columns == ("trip_id",) and out == [{"trip_id": 1}]
    out = dbt.run_model("trip_star", given={trips: [{"trip_id": 2, "city": "Oslo"}]})
    assert out.columns == ("trip_id", "city") and out == [{"trip_id": 2, "city": "Oslo"}]


def test_model_downstream_of_an_undeclared_source(dbt) -> None:
    out = dbt.run_model("trip_days", given={ref("trip_stats"): []})
    assert out == []
    rows = [{"trip_day": "2024-03-01 00:00:00", "meters": 10}, {"trip_day": "2024-03-01"}]
    assert dbt.run_model("trip_days", given={ref("trip_stats"): rows}) == [
        {"trip_day": datetime(2024, 3, 1), "trips": 2, "meters": 10}
    ]


def test_partly_declared_source(dbt) -> None:
    # Only fare_id and paid_at are declared; amount is what the SQL reads besides.
    assert dbt.run_model("trip_log", given={source("lake", "fares"): []}) == []
    out = dbt.run_model(
        "trip_log", given={source("lake", "fares"): [{"fare_id": "3", "amount": 4}]}
    )
    assert out == [{"trip_id": 3, "started_at": None, "fare": 4}]


def test_source_with_a_table_is_typed_as_the_warehouse_says(dbt) -> None:
    table = dbt.relation("lake.zones")
    dbt.execute(f'create schema if not exists "{dbt.schema}"')
    dbt.execute(
        f"create table {table} (zone_id integer, zone_name varchar(20), area numeric(10, 2))"
    )
    try:
        out = dbt.run_model(
            "zone_report",
            given={source("lake", "zones"): [{"zone_id": "7", "zone_name": "n", "area": "1.25"}]},
        )
        assert out == [{"zone_id": 7, "zone_name": "N", "double_area": Decimal("2.50")}]
        assert isinstance(out[0]["zone_id"], int)
        assert dbt.run_model("zone_report", given={source("lake", "zones"): []}) == []
    finally:
        dbt.execute(f"drop table {table}")


def test_columns_of_a_relation_that_is_no_input_are_asked_of_the_warehouse(dbt) -> None:
    # Only a given input's columns come from its fixture: a table of the namespace that
    # the model reads by name is described by the warehouse, as in a run.
    table = dbt.relation("lake.zones")
    dbt.execute(f'create schema if not exists "{dbt.schema}"')
    dbt.execute(f"create table {table} (zone_id integer, zone_name varchar(20))")
    try:
        out = dbt.run_model("zone_columns", given={source("lake", "trips"): [{"trip_id": 1}]})
        assert out == [{"zone_columns": "zone_id, zone_name", "trip_id": 1}]
    finally:
        dbt.execute(f"drop table {table}")


def test_this_has_the_models_types_whatever_its_rows_spell(dbt) -> None:
    fares = [
        {"fare_id": 2, "paid_at": "2024-03-02 09:00:00", "amount": 12.5},
        {"fare_id": 3, "paid_at": "2024-02-01 09:00:00", "amount": 1.0},
    ]
    # `this` gives started_at as an ISO string and leaves fare out: it is still a timestamp.
    out = dbt.run_model(
        "trip_log",
        given={source("lake", "fares"): fares},
        is_incremental=True,
        this=[{"trip_id": 1, "started_at": "2024-03-01 10:00:00"}],
    )
    assert out == [{"trip_id": 2, "started_at": datetime(2024, 3, 2, 9), "fare": 12.5}]


def test_apply_with_a_wider_value_than_this_holds(dbt) -> None:
    fares = [{"fare_id": 2, "paid_at": "2024-03-02 09:00:00", "amount": Decimal("20.25")}]
    after = dbt.run_model(
        "trip_log",
        given={source("lake", "fares"): fares},
        this=[{"trip_id": 1, "started_at": "2024-03-01 10:00:00", "fare": Decimal("2.0")}],
        apply=True,
    )
    assert after == [
        {"trip_id": 1, "started_at": datetime(2024, 3, 1, 10), "fare": Decimal("2.0")},
        {"trip_id": 2, "started_at": datetime(2024, 3, 2, 9), "fare": Decimal("20.25")},
    ]


def test_a_source_and_a_model_with_the_same_cte_name_stay_apart(dbt) -> None:
    out = dbt.run_model(
        "collision",
        given={source("collide", "raw_orders"): [{"order_id": 1}], "collide__raw_orders": []},
    )
    assert out == [{"origin": "source", "order_id": 1}]


def test_same_named_models_of_two_packages_stay_apart(dbt) -> None:
    out = dbt.run_model(
        "zone_owners",
        given={
            ref("dim_zone"): [{"owner": "root"}],
            ref("dim_zone", package="tools"): [{"owner": "tools"}, {"owner": "tools"}],
        },
    )
    assert out == [{"owner": "root"}, {"owner": "tools"}, {"owner": "tools"}]


# -- fixture data is never code --------------------------------------------------------

HOSTILE_VALUES = [
    "'); drop table injected; --",
    "\\'; create table injected (x int); --",
    "back\\slash\\",
    'double "quotes"',
    "line\nbreak",
    "ünïcødé ✓",
    "$$ dollar $$",
]
HOSTILE_NAMES = [
    'a", (select 1) as "b',
    "with space",
    "select",
    "ünï",
    "x'); drop table injected; --",
    "back\\slash",
]


def test_sql_looking_names_and_values_stay_data(dbt) -> None:
    before = relation_count(dbt)
    rows = [dict(zip(HOSTILE_NAMES, [value] * len(HOSTILE_NAMES), strict=True))
            for value in HOSTILE_VALUES]  # fmt: skip
    out = dbt.run_model("passthrough", given={source("lake", "trips"): rows})
    assert out.columns == tuple(HOSTILE_NAMES)
    assert out == rows
    header = '"id","a"", (select 1) as ""b"\n1,"\'); drop table injected; --"\n'
    out = dbt.run_model("passthrough", given={source("lake", "trips"): header})
    assert out.columns == ("id", 'a", (select 1) as "b')
    assert out == [{"id": 1, 'a", (select 1) as "b': "'); drop table injected; --"}]
    assert relation_count(dbt) == before


def test_names_and_values_that_cannot_be_written_are_refused(dbt) -> None:
    with pytest.raises(FixtureValueError, match=r"row 1, column 'a'.*NUL"):
        dbt.run_model("passthrough", given={source("lake", "trips"): [{"a": "x\x00y"}]})
    with pytest.raises(FixtureColumnError, match="NUL"):
        dbt.run_model("passthrough", given={source("lake", "trips"): [{"a\x00": 1}]})
    with pytest.raises(FixtureColumnError, match="'A' and 'a'"):
        dbt.run_model("passthrough", given={source("lake", "trips"): [{"A": 1, "a": 2}]})
    long_name = "n" * 64
    if dbt.adapter_type == "postgres":
        with pytest.raises(FixtureColumnError, match="64 bytes long"):
            dbt.run_model("passthrough", given={source("lake", "trips"): [{long_name: 1}]})
    else:
        out = dbt.run_model("passthrough", given={source("lake", "trips"): [{long_name: 1}]})
        assert out == [{long_name: 1}]


_NAME_CHARS = st.sampled_from(list("abcXYZ_ 0'\"\\;-)(,.ü✓$\n") + ["select", "from", "\x00"])
_NAMES = st.lists(_NAME_CHARS, min_size=1, max_size=8).map("".join) | st.sampled_from(
    ["select", "Order", "o" * 70, "", "a" * 63]
)
_TEXT = st.lists(
    st.sampled_from(list("ab'\"\\;-() \n\tü✓$%\x00") + ["drop table t"]), max_size=8
).map("".join)
_COLUMN_VALUES = st.sampled_from(["text", "int", "float", "decimal", "bool"]).flatmap(
    lambda kind: st.lists(
        st.none()
        | {
            "text": _TEXT,
            "int": st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1),
            "float": st.floats(allow_nan=False, allow_infinity=False, width=64),
            "decimal": st.decimals(places=3, min_value=-(10**20), max_value=10**20),
            "bool": st.booleans(),
        }[kind],
        min_size=1,
        max_size=3,
    )
)


def _fold(name: str) -> str:
    import re

    return name.lower() if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else name


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(columns=st.dictionaries(_NAMES, _COLUMN_VALUES, min_size=1, max_size=4))
def test_any_name_and_value_is_data_or_a_clear_error(dbt, columns) -> None:
    depth = max(len(values) for values in columns.values())
    rows = [{name: (vs[i] if i < len(vs) else None) for name, vs in columns.items()}
            for i in range(depth)]  # fmt: skip
    before = relation_count(dbt)
    try:
        out = dbt.run_model("passthrough", given={source("lake", "trips"): rows})
    except (FixtureColumnError, FixtureValueError) as exc:
        text = str(exc)
        names = list(columns)
        folded = [_fold(n) for n in names]
        limit = 63 if dbt.adapter_type == "postgres" else None
        assert (
            "NUL" in text
            and any("\x00" in n or any("\x00" in str(v) for v in columns[n]) for n in names)
            or "empty" in text
            and "" in names
            or len(set(folded)) < len(folded)
            or limit is not None
            and any(len(n.encode()) > limit for n in names)
        ), text
    else:
        assert out.columns == tuple(_fold(n) for n in columns)
        expected = [{_fold(k): v for k, v in row.items()} for row in rows]
        assert out.ordered == expected or out == expected
    assert relation_count(dbt) == before


NOSCS_TEST = """
from dbtproof import source

HOSTILE_VALUES = {values!r}


def count(dbt):
    # The run's own schemas and this session's temporary tables (other runs on the shared
    # server create and drop theirs meanwhile).
    return dbt.query(
        "select count(*) as n from information_schema.tables"
        f" where starts_with(table_schema, '{{dbt.schema}}')"
        " or table_type = 'LOCAL TEMPORARY'"
    )[0]["n"]


def test_backslashes_stay_data(dbt):
    assert dbt.query("show standard_conforming_strings")[0] == {{
        "standard_conforming_strings": "off"
    }}
    before = count(dbt)
    rows = [{{"v": value}} for value in HOSTILE_VALUES]
    out = dbt.run_model("passthrough", given={{source("lake", "trips"): rows}})
    assert out == rows
    assert count(dbt) == before
"""


def test_backslashes_stay_data_where_the_server_treats_them_as_escapes(
    pytester: pytest.Pytester, shop_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A role whose sessions run with standard_conforming_strings = off: there '\\' escapes.
    # (A subprocess: dbt keeps one adapter per type in a process, so one role per process.)
    role = "dbtproof_ci_noscs"
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute("select 1 from pg_roles where rolname = %s", (role,))
        if cursor.fetchone() is None:
            cursor.execute(f"create role {role} login password 'noscs'")
        with database_acl_turn(cursor):
            cursor.execute(f"grant create, temporary on database test to {role}")
        cursor.execute(f"alter role {role} set standard_conforming_strings = off")
    ini = (pytester.path / "pytest.ini").read_text()
    lake_project(pytester.path)
    (pytester.path / "pytest.ini").write_text(ini)
    monkeypatch.setenv("SHOP_PG_USER", role)
    monkeypatch.setenv("SHOP_PG_PASSWORD", "noscs")
    (pytester.path / "pytests" / "test_noscs.py").write_text(
        NOSCS_TEST.format(values=HOSTILE_VALUES)
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-dbt-tests")
    result.assert_outcomes(passed=1)


# -- exact comparison ------------------------------------------------------------------


def test_numbers_from_the_warehouse_compare_exactly_unless_asked(dbt) -> None:
    given = {source("lake", "trips"): [{"money": Decimal("1234567890123.45"), "ratio": 0.1 + 0.2}]}
    out = dbt.run_model("passthrough", given=given)
    assert out == [{"money": Decimal("1234567890123.45"), "ratio": 0.3}]  # a float: 1e-12
    assert out != [{"money": Decimal("1234567890123.46"), "ratio": 0.3}]
    assert out != [{"money": Decimal("1234567890123.45"), "ratio": 0.3000001}]
    near = dbt.run_model("passthrough", given=given, approx={"ratio": {"rel": 1e-3}})
    assert near == [{"money": Decimal("1234567890123.45"), "ratio": 0.3001}]
    assert near != [{"money": Decimal("1234567890123.46"), "ratio": 0.3001}]  # money exact
    loose = dbt.run_model("passthrough", given=given, approx={"abs": 0.02}, ordered=True)
    assert loose == [{"money": Decimal("1234567890123.46"), "ratio": 0.31}]


def test_names_are_folded_and_quoted_as_the_warehouse_folds_unquoted_names() -> None:
    from dbtproof.engine.inputs import Dialect

    def dialect(fold: str, quote_char: str = '"') -> Dialect:
        return Dialect(
            cast=lambda v, t: f"cast({v} as {t})",
            quote=lambda n: f"{quote_char}{n}{quote_char}",
            quote_char=quote_char,
            fold=fold,
        )

    snowflake, postgres, bigquery = dialect("upper"), dialect("lower"), dialect("", "`")
    # A name a person typed (a fixture key) means what the model means writing it unquoted.
    assert snowflake.identifier("order_Id", exact=False) == '"ORDER_ID"'
    assert postgres.identifier("order_Id", exact=False) == '"order_id"'
    assert bigquery.identifier("order_Id", exact=False) == "`order_Id`"
    # A name the warehouse reported, or one that is not plain, is kept as it is.
    assert snowflake.identifier("order_Id") == '"order_Id"'
    assert snowflake.identifier("with space", exact=False) == '"with space"'
    assert postgres.identifier('a"b', exact=False) == '"a""b"'
    assert bigquery.name_problem("a`b") is not None
    assert postgres.string("it's \\ here") == "'it''s \\ here'"
    assert dialect("lower").name_problem("") == "it is empty"


def _sql_dialect(**overrides: object) -> object:
    from dbtproof.engine.inputs import Dialect

    settings_ = {"cast": lambda v, t: f"cast({v} as {t})", "quote": lambda n: f'"{n}"'}
    settings_.update(overrides)
    return Dialect(**settings_)  # type: ignore[arg-type]


def test_string_literals_are_escaped_as_each_warehouse_reads_them() -> None:
    hostile = "x\\'); select 1 --"
    # Where a backslash escapes (Snowflake, Spark, Redshift, PostgreSQL with
    # standard_conforming_strings=off) it is doubled; BigQuery escapes the quote with it.
    assert _sql_dialect().string(hostile) == "'x\\''); select 1 --'"
    assert _sql_dialect(backslash_escapes=True).string(hostile) == "'x\\\\''); select 1 --'"
    bigquery = _sql_dialect(backslash_escapes=True, quote_escape="\\'", quote_char="`")
    assert bigquery.string(hostile) == "'x\\\\\\'); select 1 --'"
    assert bigquery.name_problem("a\\") is not None


def test_odd_python_values_are_written_as_data() -> None:
    import numpy as np

    from dbtproof.engine.inputs import Column, Schema, fixture_sql
    from dbtproof.engine.reading import load_fixture

    dialect = _sql_dialect()
    open_schema = Schema([], complete=False)
    rows = load_fixture([{"f": np.float64(1.5), "i": np.int64(7), "b": np.bool_(True)}], "x")
    sql = fixture_sql(rows, open_schema, dialect, "x")
    assert "np." not in sql and "(1.5, 7, true)" in sql
    with pytest.raises(FixtureValueError, match="sNaN"):
        typed = Schema([Column("n", "numeric")], complete=True)
        fixture_sql(load_fixture([{"n": Decimal("sNaN")}], "x"), typed, dialect, "x")
    blank = load_fixture("a,b\n1.5,x\n  ,y\n", "x")
    assert blank.rows[1]["a"] is None
    known = Schema([Column("a", "integer")], complete=True)
    assert "values ()" not in fixture_sql(load_fixture([{}, {}], "x"), known, dialect, "x")
    # A use as a date never cuts the time off a given timestamp, nor a zone off an aware one.
    hinted = Schema([Column("t", None, hint="date")], complete=False)
    sql = fixture_sql(load_fixture([{"t": "2024-01-01 10:30:00"}], "x"), hinted, dialect, "x")
    assert "as date" not in sql
    # A value that spells the cast template's own marker stays a value.
    from dbtproof.engine.dialect import _T

    assert _T in fixture_sql(load_fixture([{"v": _T}], "x"), open_schema, dialect, "x")
