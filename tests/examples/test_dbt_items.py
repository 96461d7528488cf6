"""dbt's own data tests and unit tests as pytest items, on the example project (DuckDB).

Build items (one per model, seed and snapshot) have their own tests in test_build_items.py;
here they count among the items.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ORDERS_TESTS = [
    "accepted_values_orders_status__placed__shipped__completed__returned",
    "assert_order_amount_non_negative",
    "not_null_orders_amount",
    "not_null_orders_customer_id",
    "not_null_orders_order_id",
    "relationships_orders_customer_id__customer_id__ref_customers_",
    "unique_orders_order_id",
]
BUILDS = 9  # 3 seeds and 6 models (the ephemeral int_order_payments gets no build item)
GRANTS = 0  # the example grants nothing on DuckDB: no customers::grants item
ITEMS = 24 + BUILDS + GRANTS  # 24 data tests and unit tests


def test_every_dbt_test_is_an_item_with_a_readable_id(
    pytester: pytest.Pytester, shop: Path
) -> None:
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    ids = [line for line in result.stdout.lines if line.startswith("dbt_project.yml::")]
    assert [i.split("::")[2] for i in ids if i.split("::")[1] == "orders"] == [
        "build",
        *ORDERS_TESTS,
    ]
    assert "dbt_project.yml::customers::customers_counts_orders_per_customer" in ids
    assert "dbt_project.yml::stg_payments::stg_payments_converts_cents_to_dollars" in ids
    assert len(ids) == ITEMS


def test_junitxml_lists_each_dbt_test(pytester: pytest.Pytester, shop: Path) -> None:
    result = pytester.runpytest_subprocess("dbt_project.yml", "--junitxml=out.xml")
    result.assert_outcomes(passed=ITEMS - GRANTS, skipped=GRANTS)
    cases = ET.parse(shop / "out.xml").getroot().iter("testcase")
    names = {(case.get("classname"), case.get("name")) for case in cases}
    assert ("dbt_project.yml.orders", "unique_orders_order_id") in names
    assert ("dbt_project.yml.orders", "build") in names
    assert len(names) == ITEMS


def test_k_m_and_selectors_narrow_the_run(pytester: pytest.Pytester, shop: Path) -> None:
    by_k = pytester.runpytest_subprocess("-k", "orders and unique")
    # unique_orders_order_id, unique_stg_orders_order_id
    by_k.assert_outcomes(passed=2, deselected=ITEMS - 2)
    by_tag = pytester.runpytest_subprocess("-m", "nightly")
    by_tag.assert_outcomes(passed=2, deselected=ITEMS - 2)
    by_selector = pytester.runpytest_subprocess("--dbt-select", "test_type:unit")
    by_selector.assert_outcomes(passed=4)
    graph = pytester.runpytest_subprocess(
        "--dbt-select", "stg_orders+", "--dbt-exclude", "orders", "--collect-only", "-q"
    )
    groups = {line.split("::")[1] for line in graph.stdout.lines if "::" in line}
    assert "stg_orders" in groups and "orders" not in groups, groups
    off = pytester.runpytest_subprocess("--no-dbt-tests")
    assert off.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_selector_that_selects_nothing_stops_the_run(pytester: pytest.Pytester, shop: Path) -> None:
    from test_errors import run_failing

    output = run_failing(pytester, "--dbt-select", "tag:no_such_tag")
    assert "dbtproof: --dbt-select 'tag:no_such_tag' selects no dbt test" in output


def test_broken_model_fails_exactly_its_tests_with_rows(
    pytester: pytest.Pytester, shop: Path
) -> None:
    orders = shop / "models" / "marts" / "orders.sql"
    # Every order of customer 1 appears twice: unique_orders_order_id must fail, nothing else.
    text = orders.read_text()
    assert "\nfrom orders\n" in text, "the example's orders model changed shape"
    orders.write_text(
        text.replace(
            "\nfrom orders\n",
            "\nfrom (select * from orders union all select * from orders where customer_id = 1)"
            " as orders\n",
        )
    )
    result = pytester.runpytest_subprocess("dbt_project.yml", "-rf")
    result.assert_outcomes(passed=ITEMS - GRANTS - 1, failed=1, skipped=GRANTS)
    output = result.stdout.str()
    assert "FAILED dbt_project.yml::orders::unique_orders_order_id" in output
    assert "dbt test unique_orders_order_id fail: 3 failing row(s)" in output
    assert re.search(r"First 3 failing row\(s\):\n<Rows: 3 rows", output)
    assert "--- compiled SQL ---" in output


def test_model_that_fails_to_build_errors_its_tests(pytester: pytest.Pytester, shop: Path) -> None:
    customers = shop / "models" / "marts" / "customers.sql"
    customers.write_text(customers.read_text().replace("select", "select no_such_column,", 1))
    result = pytester.runpytest_subprocess("dbt_project.yml")
    outcomes = result.parseoutcomes()
    # Its build fails; its unit tests run (they need no build) and their SQL fails:
    # errors, as dbt reports them; its data tests (3, and the relationships test of
    # orders) cannot run: errors.
    assert (outcomes["failed"], outcomes["errors"]) == (1, 6), result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "dbt unit test * could not run (models/marts/schema.yml):",
            "dbt test unique_customers_customer_id could not run: upstream failed to build: "
            "model.shop.customers error: Runtime Error in model customers*",
            '*Referenced column "no_such_column" not found*',
        ],
        consecutive=False,
    )


def test_warn_severity_passes_with_a_warning(pytester: pytest.Pytester, shop: Path) -> None:
    raw = shop / "seeds" / "raw_orders.csv"
    lines = raw.read_text().splitlines()
    lines[1] = re.sub(r",(placed|shipped|completed|returned)$", ",lost", lines[1])
    raw.write_text("\n".join(lines) + "\n")
    result = pytester.runpytest_subprocess("dbt_project.yml", "-k", "stg_orders_status")
    result.assert_outcomes(passed=1, deselected=ITEMS - 1, warnings=1)
    result.stdout.fnmatch_lines(["*DbtTestWarning: accepted_values_stg_orders_status*1 failing*"])


def test_last_failed_and_xdist(pytester: pytest.Pytester, shop: Path) -> None:
    raw = shop / "seeds" / "raw_customers.csv"
    lines = raw.read_text().splitlines()
    raw.write_text("\n".join([*lines, lines[1]]) + "\n")  # a duplicate customer
    first = pytester.runpytest_subprocess("dbt_project.yml", "-n", "2")
    failed = first.parseoutcomes()["failed"]
    assert failed >= 1
    again = pytester.runpytest_subprocess("dbt_project.yml", "--lf", "-p", "cacheprovider")
    again.assert_outcomes(failed=failed, deselected=ITEMS - failed)


def test_seed_option_loads_seeds_first(pytester: pytest.Pytester, shop: Path) -> None:
    seeded = "def test_seeded(dbt):\n    assert len(dbt.table('raw_orders')) == 20\n"
    pytester.makepyfile(**{"pytests/test_seeded": seeded})
    result = pytester.runpytest_subprocess("pytests", "--dbt-seed")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("unit_test", "message"),
    [
        (
            "  - name: ghost\n    model: no_such_model\n    given: []\n    expect: {rows: []}\n",
            "Unable to find model 'shop.no_such_model' for unit test 'ghost' in "
            "models/marts/schema.yml",
        ),
        (
            "  - name: lost\n    model: customers\n    given:\n"
            "      - {input: ref('stg_customers'), format: csv, fixture: no_such_fixture}\n"
            "      - {input: ref('orders'), rows: []}\n    expect: {rows: []}\n",
            "File not found for fixture 'no_such_fixture' in unit tests in models/marts/schema.yml",
        ),
    ],
    ids=["unknown model", "missing fixture file"],
)
def test_bad_unit_test_yaml_stops_the_run_naming_the_file(
    pytester: pytest.Pytester, shop: Path, unit_test: str, message: str
) -> None:
    from test_errors import run_failing

    schema = shop / "models" / "marts" / "schema.yml"
    schema.write_text(schema.read_text() + unit_test)
    output = run_failing(pytester)
    assert message in output


def test_store_failures_keeps_failing_rows_in_the_namespace(
    pytester: pytest.Pytester, shop: Path
) -> None:
    from conftest import duckdb_query

    raw = shop / "seeds" / "raw_customers.csv"
    lines = raw.read_text().splitlines()
    raw.write_text("\n".join([*lines, lines[1]]) + "\n")  # customer 1 twice
    result = pytester.runpytest_subprocess(
        "dbt_project.yml", "-k", "unique_stg_customers", "--dbt-store-failures", "--dbt-keep"
    )
    result.assert_outcomes(failed=1, deselected=ITEMS - 1)
    kept = re.search(r"kept (\S+shop\.duckdb)", result.stdout.str())
    assert kept, result.stdout.str()
    stored = duckdb_query(
        Path(kept.group(1)),
        "select table_schema, table_name from information_schema.tables "
        "where table_schema like '%_dbt_test__audit'",
    )
    assert [name for _, name in stored] == ["unique_stg_customers_customer_id"]
    rows = duckdb_query(
        Path(kept.group(1)), f'select * from "{stored[0][0]}".unique_stg_customers_customer_id'
    )
    assert rows == [(1, 2)]


RESERVED_TAGS = ["skip", "xfail", "skipif", "usefixtures", "parametrize", "filterwarnings"]


def test_dbt_tags_never_change_a_verdict(pytester: pytest.Pytester, shop: Path) -> None:
    """Tags named like pytest's markers (or a plugin's), or that are no identifier, are markers
    ``dbt_<tag>``: a failing test still fails, nothing is skipped, and nothing crashes."""
    tags = [*RESERVED_TAGS, "timeout", "nightly-eu", "_private", "parameterize"]
    project = shop / "dbt_project.yml"
    project.write_text(project.read_text() + f"\ndata_tests:\n  +tags: {tags}\n")
    raw = shop / "seeds" / "raw_customers.csv"
    lines = raw.read_text().splitlines()
    raw.write_text("\n".join([*lines, lines[1]]) + "\n")  # customer 1 twice
    (shop / "pytest.ini").write_text(
        "[pytest]\ntestpaths = pytests\nmarkers =\n    timeout(seconds): a plugin's marker\n"
    )
    result = pytester.runpytest_subprocess(
        "dbt_project.yml", "-k", "stg_customers", "--strict-markers", "-rfs"
    )
    # stg_customers: its build, unique (fails: customer 1 twice), not_null
    result.assert_outcomes(passed=2, failed=1, deselected=ITEMS - 3)
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(["FAILED *::stg_customers::unique_stg_customers_customer_id*"])
    # Each tag is there under its prefixed name (the build item has no test tags).
    markers = [*RESERVED_TAGS, "timeout", "nightly_eu", "_private", "parameterize"]
    picked = pytester.runpytest_subprocess(
        "dbt_project.yml", "--collect-only", "-q", "-k", "stg_customers",
        "-m", " and ".join(f"dbt_{marker}" for marker in markers),
    )  # fmt: skip
    assert [line for line in picked.stdout.lines if "::" in line] == [
        "dbt_project.yml::stg_customers::not_null_stg_customers_customer_id",
        "dbt_project.yml::stg_customers::unique_stg_customers_customer_id",
    ]


def test_a_conftest_skip_mark_on_a_dbt_item_skips_it(pytester: pytest.Pytester, shop: Path) -> None:
    """pytest places a skip at the item's reportinfo line: it must be a number."""
    (shop / "conftest.py").write_text(
        "import pytest\n\n"
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        item.add_marker(pytest.mark.skip(reason='not today'))\n"
    )
    result = pytester.runpytest_subprocess("dbt_project.yml", "-k", "stg_customers", "-rs")
    result.assert_outcomes(skipped=3, deselected=ITEMS - 3)
    assert "INTERNALERROR" not in result.stdout.str()
