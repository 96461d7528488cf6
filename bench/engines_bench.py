"""Benchmark: dbtproof next to the dbt CLI on DuckDB, PostgreSQL and Spark, in one run.

For each engine, each in fresh processes:

* model unit tests: the project of ``run_model_bench.py`` (N models joining 2 or 3 of 10
  base models, a test each): ``pytest`` (dbtproof's ``dbt.run_model``) vs ``dbt test
  --select test_type:unit`` (dbt's native unit tests; the base models built first, not
  timed, as dbt reads their column types from the warehouse);
* data tests: the project of ``data_tests_bench.py`` (M chained table models over a seed,
  four data tests each): ``pytest dbt_project.yml`` vs ``dbt build``, both from an empty
  namespace and a warm parse.

Spark is dbt-spark's session method: a local Spark (``local[2]``) in the process, so every
figure includes that process's JVM start, as a CI job pays it, and a Hive metastore (Derby,
under the benchmark's folder) so that the tables ``dbt run`` builds are there for ``dbt
test`` in the next process, as on a Spark cluster.
PostgreSQL: ``BENCH_PG_*`` variables (default 127.0.0.1:5432, postgres, test). Usage, from
the repository root in the dev virtualenv::

    python bench/engines_bench.py --engines duckdb postgres spark --unit-tests 50 --models 50

Each figure is the fastest of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data_tests_bench  # noqa: E402 - the sibling benchmarks' projects
import run_model_bench  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def profile(engine: str, folder: Path, schema: str) -> str:
    """The ``bench`` profile of *engine*, writing into *schema* (Spark: its files in *folder*)."""
    if engine != "spark":
        return run_model_bench.profiles(engine, folder, schema)
    home = folder / "spark-cli"
    metastore = f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
    return textwrap.dedent(f"""
        bench:
          target: spark
          outputs:
            spark:
              type: spark
              method: session
              host: NA
              schema: {schema}
              threads: 1
              server_side_parameters:
                spark.master: "local[2]"
                spark.ui.enabled: "false"
                spark.sql.shuffle.partitions: "2"
                spark.sql.warehouse.dir: "{home / "warehouse"}"
                spark.hadoop.javax.jdo.option.ConnectionURL: "{metastore}"
                spark.driver.extraJavaOptions: "-Dderby.system.home={home}"
        """)


def fresh(engine: str, folder: Path, schema: str) -> None:
    """Empty what the dbt CLI wrote in *engine* (dbtproof drops its own namespaces)."""
    if engine == "duckdb":
        for path in folder.glob("*.duckdb*"):
            path.unlink()
    elif engine == "spark":
        shutil.rmtree(folder / "spark-cli", ignore_errors=True)
    else:
        connection = run_model_bench.pg_connect()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(
                "select nspname from pg_namespace where starts_with(nspname, %s)", (schema,)
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'drop schema "{name}" cascade')
        connection.close()


def best(command: list[str], cwd: Path, env: dict[str, str], repeat: int, before=None) -> float:
    """The fastest of *repeat* runs of *command* (each after *before*, untimed)."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        times.append(run_model_bench.timed(command, cwd, env))
    return min(times)


def unit_tests(engine: str, workdir: Path, n: int, repeat: int, env: dict[str, str]) -> dict:
    """run_model vs dbt's native unit tests on *engine*: wall times in seconds."""
    schema = f"bench_{secrets.token_hex(3)}"
    bindir = Path(sys.executable).parent
    native = run_model_bench.generate(workdir / f"{engine}_unit_dbt", n, "duckdb", schema, True)
    (native / "profiles.yml").write_text(profile(engine, native, schema))
    common = ["--project-dir", str(native), "--profiles-dir", str(native)]
    dbt = [str(bindir / "dbt"), "--no-use-colors"]
    try:
        run_model_bench.timed([*dbt, "run", "--select", "path:models/base", *common], native, env)
        t_dbt = best([*dbt, "test", "--select", "test_type:unit", *common], native, env, repeat)
    finally:
        fresh(engine, native, schema)
    ours = run_model_bench.generate(workdir / f"{engine}_unit_pytest", n, "duckdb", schema, False)
    (ours / "profiles.yml").write_text(profile(engine, ours, schema))
    pytest = [str(bindir / "pytest"), "-q", "-p", "no:cacheprovider", "pytests"]
    t_pytest = best(pytest, ours, env, repeat)
    return {"dbt test (unit)": t_dbt, "pytest run_model": t_pytest}


def data_tests(engine: str, workdir: Path, models: int, repeat: int, env: dict[str, str]) -> dict:
    """pytest dbt_project.yml vs dbt build on *engine*: wall times in seconds."""
    root = workdir / f"{engine}_data"
    shutil.rmtree(root, ignore_errors=True)
    data_tests_bench.write_project(root, models)
    schema = f"bench_{secrets.token_hex(3)}"
    (root / "profiles.yml").write_text(profile(engine, root, schema))
    bindir = Path(sys.executable).parent
    dbt = [str(bindir / "dbt"), "--no-use-colors"]
    pytest = [str(bindir / "pytest"), "-q", "-p", "no:cacheprovider"]
    # both warm: dbt's partial parse, dbtproof's parse cache
    run_model_bench.timed([*dbt, "parse", "--profiles-dir", "."], root, env)
    run_model_bench.timed([*pytest, "--collect-only", "dbt_project.yml"], root, env)
    try:
        t_dbt = best([*dbt, "build", "--profiles-dir", "."], root, env, repeat,
                     before=lambda: fresh(engine, root, schema))  # fmt: skip
    finally:
        fresh(engine, root, schema)
    t_pytest = best([*pytest, "dbt_project.yml"], root, env, repeat)
    return {"dbt build": t_dbt, "pytest dbt_project.yml": t_pytest}


def main() -> None:
    """Time both tools on every engine asked for; print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "postgres", "spark"])
    parser.add_argument("--unit-tests", type=int, default=50, help="model unit tests")
    parser.add_argument("--models", type=int, default=50, help="models of the data-test project")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["PYTHONPATH"] = str(ROOT / "src")
    rows = []
    with tempfile.TemporaryDirectory(prefix="dbtproof-engines-") as tmp:
        for engine in args.engines:
            units = unit_tests(engine, Path(tmp), args.unit_tests, args.repeat, env)
            data = data_tests(engine, Path(tmp), args.models, args.repeat, env)
            rows.append((engine, units, data))
            print(engine, units, data, flush=True)
    print(
        f"\n{args.unit_tests} model unit tests; {args.models} models with "
        f"{args.models * 4} data tests; fastest of {args.repeat}"
    )
    print("| engine | `pytest` (run_model) | `dbt test` (unit) | ratio | "
          "`pytest dbt_project.yml` | `dbt build` | ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for engine, units, data in rows:
        u_ours, u_dbt = units["pytest run_model"], units["dbt test (unit)"]
        d_ours, d_dbt = data["pytest dbt_project.yml"], data["dbt build"]
        print(
            f"| {engine} | {u_ours:.1f} s | {u_dbt:.1f} s | {u_ours / u_dbt:.2f} | "
            f"{d_ours:.1f} s | {d_dbt:.1f} s | {d_ours / d_dbt:.2f} |"
        )


if __name__ == "__main__":
    main()
