"""Namespaces on the real PostgreSQL server: concurrent runs, Ctrl-C, SIGKILL, `dbtproof clean`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLE_ACCESS_TESTS, PG_PASSWORD, copy_shop, pg_namespaces, pg_schemas

DBTPROOF = str(Path(sys.executable).parent / "dbtproof")

SLOW_TEST = """
import time
from pathlib import Path

def test_hangs_after_seeding(dbt):
    dbt.seed()
    Path("seeded").write_text(dbt.schema)
    time.sleep(120)
"""


def start_pytest(folder: Path, *args: str) -> subprocess.Popen[str]:
    """Start pytest in *folder* as a user would, in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 90) -> None:
    """Wait until *path* exists, failing early if *process* ends first."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"pytest ended before {path.name} appeared:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{path.name} did not appear within {seconds} s")
        time.sleep(0.2)


def test_two_concurrent_xdist_runs_pass_and_leave_nothing(shop: Path, shop_pg: str) -> None:
    runs = []
    for name in ("a", "b"):
        folder = copy_shop(shop / name, with_example_tests=True)
        # as_role("reporter") needs that role: test_grants_postgres.py tests it
        (folder / "pytests" / EXAMPLE_ACCESS_TESTS).unlink()
        (folder / "pytest.ini").write_text((shop / "pytest.ini").read_text())
        runs.append(start_pytest(folder, "-n", "2"))
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert re.search(r"== \d\d+ passed in ", output), output
        assert PG_PASSWORD not in output, "no credential in any output"
    namespaces = {line.split("namespace ")[-1] for o in outputs for line in o.splitlines()
                  if line.startswith("dbtproof: project")}  # fmt: skip
    assert len(namespaces) == 2, f"each run has its own namespace: {namespaces}"
    assert pg_schemas(shop_pg) == []


def test_ctrl_c_mid_run_drops_the_namespace(shop: Path, shop_pg: str) -> None:
    (shop / "pytests" / "test_slow.py").write_text(SLOW_TEST)
    run = start_pytest(shop)
    wait_for(shop / "seeded", run)
    schema = (shop / "seeded").read_text()
    assert pg_namespaces(shop_pg) == [schema], "the run's schema exists while it runs"
    os.killpg(run.pid, signal.SIGINT)
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 2, output  # pytest's exit code for an interrupted run
    assert "KeyboardInterrupt" in output
    assert pg_schemas(shop_pg) == []


SLOW_MODEL_TEST = """
from pathlib import Path

def test_runs_a_slow_model(dbt):
    dbt.seed()
    Path("seeded").write_text(dbt.schema)
    dbt.run(select="slow")
"""


def test_ctrl_c_during_a_dbt_invocation_drops_the_namespace(shop: Path, shop_pg: str) -> None:
    (shop / "models" / "slow.sql").write_text(
        "{{ config(materialized='table') }}\nselect count(*) as slept from pg_sleep(120)\n"
    )
    (shop / "pytests" / "test_slow.py").write_text(SLOW_MODEL_TEST)
    run = start_pytest(shop, "pytests")
    wait_for(shop / "seeded", run)
    time.sleep(3)  # well inside `dbt run`, waiting on pg_sleep
    started = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 2, output
    assert time.monotonic() - started < 60, "dbt cancels the running query"
    assert pg_schemas(shop_pg) == []


def test_clean_finds_and_drops_what_a_killed_run_left(shop: Path, shop_pg: str) -> None:
    (shop / "pytests" / "test_slow.py").write_text(SLOW_TEST)
    run = start_pytest(shop)
    wait_for(shop / "seeded", run)
    schema = (shop / "seeded").read_text()
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    assert pg_namespaces(shop_pg) == [schema], "SIGKILL leaves the schema behind"

    def clean(*args: str) -> subprocess.CompletedProcess[str]:
        command = [DBTPROOF, "clean", "--target", "postgres", "--prefix", shop_pg, *args]
        return subprocess.run(command, cwd=shop, capture_output=True, text=True, timeout=120)

    young = clean("--older-than", "1h")
    assert young.returncode == 0, young.stderr
    assert "no namespace older than 1h" in young.stdout

    listed = clean("--older-than", "0m")
    assert listed.returncode == 0, listed.stderr
    assert f"would drop {schema} (created " in listed.stdout
    assert "rerun with --execute" in listed.stdout
    assert pg_namespaces(shop_pg) == [schema], "without --execute nothing is dropped"

    dropped = clean("--older-than", "0m", "--execute")
    assert dropped.returncode == 0, dropped.stderr
    assert f"dropping {schema}" in dropped.stdout
    assert pg_schemas(shop_pg) == []


def test_clean_rejects_a_bad_age(shop: Path) -> None:
    result = subprocess.run(
        [DBTPROOF, "clean", "--older-than", "yesterday"], cwd=shop, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "dbtproof: cannot read the age 'yesterday'" in result.stderr
