"""Build items: every model, seed and snapshot is built by its own item, as `dbt build` would.

On the example project (DuckDB; one case on PostgreSQL), with an untested model that
cannot build (`select * from products_typo`) and models downstream of it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

#: The example's models (ephemeral int_order_payments excepted), seeds: one build item each.
BUILT = [
    "seed.shop.raw_customers",
    "seed.shop.raw_orders",
    "seed.shop.raw_payments",
    "model.shop.stg_customers",
    "model.shop.stg_orders",
    "model.shop.stg_payments",
    "model.shop.orders",
    "model.shop.customers",
    "model.shop.fct_daily_revenue",
]
TESTS = 24  # the example's data tests and unit tests
GRANTS = 0  # the example grants nothing on DuckDB: no customers::grants item
TYPO = "Catalog Error: Table with name products_typo does not exist!"

# Records each dbt invocation that builds or tests (command, node, status), per xdist worker.
RECORDER = """
import json, os
from dbtproof.session.runner import DbtRunner

_invoke = DbtRunner.invoke


def _recording_invoke(self, command, **kwargs):
    result = _invoke(self, command, **kwargs)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"invocations-{worker}.jsonl", "a") as log:
        nodes = [[n.unique_id, n.status] for n in result.nodes]
        args = list(kwargs.get("extra_args") or [])
        log.write(json.dumps({"command": command, "nodes": nodes, "args": args}) + "\\n")
    return result


DbtRunner.invoke = _recording_invoke

import dbtproof.plugin.batches as _tests

_run_batched = _tests.run_batched


def _recording_batched(session, unique_ids, **kwargs):
    run = _run_batched(session, unique_ids, **kwargs)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"invocations-{worker}.jsonl", "a") as log:
        nodes = [[uid, result.status] for uid, result in run.results.items()]
        log.write(json.dumps({"command": "batched", "nodes": nodes}) + "\\n")
    return run


_tests.run_batched = _recording_batched
"""


def broken_products(shop: Path, summary_test: bool = False) -> None:
    """An untested model that cannot build; with *summary_test*, a tested model downstream."""
    (shop / "models" / "products.sql").write_text("select * from products_typo\n")
    if summary_test:
        (shop / "models" / "products_summary.sql").write_text(
            "select count(*) as n from {{ ref('products') }}\n"
        )
        (shop / "models" / "products_summary.yml").write_text(
            "version: 2\nmodels:\n  - name: products_summary\n"
            "    columns:\n      - name: n\n        data_tests: [not_null]\n"
        )


def invocations(shop: Path) -> dict[str, list[dict[str, object]]]:
    """The recorded dbt invocations of each worker (``main`` without xdist)."""
    return {
        path.stem.removeprefix("invocations-"): [
            json.loads(line) for line in path.read_text().splitlines()
        ]
        for path in sorted(shop.glob("invocations-*.jsonl"))
    }


def test_untested_model_that_cannot_build_fails_its_build_item(
    pytester: pytest.Pytester, shop: Path
) -> None:
    broken_products(shop)
    (shop / "conftest.py").write_text(RECORDER)
    result = pytester.runpytest_subprocess("dbt_project.yml", "--junitxml=out.xml", "-rf")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=TESTS + len(BUILT), failed=1, skipped=GRANTS)
    result.stdout.fnmatch_lines(
        [
            "dbt build of model products (models/products.sql): error",
            "Runtime Error in model products (models/products.sql)",
            f"*{TYPO}",
            "FAILED dbt_project.yml::products::build - dbt build of model products*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    # Every node is built once, in one `dbt build`; every data test runs in batched
    # statements (none is left to `dbt test`).
    (calls,) = invocations(shop).values()
    assert [call["command"] for call in calls] == ["build", "batched"]
    assert sorted(uid for uid, _ in calls[0]["nodes"]) == sorted([*BUILT, "model.shop.products"])
    # Each build item is a test case of the JUnit XML; the broken one failed.
    cases = {
        case.get("classname"): case
        for case in ET.parse(shop / "out.xml").getroot().iter("testcase")
        if case.get("name") == "build"
    }
    expected = {f"dbt_project.yml.{uid.split('.')[-1]}" for uid in [*BUILT, "model.shop.products"]}
    assert set(cases) == expected
    failure = cases["dbt_project.yml.products"].find("failure")
    assert failure is not None and TYPO in (failure.text or "")
    failed = [c for c, case in cases.items() if case.find("failure") is not None]
    assert failed == ["dbt_project.yml.products"]


def test_nodes_and_tests_downstream_of_a_failed_build_name_it(
    pytester: pytest.Pytester, shop: Path
) -> None:
    broken_products(shop, summary_test=True)
    result = pytester.runpytest_subprocess("dbt_project.yml", "-k", "products", "-rfE")
    result.assert_outcomes(failed=1, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "ERROR dbt_project.yml::products_summary::build - *",
            "ERROR dbt_project.yml::products_summary::not_null_products_summary_n - *",
            "FAILED dbt_project.yml::products::build - *",
            "dbt build of model products_summary (models/products_summary.sql) could not run: "
            "upstream failed to build: model.shop.products error: Runtime Error in model products*",
            "dbt test not_null_products_summary_n could not run: upstream failed to build: "
            "model.shop.products error: Runtime Error in model products*",
        ]
    )


def test_k_selects_build_items_and_m_their_dbt_tags(pytester: pytest.Pytester, shop: Path) -> None:
    stg_customers = shop / "models" / "staging" / "stg_customers.sql"
    stg_customers.write_text('{{ config(tags=["pii"]) }}\n' + stg_customers.read_text())
    everything = pytester.runpytest_subprocess("dbt_project.yml", "--collect-only", "-q")
    ids = [line for line in everything.stdout.lines if line.startswith("dbt_project.yml::")]
    assert len(ids) == TESTS + len(BUILT) + GRANTS
    builds = [i for i in ids if i.endswith("::build")]
    assert builds == [f"dbt_project.yml::{uid.split('.')[-1]}::build" for uid in BUILT]
    for build in builds:  # each group's build comes first
        group = build.rsplit("::", 1)[0]
        assert next(i for i in ids if i.startswith(group + "::")) == build
    by_k = pytester.runpytest_subprocess("dbt_project.yml", "--collect-only", "-q", "-k", "build")
    # -k matches substrings: the unit test fct_daily_revenue_rebuilds_latest_day too.
    assert [line for line in by_k.stdout.lines if line.startswith("dbt_project.yml::")] == [
        *builds,
        "dbt_project.yml::fct_daily_revenue::fct_daily_revenue_rebuilds_latest_day",
    ]
    by_tag = pytester.runpytest_subprocess(
        "dbt_project.yml", "--collect-only", "-q", "-m", "pii and dbt", "--strict-markers"
    )
    assert [line for line in by_tag.stdout.lines if line.startswith("dbt_project.yml::")] == [
        "dbt_project.yml::stg_customers::build"
    ]
    selected = pytester.runpytest_subprocess(
        "dbt_project.yml", "--collect-only", "-q", "--dbt-select", "+stg_orders"
    )
    assert [line for line in selected.stdout.lines if line.endswith("::build")] == [
        "dbt_project.yml::raw_orders::build",
        "dbt_project.yml::stg_orders::build",
    ]


def test_no_dbt_builds_turns_build_items_off(pytester: pytest.Pytester, shop: Path) -> None:
    broken_products(shop)
    result = pytester.runpytest_subprocess("dbt_project.yml", "--no-dbt-builds")
    # No test reads products: nothing builds it, and the run passes (as documented).
    result.assert_outcomes(passed=TESTS)
    assert result.ret == pytest.ExitCode.OK


def test_xdist_builds_once_for_the_run_and_splits_the_tests(
    pytester: pytest.Pytester, shop: Path
) -> None:
    """Under ``-n 2`` on DuckDB one worker builds each node once for the whole run (in the
    run-level place, on two dbt threads), the data tests are split over both workers, each
    reading that one build, and the verdicts are a serial run's: a failed build and what
    sits downstream of it too, whichever worker reports them."""
    broken_products(shop, summary_test=True)
    # a test that stores its failures writes even when it passes: in its worker's namespace
    (shop / "tests" / "assert_stored.sql").write_text(
        "{{ config(store_failures=true) }}\n"
        "select * from {{ ref('customers') }} where customer_id < 0\n"
    )
    (shop / "conftest.py").write_text(RECORDER)
    serial = pytester.runpytest_subprocess("dbt_project.yml", "-p", "no:cacheprovider")
    for path in shop.glob("invocations-*.jsonl"):
        path.unlink()
    result = pytester.runpytest_subprocess(
        "dbt_project.yml", "-p", "no:cacheprovider", "-n", "2", "-v"
    )
    assert result.parseoutcomes() == serial.parseoutcomes(), result.stdout.str()
    assert (result.parseoutcomes()["failed"], result.parseoutcomes()["errors"]) == (1, 2)
    workers = invocations(shop)
    builders = [w for w, calls in workers.items() if any(c["command"] == "build" for c in calls)]
    assert len(builders) == 1, workers
    built = {
        uid: status
        for call in workers[builders[0]]
        if call["command"] == "build"
        for uid, status in call["nodes"]
    }
    summary = "model.shop.products_summary"  # downstream of the failure: dbt skips it
    assert sorted(built) == sorted([*BUILT, "model.shop.products", summary]), built
    assert (built["model.shop.products"], built[summary]) == ("error", "skipped")
    # on as many dbt threads as the run has workers (the profile says 1): the other waits
    for args in [c["args"] for c in workers[builders[0]] if c["command"] == "build"]:
        assert args[args.index("--threads") + 1] == "2", args
    tested = [
        uid
        for calls in workers.values()
        for call in calls
        if call["command"] in ("test", "batched")
        for uid, _ in call["nodes"]
    ]
    assert len(tested) == len(set(tested)), "a data test ran twice"
    testers = {w for w, calls in workers.items() if any(c["command"] == "batched" for c in calls)}
    assert testers == {"gw0", "gw1"}
    output = result.stdout.str()
    for worker in ("gw0", "gw1"):
        assert re.search(rf"\[{worker}\] .*PASSED dbt_project\.yml::", output), output
    # the run-level folder and its DuckDB file went with the run
    assert not [p for p in pytester.path.rglob("*") if "shared" in p.name], "left behind"


def test_xdist_run_level_build_is_kept_with_dbt_keep(pytester: pytest.Pytester, shop: Path) -> None:
    """``--dbt-keep`` keeps the run-level build's DuckDB file and says so; it holds the
    project's tables in the run's ``<run>_shared`` schema."""
    import duckdb

    result = pytester.runpytest_subprocess(
        "dbt_project.yml", "-p", "no:cacheprovider", "-n", "2", "--dbt-keep"
    )
    result.assert_outcomes(passed=TESTS + len(BUILT), skipped=GRANTS)
    kept = re.search(r"kept (\S+dbtproof_shared\.duckdb)", result.stdout.str())
    assert kept, result.stdout.str()
    with duckdb.connect(kept.group(1), read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    schemas = {schema for schema, _ in tables}
    assert len(schemas) == 2 and all(s.endswith(("_shared", "_shared_marts")) for s in schemas)
    names = {name for _, name in tables}
    assert {"raw_orders", "stg_orders", "orders", "customers", "fct_daily_revenue"} <= names


def test_tests_of_a_leaf_run_in_its_build(pytester: pytest.Pytester, shop: Path) -> None:
    """When nothing a batch builds would wait on one of its tests in ``dbt build``'s graph
    (a leaf model and its tests, as a watch round's save of it), the tests run in the same
    ``dbt build``: one invocation, the verdicts of a build then a test (the failing test
    fails, the builds pass)."""
    (shop / "tests" / "assert_no_big_customers.sql").write_text(
        "select * from {{ ref('customers') }} where customer_id > 0\n"
    )
    (shop / "conftest.py").write_text(RECORDER)
    result = pytester.runpytest_subprocess(
        "dbt_project.yml", "-p", "no:cacheprovider", "-rf",
        "-k", "customers and not stg and not raw and not orders",
    )  # fmt: skip
    outcomes = result.parseoutcomes()
    assert (outcomes["failed"], outcomes["passed"]) == (1, 4), result.stdout.str()
    result.stdout.fnmatch_lines(["FAILED *customers::assert_no_big_customers*"])
    (calls,) = invocations(shop).values()
    assert [call["command"] for call in calls] == ["build"], calls
    statuses = dict(map(tuple, calls[0]["nodes"]))  # type: ignore[arg-type]
    assert statuses["model.shop.customers"] == "success"
    assert statuses["test.shop.assert_no_big_customers"] == "fail"


def test_build_item_on_postgres(pytester: pytest.Pytester, shop: Path, shop_pg: str) -> None:
    broken_products(shop)
    result = pytester.runpytest_subprocess("dbt_project.yml", "-k", "products or stg_orders")
    result.assert_outcomes(passed=4, failed=1)  # stg_orders: its build and three data tests
    result.stdout.fnmatch_lines(
        [
            "dbt build of model products (models/products.sql): error",
            '*relation "products_typo" does not exist*',
        ]
    )


def test_group_names_and_dag_order_without_dbt() -> None:
    from types import SimpleNamespace as NS

    from dbtproof.plugin.items import GroupNames, dag_depths

    def node(uid: str, parents: list[str], **extra: object) -> NS:
        rtype, package, name = uid.split(".")[:3]
        fields = {"resource_type": rtype, "package_name": package, "name": name, "version": None}
        return NS(unique_id=uid, depends_on=NS(nodes=parents), **{**fields, **extra})

    nodes = [
        node("seed.shop.raw", []),
        node("model.shop.orders", ["seed.shop.raw"]),
        node("model.util.orders", ["model.shop.orders"]),  # same name, another package
        node("model.shop.dim.v2", ["model.util.orders"], name="dim", version=2),
        node("test.shop.unique_dim", ["model.shop.dim.v2"], attached_node="model.shop.dim.v2"),
        node("test.util.not_null", ["model.util.orders"], attached_node="model.util.orders"),
    ]
    manifest = NS(nodes={n.unique_id: n for n in nodes}, sources={}, unit_tests={})
    names = GroupNames(manifest)
    assert [names.of_node(n.unique_id) for n in nodes[:4]] == [
        "raw",
        "shop.orders",
        "util.orders",
        "dim_v2",
    ]
    assert names.of_test(nodes[4]) == ("dim_v2", "model.shop.dim.v2")
    assert names.of_test(nodes[5]) == ("util.orders", "model.util.orders")
    depths = dag_depths(manifest)
    assert [depths[n.unique_id] for n in nodes] == [0, 1, 2, 3, 4, 3]
