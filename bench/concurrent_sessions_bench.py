"""Load: concurrent pytest sessions with ``-n 2`` each against one PostgreSQL server.

Copies the example project (examples/shop) once per session, with 200 tests (queries,
model runs on fixtures, a seed) besides the project's own dbt tests, then times, each
session in a fresh process group:

* one session alone;
* S sessions started together (default 4).

Every session must pass; each must have used a namespace of its own (the header lines);
no schema of the bench's prefix may be left once they end. Usage, from the repository
root in the dev virtualenv, with the PostgreSQL server at 127.0.0.1:5432::

    python bench/concurrent_sessions_bench.py [--sessions 4] [--tests 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"

TESTS = """
import pytest

from dbtproof import source


@pytest.mark.parametrize("n", range({queries}))
def test_query(dbt, n):
    assert dbt.query(f"select {{n}} as n") == [{{"n": n}}]


@pytest.mark.parametrize("n", range({models}))
def test_run_model(dbt, n):
    out = dbt.run_model(
        "stg_customers",
        given={{source("shop", "raw_customers"): [{{"customer_id": n, "email": "A@B"}}]}},
    )
    assert out == [{{"customer_id": n, "email": "a@b"}}]


def test_seed_and_read(dbt):
    dbt.seed(select="raw_customers")
    assert len(dbt.table("raw_customers")) > 0
"""


def make_project(folder: Path, prefix: str, tests: int) -> Path:
    """A copy of the example project with *tests* tests, its schemas under *prefix*."""
    shutil.copytree(SHOP, folder, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*"))
    (folder / "pytests" / "test_load.py").write_text(
        TESTS.format(queries=tests - tests // 2 - 1, models=tests // 2)
    )
    (folder / "pytest.ini").write_text(
        f"[pytest]\ndbt_target = postgres\ndbt_schema_prefix = {prefix}\n"
    )
    return folder


def leftovers(prefix: str) -> list[str]:
    """Schemas and roles of the bench's prefix in the test database."""
    connection = psycopg2.connect(host="127.0.0.1", port=5432, dbname="test", user="postgres")
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select nspname from pg_namespace where starts_with(nspname, %s) "
                "union all select rolname from pg_roles where starts_with(rolname, %s)",
                (prefix, prefix),
            )
            return [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()


def run_sessions(projects: list[Path]) -> tuple[float, list[str]]:
    """Start one ``pytest -n 2`` per project together; wall time and each one's namespace."""
    env = {**os.environ, "SHOP_PG_USER": "postgres", "SHOP_PG_DATABASE": "test"}
    started = time.perf_counter()
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for project in projects
    ]
    outputs = [run.communicate(timeout=1800)[0] for run in runs]
    wall = time.perf_counter() - started
    namespaces = []
    for run, output in zip(runs, outputs, strict=True):
        if run.returncode != 0 or not re.search(r"\d+ passed", output):
            sys.exit(f"a session failed (exit {run.returncode}):\n{output[-4000:]}")
        namespaces += re.findall(r"namespace (\S+)", output)[:1]
    return wall, namespaces


def main() -> None:
    """Time one session, then S concurrent ones; check that nothing collided or stayed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    prefix = "bench" + secrets.token_hex(3) + "_"
    with tempfile.TemporaryDirectory(prefix="dbtproof-load-") as tmp:
        projects = [
            make_project(Path(tmp) / f"s{n}", prefix, args.tests) for n in range(args.sessions)
        ]
        run_sessions(projects[:1])  # warm: the parse cache and the OS's file cache
        single, concurrent = [], []
        for _ in range(args.rounds):
            single.append(run_sessions(projects[:1])[0])
            wall, namespaces = run_sessions(projects)
            concurrent.append(wall)
            if len(set(namespaces)) != args.sessions:
                sys.exit(f"sessions shared a namespace: {namespaces}")
            left = leftovers(prefix)
            if left:
                sys.exit(f"left behind: {left}")
    print(f"{args.tests} tests per session (+ the project's dbt tests), -n 2 each")
    print(f"1 session:  {statistics.median(single):.1f} s (median of {args.rounds})")
    print(
        f"{args.sessions} sessions together: {statistics.median(concurrent):.1f} s wall "
        f"(median of {args.rounds}); all passed, {args.sessions} namespaces, nothing left"
    )


if __name__ == "__main__":
    main()
