"""The plugin end to end on DuckDB: discovery, header, the `dbt` fixture, isolation, --dbt-keep."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

NAMESPACE = r"dbtproof_\d{12}_[a-z0-9]{6}"


@pytest.mark.fresh_process  # what a new interpreter imports
def test_no_dbt_project_means_no_dbt_import_and_no_output(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_plain():
            assert not [m for m in sys.modules if m == "dbt" or m.startswith("dbt.")]
        """
    )
    result = pytester.runpytest_subprocess("-W", "error")
    result.assert_outcomes(passed=1)
    assert "dbtproof:" not in result.stdout.str()
    assert result.stderr.str().strip() == ""


def test_example_tests_pass_and_header_names_the_run(pytester: pytest.Pytester, shop: Path) -> None:
    from conftest import copy_shop

    copy_shop(shop, with_example_tests=True)
    result = pytester.runpytest_subprocess()
    outcomes = result.parseoutcomes()
    assert result.ret == 0 and outcomes.get("passed", 0) >= 40, outcomes
    sha = hashlib.sha256((shop / "profiles.yml").read_bytes()).hexdigest()
    result.stdout.re_match_lines(
        [
            rf"dbtproof: project shop \({re.escape(str(shop))}\), profiles "
            rf"{re.escape(str(shop / 'profiles.yml'))} \(sha256 {sha}\), target dev, "
            rf"adapter duckdb, namespace {NAMESPACE}$"
        ]
    )
    assert not list(shop.rglob("*.duckdb")), "no DuckDB file is left, and the user's is untouched"


FIXTURE_TESTS = """
import pytest
from dbtproof import DbtRunError
from dbtproof.errors import UnknownNodeError


def test_build_runs_once_per_selection(dbt):
    first = dbt.build(select="+customers +orders")
    assert dbt.build(select="+customers +orders") is first
    assert {n.name for n in first.nodes} >= {"raw_orders", "stg_orders", "orders", "customers"}
    assert first.status_of("orders") == "success"
    again = dbt.build(select="+customers +orders", force=True)
    assert again is not first and again.status_of("orders") == "success"


def test_reads_models_seeds_and_sources(dbt):
    dbt.seed()
    assert len(dbt.table("raw_customers")) == 10
    assert dbt.table("shop.raw_customers") == dbt.table("raw_customers")
    assert dbt.relation("raw_orders").endswith('"raw_orders"')
    assert dbt.schema in dbt.relation("shop.raw_orders")
    assert dbt.target == "dev"
    assert "model.shop.orders" in dbt.manifest.nodes


def test_unknown_name_suggests(dbt):
    with pytest.raises(UnknownNodeError, match="Did you mean: customers"):
        dbt.table("customer")


def test_failing_model_raises_naming_it(dbt):
    dbt.seed()
    dbt.run(select="stg_orders")
    with pytest.raises(DbtRunError) as excinfo:
        dbt.run(select="broken")
    assert "model.shop.broken: error" in str(excinfo.value)
    assert "no_such_column" in str(excinfo.value)
    result = dbt.run(select="broken", expect_fail=True)
    assert [n.unique_id for n in result.failed_nodes] == ["model.shop.broken"]
"""


def _broken_model_project(shop: Path) -> None:
    # The broken model must exist at parse time: the manifest is parsed once per session.
    (shop / "models" / "broken.sql").write_text(
        "select * from {{ ref('stg_orders') }} where no_such_column = 1"
    )


def test_dbt_fixture_builds_reads_and_reports_failures(
    pytester: pytest.Pytester, shop: Path
) -> None:
    _broken_model_project(shop)
    pytester.makepyfile(**{"pytests/test_fixture": FIXTURE_TESTS})
    result = pytester.runpytest_subprocess("pytests")
    result.assert_outcomes(passed=4)


def test_each_xdist_worker_gets_its_own_namespace(pytester: pytest.Pytester, shop: Path) -> None:
    pytester.makepyfile(
        **{
            "pytests/test_workers": """
            import json
            from pathlib import Path
            import pytest

            @pytest.mark.parametrize("n", range(6))
            def test_schema(dbt, worker_id, n):
                dbt.seed()
                assert len(dbt.table("raw_orders")) == 20
                Path(f"schema-{worker_id}.json").write_text(json.dumps(dbt.schema))
            """
        }
    )
    result = pytester.runpytest_subprocess("pytests", "-n", "2")
    result.assert_outcomes(passed=6)
    schemas = sorted(Path(p).read_text() for p in shop.glob("schema-gw*.json"))
    assert len(schemas) == 2
    run_ids = {re.sub(r"_gw\d+\"$", "", s) for s in schemas}
    assert len(run_ids) == 1, f"workers must share one run prefix: {schemas}"
    assert [s[-5:-1] for s in schemas] == ["_gw0", "_gw1"]
    assert not list(shop.rglob("*.duckdb")), "DuckDB files must be removed at the end"


def test_dbt_keep_keeps_and_prints(pytester: pytest.Pytester, shop: Path) -> None:
    pytester.makepyfile(**{"pytests/test_keep": "def test_seed(dbt):\n    dbt.seed()\n"})
    result = pytester.runpytest_subprocess("pytests", "--dbt-keep")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*dbtproof: kept (--dbt-keep)*", "kept */shop.duckdb"])
    kept = re.search(r"kept (\S+shop\.duckdb)", result.stdout.str())
    assert kept and Path(kept.group(1)).is_file()


def test_dbt_vars_reach_every_invocation(pytester: pytest.Pytester, shop: Path) -> None:
    pytester.makepyfile(
        **{
            "pytests/test_vars": """
            def test_min_order_date(dbt):
                dbt.seed()
                dbt.run(select="+fct_daily_revenue")
                assert dbt.table("fct_daily_revenue") == []
            """
        }
    )
    result = pytester.runpytest_subprocess(
        "pytests", "--dbt-vars", "{min_order_date: '2999-01-01'}"
    )
    result.assert_outcomes(passed=1)


def test_no_dbt_tests_still_get_a_fixture_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_needs_dbt(dbt):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the `dbt` fixture needs a dbt project*"])


def test_duckdb_settings_and_attachments_are_kept(pytester: pytest.Pytester, shop: Path) -> None:
    from conftest import duckdb_query

    duckdb_query(
        shop / "reference.duckdb", "create table rates as select 'EUR' as currency, 1.1 as rate"
    )
    profiles = (shop / "profiles.yml").read_text()
    profiles = profiles.replace(
        "      schema: main\n      threads: 1\n    postgres:",
        "      schema: main\n      threads: 1\n      settings:\n        threads: 1\n"
        f"      attach:\n        - path: {shop / 'reference.duckdb'}\n          alias: ref_db\n"
        "          read_only: true\n    postgres:",
    )
    (shop / "profiles.yml").write_text(profiles)
    pytester.makepyfile(
        **{
            "pytests/test_settings": """
            def test_settings(dbt):
                assert dbt.query("select current_setting('threads') as t") == [{"t": 1}]
                assert dbt.query("select * from ref_db.rates") == [{"currency": "EUR", "rate": 1.1}]
            """
        }
    )
    result = pytester.runpytest_subprocess("pytests")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("args", [["pytests/test_pure.py"], ["--no-dbt-tests"]])
def test_pure_python_tests_pay_nothing_for_dbt(
    pytester: pytest.Pytester, shop: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    # The target cannot connect: only a run that parses and connects would notice.
    monkeypatch.setenv("SHOP_PG_PORT", "9")
    (shop / "pytest.ini").write_text("[pytest]\ntestpaths = pytests\ndbt_target = postgres\n")
    pytester.makepyfile(**{"pytests/test_pure": "def test_pure():\n    assert 1 + 1 == 2\n"})
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    result.assert_outcomes(passed=1)
    assert "the dbt session starts when a collected test uses the `dbt` fixture" in output
    assert not (pytester.path / "target").exists()
    # A test that uses dbt starts the session before any test runs, with dbtproof's message.
    pytester.makepyfile(**{"pytests/test_dbt": "def test_dbt(dbt):\n    pass\n"})
    both = ["pytests"] if args[0].startswith("pytests") else args
    result = pytester.runpytest_subprocess(*both, "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret != 0
    assert "cannot connect to the warehouse of target 'postgres'" in output
    assert "passed" not in output, output


FREEZE_CONFTEST = """
import atexit
import gc
from pathlib import Path

# registered before dbtproof's own at-exit handler, so run after it (last in, first out)
atexit.register(lambda: Path("frozen_at_exit").write_text(str(gc.get_freeze_count())))


def pytest_configure(config):
    # a cleanup runs after every plugin's pytest_unconfigure
    config.add_cleanup(lambda: Path("frozen_after").write_text(str(gc.get_freeze_count())))
"""
FREEZE_TEST = """
import gc
from pathlib import Path


def test_frozen(dbt):
    assert dbt.query("select 1 as n") == [{"n": 1}]
    Path("frozen_during").write_text(str(gc.get_freeze_count()))
    Path("collecting_during").write_text(str(gc.isenabled()))
"""


def test_the_session_is_out_of_the_collectors_sight_during_the_run_only(
    pytester: pytest.Pytester, shop: Path
) -> None:
    # dbt, its adapter and the manifest live as long as the run: the collections during the
    # tests need not look at them; after the run the process has them back (an in-process run,
    # a watch round), until it exits.
    (shop / "pytests" / "conftest.py").write_text(FREEZE_CONFTEST)
    (shop / "pytests" / "test_frozen.py").write_text(FREEZE_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "pytests/test_frozen.py")
    result.assert_outcomes(passed=1)
    assert int((shop / "frozen_during").read_text()) > 100_000, "dbt's objects were frozen"
    # the collector, off while the session started, is on again for the tests
    assert (shop / "collecting_during").read_text() == "True"
    assert (shop / "frozen_after").read_text() == "0", "and handed back when the run ended"
    # at the interpreter's exit, frozen again: its last collection does not walk them
    assert int((shop / "frozen_at_exit").read_text()) > 100_000


def _collected(lines: list[str]) -> list[str]:
    """The node ids ``pytest --collect-only -q`` prints, sorted."""
    return sorted(line for line in lines if "::" in line)


def test_collection_skips_the_projects_packages_target_and_log_folders(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The integration_tests layout (``dbt_packages/shop -> ../..``, a loop) with no
    ``testpaths``: pytest collected the package's tests once per turn of the loop. The
    project's packages' install path, target path and log path (as dbt_project.yml sets
    them) are not walked; a path named on the command line still is."""
    from test_warm_parse import integration_tests_layout

    for name in list(os.environ):
        if name.startswith(("DBT_", "SHOP_")):
            monkeypatch.delenv(name)
    package = pytester.path / "shop"
    project = integration_tests_layout(package)
    with (project / "dbt_project.yml").open("a") as file:
        file.write("target-path: build_out\nlog-path: dbt_logs\n")
    test = "def test_{}():\n    pass\n"
    (package / "pytests" / "test_package.py").write_text(test.format("package"))
    for folder in ("pytests", "build_out", "dbt_logs", "target"):
        (project / folder).mkdir(exist_ok=True)
        (project / folder / f"test_in_{folder}.py").write_text(test.format(folder))
    monkeypatch.chdir(project)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q",
                                           "--no-dbt-tests")  # fmt: skip
    # rootdir is the package's (its pytest.ini). `target/` is no folder of this project's
    # (its target path is build_out): collected.
    assert _collected(result.stdout.lines) == [
        "integration_tests/pytests/test_in_pytests.py::test_pytests",
        "integration_tests/target/test_in_target.py::test_target",
    ]
    named = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q",
                                          "--no-dbt-tests", "dbt_packages/shop/pytests",
                                          "build_out")  # fmt: skip
    assert _collected(named.stdout.lines) == [
        "integration_tests/build_out/test_in_build_out.py::test_build_out",
        "integration_tests/dbt_packages/shop/pytests/test_package.py::test_package",
    ]
    # With the project's dbt tests (parsed through the loop): every item once.
    whole = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    ids = _collected(whole.stdout.lines)
    assert len(ids) == len(set(ids)), ids
    assert "integration_tests/pytests/test_in_pytests.py::test_pytests" in ids
    assert "integration_tests/dbt_project.yml::customers::build" in ids
