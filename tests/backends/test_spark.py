"""dbtproof on Apache Spark: dbt-spark's ``method: session``, a local Spark (``local[2]``)
whose warehouse directory and metastore dbtproof puts under pytest's basetemp.

The example project as users run it (``--dbt-target spark``, two xdist workers: a Spark
each, a database each) with ``run_model``'s Spark specifics (typed NULLs, the adapter's own
incremental strategies, merge refused on parquet as dbt refuses it, the row diff) in the
same run, to start few JVMs; Ctrl-C and a killed run with ``dbtproof clean``.
Whatever a run leaves is looked for where Spark keeps it: ``<warehouse>/<database>.db``.
The unit-test parity on Spark is in test_unit_parity.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from conftest import copy_shop
from spark_support import leftover_databases, require_spark, stray_files
from test_lifecycle_postgres import SLOW_TEST, start_pytest, wait_for

require_spark()

DBTPROOF = str(Path(sys.executable).parent / "dbtproof")
EXAMPLE_TESTS = 52  # the example's pytest tests and its dbt items (builds, data and unit tests)


def _spark_ini(shop: Path, prefix: str = "dbtproof_") -> None:
    (shop / "pytest.ini").write_text(
        f"[pytest]\ntestpaths = pytests\ndbt_target = spark\ndbt_schema_prefix = {prefix}\n"
    )


SPARK_MODELS = {
    "types.sql": "select typeof(customer_id) as id_type, typeof(first_name) as name_type,\n"
    "    typeof(signup_date) as date_type\nfrom {{ source('shop', 'raw_customers') }}\n",
    "order_log.sql": "{{ config(materialized='incremental', incremental_strategy='append',\n"
    "    file_format='parquet') }}\nselect order_id, status from {{ ref('stg_orders') }}\n"
    "{% if is_incremental() %}where order_id > (select max(order_id) from {{ this }}){% endif %}\n",
    "order_status.sql": "{{ config(materialized='incremental',\n"
    "    incremental_strategy='insert_overwrite', file_format='parquet', partition_by=['status'])\n"
    "}}\n"
    "select order_id, status from {{ ref('stg_orders') }}\n",
    # merge needs a table format with row updates (Delta, Iceberg, Hudi: jars a local Spark
    # here cannot download); on parquet dbt-spark refuses it, its build item too
    "order_merge.sql": "{{ config(materialized='incremental', incremental_strategy='merge',\n"
    "    file_format='parquet', unique_key='order_id') }}\n"
    "select order_id, status from {{ ref('stg_orders') }}\n",
}
SPARK_TESTS = """
import pytest

from dbtproof import DbtproofError, ref, source


def test_left_out_columns_are_typed_nulls(dbt):
    out = dbt.run_model("types", given={source("shop", "raw_customers"): [{"customer_id": 1}]})
    assert out == [{"id_type": "int", "name_type": "string", "date_type": "date"}]


def test_append_adds_the_new_rows(dbt):
    out = dbt.run_model(
        "order_log",
        given={ref("stg_orders"): [{"order_id": 1, "status": "placed"},
                                   {"order_id": 2, "status": "shipped"}]},
        this=[{"order_id": 1, "status": "placed"}],
        apply=True,
    )
    assert out == [{"order_id": 1, "status": "placed"}, {"order_id": 2, "status": "shipped"}]


def test_insert_overwrite_replaces_the_partitions_it_writes(dbt):
    out = dbt.run_model(
        "order_status",
        given={ref("stg_orders"): [{"order_id": 2, "status": "placed"}]},
        this=[{"order_id": 1, "status": "placed"}, {"order_id": 3, "status": "shipped"}],
        apply=True,
    )
    assert out == [{"order_id": 2, "status": "placed"}, {"order_id": 3, "status": "shipped"}]


def test_merge_is_refused_on_parquet_as_dbt_refuses_it(dbt):
    with pytest.raises(DbtproofError, match="You can only choose this strategy when file_format"):
        dbt.run_model(
            "order_merge",
            given={ref("stg_orders"): [{"order_id": 2, "status": "placed"}]},
            this=[{"order_id": 1, "status": "placed"}],
            apply=True,
        )


def test_a_wrong_expectation_shows_the_row_diff(dbt):
    out = dbt.run_model("stg_payments",
                        given={source("shop", "raw_payments"): [{"payment_id": 1, "amount": 100}]})
    assert out == [{"payment_id": 1, "amount": 2}]
"""


def test_the_example_suite_and_run_model_specifics_on_spark_with_two_workers(
    shop: Path, tmp_path: Path
) -> None:
    copy_shop(shop, with_example_tests=True)
    for name, sql in SPARK_MODELS.items():
        (shop / "models" / name).write_text(sql)
    (shop / "pytests" / "test_spark_models.py").write_text(SPARK_TESTS)
    basetemp = tmp_path / "basetemp"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--dbt-target", "spark",
         "-n", "2", f"--basetemp={basetemp}"],
        cwd=shop, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    output = run.stdout
    assert run.returncode == 1, output[-5000:]
    # the example's tests and dbt items, three new models' builds, four run_model tests; the
    # merge model's build fails as dbt's does
    assert re.search(rf"\b2 failed, {EXAMPLE_TESTS + 7} passed\b", output), output[-3000:]
    assert "FAILED dbt_project.yml::order_merge::build" in output, output[-3000:]
    assert "Invalid incremental strategy provided: merge" in output, output[-3000:]
    assert "FAILED pytests/test_spark_models.py::test_a_wrong_expectation_shows_the_row_diff" in (
        output
    ), output[-3000:]
    assert "Decimal('1.00')" in output, "the diff shows the row the model returned"
    warehouses = sorted(basetemp.glob("*/dbtproof/spark/warehouse"))
    assert len(warehouses) == 2, f"each worker has a Spark of its own: {warehouses}"
    assert sorted(w.parent.parent.parent.name for w in warehouses) == ["popen-gw0", "popen-gw1"]
    assert leftover_databases(basetemp) == [], "every database was dropped"
    assert stray_files(shop) == [], "nothing lands in the working folder"


def test_ctrl_c_drops_the_database_and_clean_finds_what_a_killed_run_left(
    shop: Path, tmp_path: Path
) -> None:
    _spark_ini(shop)
    (shop / "pytests" / "test_slow.py").write_text(
        SLOW_TEST.replace("dbt.seed()", "dbt.seed(select='raw_orders')")
    )
    basetemp = tmp_path / "interrupted"
    run = start_pytest(shop, f"--basetemp={basetemp}")
    wait_for(shop / "seeded", run, seconds=180)
    schema = (shop / "seeded").read_text()
    assert any(schema in db for db in leftover_databases(basetemp)), "it exists while it runs"
    os.killpg(run.pid, signal.SIGINT)  # PySpark's JVM ignores SIGINT: the drop can run
    output = run.communicate(timeout=180)[0]
    assert run.returncode == 2, output[-3000:]
    assert leftover_databases(basetemp) == [], output[-3000:]

    (shop / "seeded").unlink()
    basetemp = tmp_path / "killed"
    run = start_pytest(shop, f"--basetemp={basetemp}")
    wait_for(shop / "seeded", run, seconds=180)
    schema = (shop / "seeded").read_text()
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    assert any(schema in db for db in leftover_databases(basetemp)), "SIGKILL leaves it"

    def clean(*args: str) -> subprocess.CompletedProcess[str]:
        command = [DBTPROOF, "clean", "--target", "spark", "--older-than", "0m",
                   "--basetemp", str(basetemp), *args]  # fmt: skip
        return subprocess.run(command, cwd=shop, capture_output=True, text=True, timeout=120)

    listed = clean()
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert f"would drop {schema} " in listed.stdout, listed.stdout
    assert any(schema in db for db in leftover_databases(basetemp)), "listing drops nothing"
    dropped = clean("--execute")
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    assert f"dropping {schema} " in dropped.stdout, dropped.stdout
    assert leftover_databases(basetemp) == []
    assert stray_files(shop) == []
