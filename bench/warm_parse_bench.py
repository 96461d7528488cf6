"""Benchmark: pytest's time to the first test with the warm parse vs dbt's own parse.

Generates the project of ``data_tests_bench.py`` (N chained table models over a seed,
four data tests each) plus one pytest test that uses the ``dbt`` fixture, then times,
side by side in one run, each in a fresh process and in rounds:

* ``dbt parse`` cold (no ``partial_parse.msgpack``) and warm (the same again);
* ``pytest pytests`` to its first test (the test writes the time it starts; the figure is
  that time minus the process's start): on a first run (no parse cache), on a second run
  of the unchanged project, and with the warm parse switched off (``dbt_warm_parse =
  false``, what every run paid before).

With ``--integration-tests-layout`` the generated models are a package's and the project
run is the package's ``integration_tests/`` folder, the package installed as ``dbt deps``
installs a local one: ``dbt_packages/bench -> ../..`` (a loop, as in the Tuva Project).

Usage, from the repository root in the dev virtualenv::

    python bench/warm_parse_bench.py [--models 200] [--rounds 3] [--integration-tests-layout]

The target (issues 11, 24): a second pytest run reaches its first test in no more than a
warm ``dbt parse`` takes; the ratio of the two, measured alternately in each round, is
printed last.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_tests_bench import timed as run  # noqa: E402
from data_tests_bench import write_project  # noqa: E402

FIRST_TEST = """import time
from pathlib import Path


def test_first(dbt):
    Path(__file__).with_name("first_test_at").write_text(repr(time.time()))
    assert dbt.schema
"""


def integration_tests_layout(package: Path, models: int) -> Path:
    """The benchmark's models as the package *package*, whose ``integration_tests/``
    folder is the project (one model of its own over the package's last), the package
    symlinked back: ``dbt_packages/bench -> ../..``. Returns the project's folder."""
    write_project(package, models)
    project = package / "integration_tests"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: bench_integration_tests\nprofile: bench\nconfig-version: 2\n"
    )
    (project / "packages.yml").write_text("packages:\n  - local: ../\n")
    shutil.copy(package / "profiles.yml", project / "profiles.yml")
    (project / "models" / "last_count.sql").write_text(
        f"select count(*) as n from {{{{ ref('m_{models - 1}') }}}}\n"
    )
    (project / "dbt_packages").mkdir()
    (project / "dbt_packages" / "bench").symlink_to(Path("..") / "..")
    return project


def to_first_test(root: Path, warm: bool) -> float:
    """Seconds from starting ``pytest pytests`` to its first test starting."""
    (root / "pytest.ini").write_text(
        f"[pytest]\ntestpaths = pytests\ndbt_warm_parse = {'true' if warm else 'false'}\n"
    )
    marker = root / "pytests" / "first_test_at"
    marker.unlink(missing_ok=True)
    start = time.time()
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "pytests"], root)
    return float(marker.read_text()) - start


def main() -> None:
    """Generate the project, time each case per round, print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--integration-tests-layout",
        action="store_true",
        help="run the package's integration_tests/ project, dbt_packages/bench -> ../..",
    )
    args = parser.parse_args()
    dbt = str(Path(sys.executable).with_name("dbt"))
    with tempfile.TemporaryDirectory(prefix="warm-parse-bench-") as folder:
        if args.integration_tests_layout:
            root = integration_tests_layout(Path(folder) / "bench", args.models)
        else:
            root = Path(folder)
            write_project(root, args.models)
        (root / "pytests").mkdir()
        (root / "pytests" / "test_first.py").write_text(FIRST_TEST)
        dbt_args = ["--profiles-dir", str(root), "--no-write-json"]
        cases: dict[str, list[float]] = {
            "dbt parse, cold": [],
            "dbt parse, warm": [],
            "pytest to first test, warm parse off": [],
            "pytest to first test, first run": [],
            "pytest to first test, second run": [],
        }
        for _ in range(args.rounds):
            shutil.rmtree(root / "target", ignore_errors=True)
            cases["dbt parse, cold"].append(run([dbt, "parse", *dbt_args], root))
            cases["pytest to first test, warm parse off"].append(to_first_test(root, False))
            cases["pytest to first test, first run"].append(to_first_test(root, True))
            # the two the target compares, one right after the other (pytest leaves dbt's
            # own partial-parse file alone: this parse is warm)
            cases["dbt parse, warm"].append(run([dbt, "parse", *dbt_args], root))
            cases["pytest to first test, second run"].append(to_first_test(root, True))
        layout = ", integration_tests layout" if args.integration_tests_layout else ""
        print(f"models: {args.models}, rounds: {args.rounds}{layout}")
        print("| case | median | rounds |")
        print("|---|---|---|")
        for name, times in cases.items():
            rounds = ", ".join(f"{t:.2f}" for t in times)
            print(f"| {name} | {statistics.median(times):.2f} s | {rounds} s |")
        ratios = [
            second / warm
            for second, warm in zip(
                cases["pytest to first test, second run"], cases["dbt parse, warm"], strict=True
            )
        ]
        print(
            f"second run / warm dbt parse: {statistics.median(ratios):.2f}x median "
            f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})"
        )


if __name__ == "__main__":
    main()
