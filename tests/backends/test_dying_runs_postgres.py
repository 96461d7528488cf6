"""Dying runs on the real PostgreSQL server: SIGINT, SIGTERM and SIGKILL of the pytest
process, of an xdist controller and of one xdist worker, mid-test.

After SIGINT or SIGTERM nothing is left; after SIGKILL, ``dbtproof clean`` lists exactly
the schemas that were left, and drops them. A worker that cannot drop its namespace says
so through the controller.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import pg_namespaces, pg_schemas, superuser_connection
from test_lifecycle_postgres import DBTPROOF, start_pytest

#: Each test seeds, says where it runs (pid and schema) and waits until told to finish.
WAITING_TESTS = """
import os
import time
from pathlib import Path


def _wait(dbt, config):
    dbt.seed(select="raw_customers")
    # not PYTEST_XDIST_WORKER: a run without xdist inherits the outer suite's
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    Path(f"seeded_{worker}.tmp").write_text(f"{os.getpid()} {dbt.schema}")
    os.replace(f"seeded_{worker}.tmp", f"seeded_{worker}")
    deadline = time.monotonic() + 90
    while not Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_one(dbt, pytestconfig):
    _wait(dbt, pytestconfig)


def test_two(dbt, pytestconfig):
    _wait(dbt, pytestconfig)
"""


def _started(shop: Path, *args: str, workers: int = 0) -> tuple[subprocess.Popen[str], dict]:
    """Start pytest on the waiting tests; return it and, per worker, (pid, schema) once
    every worker is inside a test."""
    (shop / "pytests" / "test_waiting.py").write_text(WAITING_TESTS)
    xdist = ("-n", str(workers)) if workers else ("-p", "no:xdist")
    run = start_pytest(shop, "pytests", *xdist, *args)
    names = [f"gw{n}" for n in range(workers)] or ["main"]
    deadline = time.monotonic() + 120
    while not all((shop / f"seeded_{name}").exists() for name in names):
        if run.poll() is not None:
            pytest.fail(f"pytest ended before every test started:\n{run.stdout.read()}")
        if time.monotonic() > deadline:
            os.killpg(run.pid, signal.SIGKILL)
            pytest.fail("the tests did not start within 120 s")
        time.sleep(0.1)
    seen = {}
    for name in names:
        pid, schema = (shop / f"seeded_{name}").read_text().split()
        seen[name] = (int(pid), schema)
    return run, seen


def _clean(shop: Path, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [DBTPROOF, "clean", "--target", "postgres", "--prefix", prefix, "--older-than", "0m"]
    return subprocess.run([*command, *args], cwd=shop, capture_output=True, text=True, timeout=120)


def _dropped_by_clean(shop: Path, prefix: str) -> set[str]:
    """What ``dbtproof clean --execute`` drops of the runs under *prefix*."""
    done = _clean(shop, prefix, "--execute")
    assert done.returncode == 0, done.stderr
    return set(re.findall(rf"dropping ({re.escape(prefix)}\S+) \(created", done.stdout))


def _gone(pid: int, seconds: float = 60) -> None:
    """Wait until process *pid* has ended (a zombie has: its parent died without reaping it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.1)
    pytest.fail(f"process {pid} still runs {seconds} s later")


def test_sigterm_to_the_pytest_process_drops_the_namespace(shop: Path, shop_pg: str) -> None:
    # (SIGINT: test_lifecycle_postgres.py)
    run, seen = _started(shop)
    assert pg_namespaces(shop_pg) == [seen["main"][1]]
    os.kill(run.pid, signal.SIGTERM)  # the process alone, as `docker stop` or `timeout` does
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 2, output  # interrupted
    assert pg_schemas(shop_pg) == [], output


def test_sigterm_to_the_xdist_controller_drops_every_worker_namespace(
    shop: Path, shop_pg: str
) -> None:
    run, seen = _started(shop, workers=2)
    assert set(pg_namespaces(shop_pg)) == {schema for _, schema in seen.values()}
    os.kill(run.pid, signal.SIGTERM)  # the controller alone: it passes it on to its workers
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 2, output
    assert pg_schemas(shop_pg) == [], output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_one_worker_drops_its_namespace_and_fails_the_run(
    shop: Path, shop_pg: str, sig: signal.Signals
) -> None:
    run, seen = _started(shop, "--max-worker-restart=0", workers=2)  # no replacement to wait for
    os.kill(seen["gw0"][0], sig)
    (shop / "release").touch()  # the other worker's test ends
    output = run.communicate(timeout=120)[0]
    assert run.returncode != 0, output
    assert "keyboard-interrupt" in output or "KeyboardInterrupt" in output, output
    assert pg_schemas(shop_pg) == [], output


def test_clean_finds_exactly_what_a_killed_worker_left(shop: Path, shop_pg: str) -> None:
    run, seen = _started(shop, "--max-worker-restart=0", workers=2)
    os.kill(seen["gw0"][0], signal.SIGKILL)
    (shop / "release").touch()
    output = run.communicate(timeout=180)[0]
    assert run.returncode != 0, output
    assert "crashed" in output, output
    left = set(pg_schemas(shop_pg))
    assert seen["gw0"][1] in left, "SIGKILL leaves the killed worker's schema"
    assert seen["gw1"][1] not in left, "the other worker dropped its own"
    assert _dropped_by_clean(shop, shop_pg) == left
    assert pg_schemas(shop_pg) == []


def test_clean_finds_exactly_what_a_killed_controller_left(shop: Path, shop_pg: str) -> None:
    run, seen = _started(shop, workers=2)
    os.kill(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    for pid, _ in seen.values():  # orphaned workers end (execnet interrupts them)
        _gone(pid, seconds=90)
    left = set(pg_schemas(shop_pg))
    assert _dropped_by_clean(shop, shop_pg) == left
    assert pg_schemas(shop_pg) == []


BLOCKING_TEST = """
import psycopg2


def test_gives_its_schema_away(dbt):
    connection = psycopg2.connect(host="127.0.0.1", port=5432, dbname="test", user="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'alter schema "{dbt.schema}" owner to postgres')
    connection.close()
"""


@pytest.mark.parametrize("workers", [["-n", "1"], []], ids=["xdist-worker", "no-xdist"])
def test_a_run_that_cannot_drop_its_namespace_says_so_and_fails(
    pytester: pytest.Pytester, shop: Path, shop_pg: str, workers: list[str]
) -> None:
    (shop / "pytests" / "test_blocking.py").write_text(BLOCKING_TEST)
    result = pytester.runpytest_subprocess("pytests", *workers)
    output = result.stdout.str()
    [schema] = pg_namespaces(shop_pg)
    assert "dbtproof: left in the warehouse" in output, output
    assert f"dbtproof: could not drop namespace {schema}: " in output, output
    assert "must be owner of schema" in output, output
    assert "Run `dbtproof clean --older-than 0m`" in output
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output  # something was left behind
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute(f'drop schema "{schema}" cascade')


def test_sigterm_on_duckdb_removes_the_run_folder(shop: Path) -> None:
    basetemp = shop.parent / f"{shop.name}-basetemp"
    run, seen = _started(shop, f"--basetemp={basetemp}", "--dbt-target", "dev")
    folder = basetemp / "dbtproof" / seen["main"][1]
    assert (folder / "shop.duckdb").is_file() or list(folder.glob("*.duckdb")), list(
        folder.iterdir()
    )
    os.kill(run.pid, signal.SIGTERM)
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 2, output
    assert not folder.exists(), output
