"""Benchmark: model unit tests with dbtproof's ``dbt.run_model`` vs dbt's native unit tests.

Generates a dbt project with N models (each joining 2 or 3 refs of 10 base models) and
one unit test per model with 10 rows per input, written both as a dbtproof pytest test
and as a dbt native ``unit_tests:`` entry, then reports, side by side in one run:

* wall time of ``pytest`` (dbtproof) and of ``dbt test --select test_type:unit``, for
  each N (default 100 and 1000);
* the marginal cost per test: (T(N_max) - T(N_min)) / (N_max - N_min);
* the floor: the final SQL statements dbtproof ran, executed directly through the
  database driver (duckdb / psycopg2) in one process, same marginal;
* the pytest-only floor: the same N parameters to a test that uses no fixture (pytest's
  own collection and per-item cost, with the plugin loaded), same marginal;
* the load average (``/proc/loadavg``) after each N, and each command's CPU time (user +
  system of the process and its children) beside its wall time: with other work on the
  cores the CPU time moves much less.

Usage (from the repository root, in the dev virtualenv)::

    python bench/run_model_bench.py --target duckdb
    python bench/run_model_bench.py --target postgres   # PG* / BENCH_PG_* env vars

The dbt CLI needs the base models built for its unit tests (it reads their column types
from the warehouse); that ``dbt run`` is not timed. dbtproof builds nothing.

``--baseline-src DIR`` also times the pytest runs with another dbtproof source tree first
on ``PYTHONPATH`` (e.g. ``git archive <commit> src | tar -x -C /tmp/base``), interleaved
with the current one, so that a change is measured against its baseline in the same run;
``--repeat R`` keeps the fastest of R runs of each pytest timing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BASES = 10
ROWS = 10


def base_sql(index: int) -> str:
    """A base model: 10 typed rows."""
    return (
        f"select cast(g as integer) as id, cast(g * {index + 1} as integer) as x, "
        "cast(g * 2 as integer) as y, cast('l' || g as varchar(20)) as label\n"
        "from (select 1 as g union all select 2 union all select 3) as t\n"
    )


def model_refs(index: int) -> list[str]:
    """The refs of model *index*: 2 or 3 distinct base models."""
    count = 2 + index % 2
    return [f"base_{(index + k * 3) % BASES}" for k in range(count)]


def model_sql(index: int) -> str:
    refs = model_refs(index)
    sql = (
        f"select a.id, a.x + coalesce(b.y, 0) as total{', c.label' if len(refs) == 3 else ''}\n"
        f"from {{{{ ref('{refs[0]}') }}}} as a\n"
        f"left join {{{{ ref('{refs[1]}') }}}} as b on a.id = b.id\n"
    )
    if len(refs) == 3:
        sql += f"left join {{{{ ref('{refs[2]}') }}}} as c on a.id = c.id\n"
    return sql


def fixture_rows(ref_position: int) -> list[dict[str, object]]:
    if ref_position == 0:
        return [{"id": i, "x": i} for i in range(1, ROWS + 1)]
    if ref_position == 1:
        return [{"id": i, "y": 2 * i} for i in range(1, ROWS + 1)]
    return [{"id": i, "label": f"l{i}"} for i in range(1, ROWS + 1)]


def expected_rows(index: int) -> list[dict[str, object]]:
    three = len(model_refs(index)) == 3
    return [
        {"id": i, "total": 3 * i, **({"label": f"l{i}"} if three else {})}
        for i in range(1, ROWS + 1)
    ]


def profiles(target: str, project: Path, schema: str) -> str:
    if target == "duckdb":
        return textwrap.dedent(f"""
            bench:
              target: duckdb
              outputs:
                duckdb:
                  type: duckdb
                  path: "{project / "bench.duckdb"}"
                  schema: {schema}
                  threads: 1
            """)
    return textwrap.dedent(f"""
        bench:
          target: postgres
          outputs:
            postgres:
              type: postgres
              host: "{{{{ env_var('BENCH_PG_HOST', '127.0.0.1') }}}}"
              port: "{{{{ env_var('BENCH_PG_PORT', '5432') | as_number }}}}"
              user: "{{{{ env_var('BENCH_PG_USER', 'postgres') }}}}"
              password: "{{{{ env_var('BENCH_PG_PASSWORD', '') }}}}"
              dbname: "{{{{ env_var('BENCH_PG_DATABASE', 'test') }}}}"
              schema: {schema}
              threads: 1
        """)


def pg_connect():  # type: ignore[no-untyped-def]
    """A psycopg2 connection to the benchmark's PostgreSQL (``BENCH_PG_*`` variables)."""
    import psycopg2

    return psycopg2.connect(
        host=os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
        port=int(os.environ.get("BENCH_PG_PORT", "5432")),
        user=os.environ.get("BENCH_PG_USER", "postgres"),
        password=os.environ.get("BENCH_PG_PASSWORD", ""),
        dbname=os.environ.get("BENCH_PG_DATABASE", "test"),
    )


def generate(root: Path, n: int, target: str, schema: str, native: bool) -> Path:
    """Write the benchmark project with *n* models and tests into *root*.

    With *native*, the tests are dbt ``unit_tests:`` YAML (for the dbt CLI); without,
    they are the dbtproof pytest module only (each tool's project holds its own tests).
    """
    shutil.rmtree(root, ignore_errors=True)
    (root / "models" / "base").mkdir(parents=True)
    (root / "models" / "marts").mkdir(parents=True)
    (root / "pytests").mkdir()
    (root / "dbt_project.yml").write_text(
        'name: bench\nversion: "1.0.0"\nconfig-version: 2\nprofile: bench\n'
        "models:\n  bench:\n    base:\n      +materialized: table\n"
        "    marts:\n      +materialized: table\n"
    )
    (root / "profiles.yml").write_text(profiles(target, root, schema))
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = pytests\n")
    for i in range(BASES):
        (root / "models" / "base" / f"base_{i}.sql").write_text(base_sql(i))
    unit_tests = []
    cases = []
    for i in range(n):
        (root / "models" / "marts" / f"m_{i}.sql").write_text(model_sql(i))
        refs = model_refs(i)
        unit_tests.append(
            {
                "name": f"ut_m_{i}",
                "model": f"m_{i}",
                "given": [
                    {"input": f"ref('{r}')", "rows": fixture_rows(p)} for p, r in enumerate(refs)
                ],
                "expect": {"rows": expected_rows(i)},
            }
        )
        cases.append((f"m_{i}", refs, expected_rows(i)))
    if native:
        (root / "models" / "marts" / "unit_tests.yml").write_text(
            json.dumps({"version": 2, "unit_tests": unit_tests})
        )
    rows_by_position = [fixture_rows(p) for p in range(3)]
    (root / "pytests" / "test_models.py").write_text(
        "import pytest\nfrom dbtproof import ref\n\n"
        f"ROWS = {rows_by_position!r}\nCASES = {cases!r}\n\n\n"
        "@pytest.mark.parametrize(('model', 'refs', 'expected'), CASES)\n"
        "def test_model(dbt, model, refs, expected):\n"
        "    given = {ref(name): ROWS[position] for position, name in enumerate(refs)}\n"
        "    assert dbt.run_model(model, given=given) == expected\n"
    )
    # pytest's own cost per item: the same parameters, a test that uses no fixture.
    (root / "trivial").mkdir()
    (root / "trivial" / "test_trivial.py").write_text(
        "import pytest\n\n"
        f"CASES = {cases!r}\n\n\n"
        "@pytest.mark.parametrize(('model', 'refs', 'expected'), CASES)\n"
        "def test_trivial(model, refs, expected):\n"
        "    assert model and refs and expected\n"
    )
    return root


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run *command*; its wall time and its CPU time (user + system, its children's too),
    in seconds. The CPU time moves much less than the wall time when other work shares
    the cores."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"failed: {' '.join(command)} (exit {done.returncode})")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def load_average() -> str:
    """The 1, 5 and 15-minute load averages (``/proc/loadavg``), or "?" where unknown."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def with_src(env: dict[str, str], src: Path | None) -> dict[str, str]:
    """*env*, with *src* (a dbtproof source tree) first on PYTHONPATH when given."""
    if src is None:
        return env
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))}


def floor_statements(project: Path, target: str, bin_dir: Path) -> list[str]:
    """The statements dbtproof runs for the project's tests (captured in-process)."""
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from dbtproof import _dbt_compat as compat, ref
        from dbtproof.engine.request import ModelRunRequest
        from dbtproof.safety.namespace import new_run_id
        from dbtproof.session.session import DbtSession, SessionSettings
        sys.path.insert(0, {str(project / "pytests")!r})
        import test_models as t
        project = Path({str(project)!r})
        settings = SessionSettings(project_dir=project, profiles_dir=project,
                                   workdir=project / "floor_work", run_id=new_run_id("benchfl_"))
        session = DbtSession(settings).start()
        captured = []
        original = compat.cursor_fetch
        def cursor_fetch(adapter, sql):
            captured.append(sql)
            return original(adapter, sql)
        compat.cursor_fetch = cursor_fetch
        original_one = compat.fetch_one_select  # the model's statement
        def fetch_one_select(adapter, sql):
            captured.append(sql)
            return original_one(adapter, sql)
        compat.fetch_one_select = fetch_one_select
        # The first call's statements too: every statement of every test, the guard's
        # check of the warehouse after each call included.
        for model, refs, expected in t.CASES:
            given = {{ref(n): t.ROWS[p] for p, n in enumerate(refs)}}
            session.run_model(ModelRunRequest(model, given))
        session.teardown.run()
        json.dump(captured, open(project / "floor.json", "w"))
    """)
    env = dict(os.environ)
    subprocess.run([str(bin_dir / "python"), "-c", script], cwd=project, env=env, check=True)
    return json.loads((project / "floor.json").read_text())


def run_floor(statements: list[str], target: str) -> float:
    """Seconds to run *statements* directly through the driver, one connection."""
    if target == "duckdb":
        import duckdb

        connection = duckdb.connect()
        start = time.perf_counter()
        for sql in statements:
            connection.execute(sql).fetchall()
        return time.perf_counter() - start
    connection = pg_connect()
    cursor = connection.cursor()
    start = time.perf_counter()
    for sql in statements:
        cursor.execute(sql)
        cursor.fetchall()
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


def main() -> None:
    """Run the benchmark and print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="also time pytest with this dbtproof source tree (its parent of dbtproof/)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="fastest of R pytest runs")
    args = parser.parse_args()
    baseline = args.baseline_src.resolve() if args.baseline_src else None
    bin_dir = Path(sys.executable).parent
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dbtproof_bench_"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    results = []
    for n in sorted(args.n):
        schema = f"bench_{secrets.token_hex(3)}"
        project = generate(workdir / f"n{n}_dbt", n, args.target, schema, native=True)
        dbt = [str(bin_dir / "dbt"), "--no-use-colors"]
        common = ["--project-dir", str(project), "--profiles-dir", str(project)]
        timed([*dbt, "run", "--select", "path:models/base", *common], project, env)
        t_dbt, cpu_dbt = timed([*dbt, "test", "--select", "test_type:unit", *common], project, env)
        project = generate(workdir / f"n{n}_dbtproof", n, args.target, schema, native=False)
        # Only the dbtproof tests: not the dbt tests the plugin can also collect as items.
        pytest_cmd = [str(bin_dir / "pytest"), "-q", "-p", "no:cacheprovider", "pytests"]
        collect_cmd = [*pytest_cmd, "--collect-only"]
        # Start-up alone (import, dbt parse, collection): the rest is running the tests.
        # With a baseline, each of its runs goes right before the same run of this tree.
        versions = {"base": baseline, "": None} if baseline else {"": None}
        times: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            for label, src in versions.items():
                for kind, command in (("pytest", pytest_cmd), ("startup", collect_cmd)):
                    elapsed, cpu = timed(command, project, with_src(env, src))
                    times.setdefault(label + kind, []).append(elapsed)
                    times.setdefault(label + kind + "_cpu", []).append(cpu)
        for _ in range(args.repeat):  # the pytest-only floor: no fixture, no dbtproof work
            elapsed, cpu = timed([*pytest_cmd[:-1], "trivial"], project, env)
            times.setdefault("trivial", []).append(elapsed)
            times.setdefault("trivial_cpu", []).append(cpu)
        best = {key: min(values) for key, values in times.items()}
        t_pytest, t_startup = best["pytest"], best["startup"]
        statements = floor_statements(project, args.target, bin_dir)
        t_floor = run_floor(statements, args.target)
        t_tests = t_pytest - t_startup
        result = {
            "n": n,
            "pytest": t_pytest,
            "tests": t_tests,
            "dbt": t_dbt,
            "floor": t_floor,
            "trivial": best["trivial"],
            "pytest_cpu": best["pytest_cpu"],
            "tests_cpu": best["pytest_cpu"] - best["startup_cpu"],
            "dbt_cpu": cpu_dbt,
            "trivial_cpu": best["trivial_cpu"],
            "loadavg": load_average(),
        }
        if baseline:
            result["base_pytest"] = best["basepytest"]
            result["base_tests"] = best["basepytest"] - best["basestartup"]
            result["base_pytest_cpu"] = best["basepytest_cpu"]
        results.append(result)
        print(
            f"N={n:5d}  pytest+dbtproof {t_pytest:7.2f} s (of which running tests "
            f"{t_tests:6.2f} s)   dbt test {t_dbt:7.2f} s   floor {t_floor:6.3f} s   "
            f"speed-up {t_dbt / t_pytest:5.1f}x   pytest-only (no fixture) "
            f"{best['trivial']:6.2f} s   load {result['loadavg']}\n"
            f"        CPU time: pytest+dbtproof {best['pytest_cpu']:7.2f} s (running tests "
            f"{result['tests_cpu']:6.2f} s)   dbt test {cpu_dbt:7.2f} s   pytest-only "
            f"{best['trivial_cpu']:6.2f} s   ratio {cpu_dbt / best['pytest_cpu']:5.1f}x",
            flush=True,
        )
        if baseline:
            print(
                f"        baseline {result['base_pytest']:7.2f} s (of which running tests "
                f"{result['base_tests']:6.2f} s)   speed-up "
                f"{t_dbt / result['base_pytest']:5.1f}x   CPU time "
                f"{result['base_pytest_cpu']:7.2f} s",
                flush=True,
            )
        if args.target == "postgres":
            import psycopg2

            connection = psycopg2.connect(
                host=env.get("BENCH_PG_HOST", "127.0.0.1"),
                user=env.get("BENCH_PG_USER", "postgres"),
                password=env.get("BENCH_PG_PASSWORD", ""),
                dbname=env.get("BENCH_PG_DATABASE", "test"),
            )
            connection.autocommit = True
            connection.cursor().execute(f"drop schema if exists {schema} cascade")
            connection.close()
    if len(results) >= 2:
        low, high = results[0], results[-1]
        span = high["n"] - low["n"]
        keys = [
            k
            for k in (
                *("pytest", "tests", "dbt", "floor", "trivial", "base_pytest", "base_tests"),
                *("pytest_cpu", "tests_cpu", "dbt_cpu", "trivial_cpu", "base_pytest_cpu"),
            )
            if k in low
        ]
        marginal = {k: (high[k] - low[k]) / span * 1000 for k in keys}
        print(
            f"marginal per test: dbtproof {marginal['pytest']:.2f} ms end to end "
            f"({marginal['tests']:.2f} ms running tests), dbt CLI {marginal['dbt']:.2f} ms, "
            f"floor {marginal['floor']:.2f} ms (dbtproof running tests / floor "
            f"{marginal['tests'] / marginal['floor']:.1f}x), pytest-only (a test using no "
            f"fixture) {marginal['trivial']:.2f} ms\n"
            f"marginal CPU time per test: dbtproof {marginal['pytest_cpu']:.2f} ms end to end "
            f"({marginal['tests_cpu']:.2f} ms running tests), dbt CLI {marginal['dbt_cpu']:.2f} "
            f"ms, pytest-only {marginal['trivial_cpu']:.2f} ms"
        )
        if baseline:
            print(
                f"marginal per test, baseline: {marginal['base_pytest']:.2f} ms end to end "
                f"({marginal['base_tests']:.2f} ms running tests; / floor "
                f"{marginal['base_tests'] / marginal['floor']:.1f}x); CPU time "
                f"{marginal['base_pytest_cpu']:.2f} ms end to end"
            )
        results.append({"marginal_ms": marginal})
    if args.json:
        args.json.write_text(json.dumps({"target": args.target, "results": results}, indent=2))


if __name__ == "__main__":
    main()
