"""Benchmark: the compile of each data test, dbt's ``Compiler`` against the batched tests' own.

The batched data tests (``plugin/batched_tests.py``) compile each test with dbt's compiler
(``_dbt_compat/test_kwargs.py``: a generic test's keyword arguments and SQL rendered from
templates compiled once, the context read through a ``ChainMap``). This generates the
project of ``data_tests_bench.py`` (chained models over a seed, four data tests on each of the
first *tested*), parses it with dbt, compiles every test with dbt's own ``Compiler`` and with
dbtproof's, alternately, *rounds* times, and prints the milliseconds per test of each and
whether every compiled SQL is the same. Usage, from the repository root in the dev
virtualenv::

    python bench/data_test_compile_bench.py [--models 1000] [--tested-models 750] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from data_tests_bench import write_project  # noqa: E402


def main() -> None:
    """Generate, parse, compile every test both ways, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--tested-models", type=int, default=750)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from dbt.cli.main import dbtRunner
    from dbt.compilation import Compiler
    from dbt.config.runtime import RuntimeConfig
    from dbt.flags import get_flags

    from dbtproof._dbt_compat.test_kwargs import test_compiler

    with tempfile.TemporaryDirectory(prefix="dbtproof-compile-bench-") as tmp:
        root = Path(tmp) / "project"
        write_project(root, args.models, args.tested_models)
        os.chdir(root)
        manifest = dbtRunner().invoke(["parse", "--profiles-dir", ".", "--quiet"]).result
        # a compile of one model registers the adapter and sets dbt's flags
        dbtRunner(manifest=manifest).invoke(
            ["compile", "--profiles-dir", ".", "--quiet", "--select", "m_0"]
        )
        config = RuntimeConfig.from_args(get_flags())
        tests = sorted(uid for uid in manifest.nodes if uid.startswith("test."))
        compilers = {
            "dbt's Compiler": lambda: Compiler(config),
            "dbtproof's": lambda: test_compiler(config),
        }
        times: dict[str, list[float]] = {name: [] for name in compilers}
        compiled: dict[str, list[str]] = {}
        for _ in range(args.rounds):
            for name, make in compilers.items():
                compiler = make()
                start = time.perf_counter()
                found = [
                    str(
                        compiler.compile_node(
                            manifest.nodes[uid], manifest, {}, False
                        ).compiled_code
                    )
                    for uid in tests
                ]
                times[name].append((time.perf_counter() - start) / len(tests) * 1000)
                compiled.setdefault(name, found)
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"{len(tests)} data tests of {args.models} models; load average {load}")
        for name, values in times.items():
            print(
                f"{name:<16} {min(values):6.2f} ms a test (rounds: {[round(v, 2) for v in values]})"
            )
        same = len({tuple(sql) for sql in compiled.values()}) == 1
        print(f"the same compiled SQL for every test: {same}")


if __name__ == "__main__":
    main()
