"""Real projects run unchanged: what they write is moved into the run's namespace.

The example project is rewritten the way dbt-labs/jaffle-shop is laid out: a
``generate_schema_name`` that uses custom schemas as they are, seeds loaded into a
hard-coded ``raw`` schema and read back through ``source()`` (with no ``depends_on``
hint), a snapshot with ``target_schema='snapshots'``. dbtproof must run it as it is,
write nothing outside the namespace and leave nothing behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import duckdb_query, pg_relations

from dbtproof.safety.namespace import MAX_IDENTIFIER
from dbtproof.safety.relocation import relocated_schema

AS_IS_SCHEMA_NAME = (
    "{% macro generate_schema_name(custom_schema_name, node) -%}\n"
    "  {{ custom_schema_name if custom_schema_name else target.schema }}\n"
    "{%- endmacro %}\n"
)
SNAPSHOT = """{% snapshot orders_snapshot %}
{{ config(target_schema='snapshots', unique_key='order_id', strategy='check', check_cols='all') }}
select * from {{ source('shop', 'raw_orders') }}
{% endsnapshot %}
"""


def jaffle_style(shop: Path) -> Path:
    """Lay the example project out as jaffle-shop is: hard-coded schemas everywhere."""
    (shop / "macros" / "generate_schema_name.sql").write_text(AS_IS_SCHEMA_NAME)
    project = (shop / "dbt_project.yml").read_text()
    (shop / "dbt_project.yml").write_text(project + "\nseeds:\n  shop:\n    +schema: raw\n")
    sources = shop / "models" / "staging" / "sources.yml"
    sources.write_text(sources.read_text().replace('schema: "{{ target.schema }}"', "schema: raw"))
    for model in (shop / "models" / "staging").glob("stg_*.sql"):
        model.write_text(re.sub(r"^-- depends_on:.*\n", "", model.read_text()))
    (shop / "snapshots").mkdir()
    (shop / "snapshots" / "orders_snapshot.sql").write_text(SNAPSHOT)
    return shop


def run_items(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str]:
    result = pytester.runpytest_subprocess("dbt_project.yml", "-p", "no:cacheprovider", *args)
    return result, result.stdout.str() + result.stderr.str()


def test_relocated_schema_names() -> None:
    ns = "dbtproof_202611260100_abc123_gw1"
    assert relocated_schema(ns, ns) == ns
    assert relocated_schema(ns, ns + "_marts") == ns + "_marts"
    assert relocated_schema(ns, "raw") == ns + "_raw"
    assert relocated_schema(ns, "snapshots", "otherdb") == ns + "_otherdb_snapshots"
    odd = relocated_schema(ns, "Odd name-1")
    assert odd.startswith(ns + "_Odd_name_1_") and odd != relocated_schema(ns, "Odd_name_1")
    long = relocated_schema(ns, "x" * 80)
    assert len(long) <= MAX_IDENTIFIER and long.startswith(ns + "_xxx")
    assert long != relocated_schema(ns, "x" * 81)


def test_the_xdist_header_names_the_workers_schemas(pytester: pytest.Pytester, shop: Path) -> None:
    # The controller's header speaks for every worker: relocated schemas are the workers'.
    jaffle_style(shop)
    _, output = run_items(pytester, "-n", "2", "--collect-only")
    assert re.search(r"namespace dbtproof_\w+_gw<N>\n", output), output
    assert re.search(r"relocated: raw -> dbtproof_\w+_gw<N>_raw \(3 seeds, 3 sources\)", output)


def test_jaffle_style_project_runs_unchanged_on_duckdb(
    pytester: pytest.Pytester, shop: Path
) -> None:
    jaffle_style(shop)
    result, output = run_items(pytester, "-v", "--dbt-keep")
    assert result.ret == 0, output
    assert "refusing" not in output
    # Every seed, model, snapshot and test ran, with dbt's verdicts.
    assert "dbt_project.yml::raw_orders::build PASSED" in output
    assert "dbt_project.yml::orders_snapshot::build PASSED" in output
    assert "dbt_project.yml::customers::build PASSED" in output
    assert "dbt_project.yml::stg_orders::unique_stg_orders_order_id PASSED" in output
    # The header says what moved where.
    assert re.search(r"relocated: raw -> dbtproof_\w+_raw \(3 seeds, 3 sources\)", output), output
    kept = re.search(r"kept (\S+\.duckdb)", output)
    assert kept, output
    schemas = {
        row[0]
        for row in duckdb_query(
            Path(kept.group(1)),
            "select distinct table_schema from information_schema.tables",
        )
    }
    namespace = re.search(r"namespace (dbtproof_\w+)", output).group(1)  # type: ignore[union-attr]
    suffixes = ("", "_raw", "_marts", "_snapshots")
    assert schemas == {namespace + suffix for suffix in suffixes}


def test_jaffle_style_project_runs_unchanged_on_postgres(
    pytester: pytest.Pytester, shop: Path, shop_pg: str
) -> None:
    jaffle_style(shop)
    before = pg_relations()
    result, output = run_items(pytester)
    assert result.ret == 0, output
    # 34 build and test items, and the customers mart's grants item (reporter mapped to PUBLIC)
    assert re.search(r"35 passed", output), output
    assert pg_relations() == before, "nothing written outside, nothing left behind"


def test_failing_feeder_names_itself_downstream(pytester: pytest.Pytester, shop: Path) -> None:
    jaffle_style(shop)
    seed = shop / "seeds" / "raw_orders.csv"
    seed.write_text(seed.read_text() + "not-a-number,1,2024-01-01,placed\n")
    result, output = run_items(pytester, "-v")
    assert result.ret != 0
    assert "dbt_project.yml::raw_orders::build FAILED" in output
    assert re.search(r"dbt_project.yml::stg_orders::build (ERROR|SKIPPED|FAILED)", output)
    assert "seed.shop.raw_orders" in output


@pytest.mark.parametrize("target", ["duckdb", "postgres"])
def test_missing_source_table_is_named_once_per_reader(
    pytester: pytest.Pytester, shop: Path, request: pytest.FixtureRequest, target: str
) -> None:
    if target == "postgres":
        request.getfixturevalue("shop_pg")
    jaffle_style(shop)
    sources = shop / "models" / "staging" / "sources.yml"
    sources.write_text(sources.read_text() + "      - name: raw_refunds\n")
    (shop / "models" / "staging" / "stg_refunds.sql").write_text(
        "select * from {{ source('shop', 'raw_refunds') }}\n"
    )
    (shop / "models" / "refund_totals.sql").write_text(
        "select count(*) as n from {{ ref('stg_refunds') }}\n"
    )
    result, output = run_items(pytester, "-v", "-k", "refund")
    assert result.ret != 0
    assert "dbt_project.yml::stg_refunds::build FAILED" in output
    assert re.search(
        r"reads source 'shop.raw_refunds', whose table \S*raw\S*raw_refunds\S* does not exist",
        output,
    ), output
    assert re.search(r"dbt_project.yml::refund_totals::build (ERROR|SKIPPED)", output), output


def test_per_call_vars_reach_parse_time_config(pytester: pytest.Pytester, shop: Path) -> None:
    jaffle_style(shop)
    (shop / "models" / "by_var.sql").write_text(
        "{{ config(materialized=var('by_var_materialized', 'view'), "
        "schema=var('by_var_schema', none)) }}\nselect 1 as id\n"
    )
    pytester.makepyfile(
        test_vars="""
        def kind(dbt):
            rows = dbt.query(
                "select table_schema, table_type from information_schema.tables "
                "where table_name = 'by_var'"
            )
            return [(r["table_schema"], r["table_type"]) for r in rows]

        def test_vars(dbt):
            dbt.run(select="by_var")
            assert kind(dbt) == [(dbt.schema, "VIEW")]
            dbt.run(select="by_var", vars={"by_var_materialized": "table", "by_var_schema": "x"})
            assert (dbt.schema + "_x", "BASE TABLE") in kind(dbt)
        """
    )
    result = pytester.runpytest_subprocess("test_vars.py", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output


GRAPH_PROBE = """
{% if execute %}
{% set seed = graph.nodes['seed.shop.raw_orders'] %}
{% set mart = graph.nodes['model.shop.customers'] %}
{% set read = graph.sources['source.shop.shop.raw_orders'] %}
{% endif %}
select
    '{{ seed.schema if execute }}' as graph_seed, '{{ ref("raw_orders").schema }}' as ref_seed,
    '{{ mart.schema if execute }}' as graph_mart, '{{ ref("customers").schema }}' as ref_mart,
    '{{ read.schema if execute }}' as graph_source,
    '{{ source("shop", "raw_orders").schema }}' as read_source
"""
GRAPH_AGREES = """
select * from {{ ref('graph_probe') }}
where graph_seed != ref_seed or graph_mart != ref_mart or graph_source != read_source
"""


@pytest.mark.parametrize("parse", ["warm", "cold"])
def test_macros_reading_the_graph_see_the_relocated_relations(
    pytester: pytest.Pytester, shop: Path, parse: str
) -> None:
    # dbt's `graph` context variable (a flat copy of the manifest) says where every node is,
    # as ref() and source() do: a macro walking it reads and writes the namespace's relations.
    jaffle_style(shop)
    (shop / "models" / "marts" / "graph_probe.sql").write_text(GRAPH_PROBE)
    (shop / "tests").mkdir(exist_ok=True)
    (shop / "tests" / "graph_agrees.sql").write_text(GRAPH_AGREES)
    (shop / "pytest.ini").write_text(f"[pytest]\ndbt_warm_parse = {parse == 'warm'}\n")
    result, output = run_items(pytester, "-v", "-k", "graph or raw_orders or customers")
    assert "dbt_project.yml::graph_probe::graph_agrees PASSED" in output, output
    assert result.ret == 0, output
