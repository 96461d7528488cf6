"""Benchmark: a project's dbt data tests run by pytest (dbtproof) vs ``dbt build``.

Generates a dbt project of N models (default 200) fed by a seed, each with four data
tests (unique, not_null, accepted_values, relationships to its parent), then times,
side by side in one run and each in a fresh process:

* ``dbt build`` (the dbt CLI: parse, build every model, run every test);
* ``pytest dbt_project.yml`` (dbtproof: parse, build every model and what the tests need, one
  item per model built and per test; the data tests many to a statement);
* with ``--unbatched``, also ``pytest -o dbt_batch_data_tests=false dbt_project.yml`` (every
  data test in ``dbt test``, as before batching).

Both start from an empty database and a warm parse (dbt's partial parse, dbtproof's
parse cache) each round. With ``--workers W`` also ``dbt build --threads W`` and
``pytest -n W dbt_project.yml``. Usage, from the repository root in the dev
virtualenv::

    python bench/data_tests_bench.py [--models 200] [--rounds 3] [--workers 2]
    python bench/data_tests_bench.py --models 1000 --tested-models 200 --workers 2
    python bench/data_tests_bench.py --models 1000 --tested-models 750 --unbatched
    python bench/data_tests_bench.py --target postgres --models 1000 --tested-models 750

``--target postgres`` runs both tools against the PostgreSQL server at 127.0.0.1:5432
(database ``test``, as ``postgres``; ``--pg-host``/``--pg-port``/``--pg-user`` change it) in a
schema of the bench's own, dropped before each round and at the end.

The targets (issue 28): pytest's wall time at most half of ``dbt build``'s; with
``--workers W`` on PostgreSQL, ``pytest -n W`` at most 0.7x ``pytest`` without ``-n`` and at most
``dbt build --threads W``.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

STATUSES = ("new", "open", "closed")


def duckdb_profile(root: Path) -> str:
    """The ``dev`` output of the project's profile on a DuckDB file in *root*."""
    return f"      type: duckdb\n      path: {root / 'bench.duckdb'}\n      schema: main\n"


def postgres_profile(host: str, port: int, user: str, schema: str) -> str:
    """The ``dev`` output of the project's profile on PostgreSQL, in *schema*."""
    return (
        f"      type: postgres\n      host: {host}\n      port: {port}\n      user: {user}\n"
        f"      password: ''\n      dbname: test\n      schema: {schema}\n"
    )


def write_project(root: Path, models: int, tested: int | None = None, output: str = "") -> None:
    """A project of *models* chained models over one seed, four data tests on each of the
    first *tested* (all by default); *output* is its profile's ``dev`` output (DuckDB in
    *root* by default)."""
    (root / "models").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "dbt_project.yml").write_text(
        "name: bench\nprofile: bench\nconfig-version: 2\n"
        "models:\n  bench:\n    +materialized: table\n"
    )
    (root / "profiles.yml").write_text(
        "bench:\n  target: dev\n  outputs:\n    dev:\n"
        + (output or duckdb_profile(root))
        + "      threads: 1\n"
    )
    rows = ["id,status,amount"] + [f"{i},{STATUSES[i % 3]},{i * 7 % 100}" for i in range(1, 51)]
    (root / "seeds" / "raw_items.csv").write_text("\n".join(rows) + "\n")
    schema = ["version: 2", "models:"]
    tested = models if tested is None else tested
    for index in range(models):
        parent = "{{ ref('raw_items') }}" if index < 10 else f"{{{{ ref('m_{index - 10}') }}}}"
        parent_name = "raw_items" if index < 10 else f"m_{index - 10}"
        (root / "models" / f"m_{index}.sql").write_text(
            f"select id, status, amount + {index} as amount from {parent}\n"
        )
        if index >= tested:
            continue
        schema += [
            f"  - name: m_{index}",
            "    columns:",
            "      - name: id",
            "        tests:",
            "          - unique",
            "          - not_null",
            f"          - relationships: {{to: \"ref('{parent_name}')\", field: id}}",
            "      - name: status",
            "        tests:",
            f"          - accepted_values: {{values: {list(STATUSES)}}}",
        ]
    (root / "models" / "schema.yml").write_text("\n".join(schema) + "\n")


def timed(command: list[str], cwd: Path, cpu: list[float] | None = None) -> float:
    """Wall time of *command* in a fresh process; fails loudly if it fails. Its CPU time
    (user + system, the command's processes only: not a database server's) is appended to
    *cpu* if given."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    """Generate the project, time both tools, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--tested-models",
        type=int,
        default=None,
        help="put the four data tests on this many models only (default: every model)",
    )
    parser.add_argument(
        "--unbatched",
        action="store_true",
        help="also time `pytest dbt_project.yml -o dbt_batch_data_tests=false` (every data "
        "test in `dbt test`, as before batching)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="also time `pytest -n W dbt_project.yml` and `dbt build --threads W`",
    )
    parser.add_argument("--target", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    schema = f"dbtproof_bench_{secrets.token_hex(3)}"
    psql = [
        "psql", "-h", args.pg_host, "-p", str(args.pg_port), "-U", args.pg_user, "-d", "test",
        "-qAtc",
    ]  # fmt: skip

    def empty_database(root: Path) -> None:
        """Remove what the last command built: the DuckDB file, or the bench's schemas."""
        (root / "bench.duckdb").unlink(missing_ok=True)
        if args.target == "postgres":
            drop = (
                "do $$ declare s text; begin for s in select nspname from pg_namespace where "
                f"nspname like '{schema}%' loop execute format('drop schema %I cascade', s); "
                "end loop; end $$"
            )
            quiet = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
            subprocess.run([*psql, drop], check=True, env=quiet)

    with tempfile.TemporaryDirectory(prefix="dbtproof-bench-") as tmp:
        root = Path(tmp) / "project"
        output = (
            postgres_profile(args.pg_host, args.pg_port, args.pg_user, schema)
            if args.target == "postgres"
            else ""
        )
        write_project(root, args.models, args.tested_models, output)
        try:
            run_cases(args, root, bindir, empty_database)
        finally:
            empty_database(root)


def run_cases(
    args: argparse.Namespace, root: Path, bindir: Path, empty_database: Callable[[Path], None]
) -> None:
    """Time every case *args* asks for, *args.rounds* times, in *root*; print the table."""
    tests = (args.models if args.tested_models is None else args.tested_models) * 4
    dbt = [str(bindir / "dbt"), "build", "--profiles-dir", "."]
    pytest = [str(bindir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cases = {
        "dbt build": dbt,
        "pytest dbt_project.yml": [*pytest, "dbt_project.yml"],
    }
    if args.unbatched:
        cases["pytest, unbatched"] = [
            *pytest, "-o", "dbt_batch_data_tests=false", "dbt_project.yml"
        ]  # fmt: skip
    if args.workers:
        cases[f"dbt build --threads {args.workers}"] = [*dbt, "--threads", str(args.workers)]
        cases[f"pytest -n {args.workers} dbt_project.yml"] = [
            *pytest, "-n", str(args.workers), "dbt_project.yml"
        ]  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, command in cases.items():
            # both tools start warm (dbt's partial parse, dbtproof's parse cache), as
            # on a developer's machine, from an empty database
            if name.startswith("pytest"):
                timed([*pytest, "--collect-only", "dbt_project.yml"], root)
            else:
                timed([str(bindir / "dbt"), "parse", "--profiles-dir", "."], root)
            shutil.rmtree(root / "logs", ignore_errors=True)
            empty_database(root)
            times[name].append(timed(command, root, cpu[name]))
    print(
        f"project: {args.models} models, {tests} data tests, {args.target}; "
        f"{args.rounds} rounds; load average {Path('/proc/loadavg').read_text().split()[:3]}"
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    cpus = {name: statistics.median(values) for name, values in cpu.items()}
    for name, values in times.items():
        print(f"{name:<32} median {medians[name]:7.2f} s  {sorted(values)}  cpu {cpus[name]:.2f} s")
    ratio = medians["pytest dbt_project.yml"] / medians["dbt build"]
    print(f"ratio pytest / dbt build  {ratio:.2f} (target <= 0.50)")
    cpu_ratio = cpus["pytest dbt_project.yml"] / cpus["dbt build"]
    print(f"cpu ratio pytest / dbt build  {cpu_ratio:.2f} (the tools' processes only)")
    if args.workers:
        parallel = medians[f"pytest -n {args.workers} dbt_project.yml"]
        threads = medians[f"dbt build --threads {args.workers}"]
        print(f"ratio pytest -n / dbt build --threads  {parallel / threads:.2f} (target <= 1)")
        serial = medians["pytest dbt_project.yml"]
        print(f"ratio pytest -n / pytest  {parallel / serial:.2f} (target <= 0.70)")


if __name__ == "__main__":
    main()
