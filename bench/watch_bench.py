"""Benchmark: ``dbtproof watch`` — from saving one model to its affected tests' verdicts.

Generates the project of ``data_tests_bench.py`` (N chained table models over a seed, four
data tests each) plus one ``run_model`` pytest test per model, starts ``dbtproof watch
pytests dbt_project.yml`` on it, and then, S times, appends a comment to one model near
the end of a chain (its build item, its four data tests and its ``run_model`` test are
affected) and times from the save to the round's summary line. Side by side, in the
same run, the dbt CLI doing the same after the same kind of save, with everything built
once before (as a developer's own target would be): ``dbt build --select <model>+``
(dbt's warm partial parse, the build and the tests of what changed).

Usage, from the repository root in the dev virtualenv::

    python bench/watch_bench.py [--models 200] [--saves 10]

The target (issue 11): the median from save to verdicts is at most 1 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_tests_bench import timed, write_project  # noqa: E402


def write_tests(root: Path, models: int) -> None:
    """One ``run_model`` test per model, on two fixture rows."""
    lines = ["from dbtproof import ref", ""]
    for index in range(models):
        parent = "raw_items" if index < 10 else f"m_{index - 10}"
        lines += [
            f"def test_m_{index}(dbt):",
            f"    out = dbt.run_model('m_{index}', given={{ref('{parent}'): "
            "[{'id': 1, 'status': 'new', 'amount': 1}]})",
            f"    assert out == [{{'id': 1, 'status': 'new', 'amount': {1 + index}}}]",
            "",
        ]
    (root / "pytests").mkdir(exist_ok=True)
    (root / "pytests" / "test_models.py").write_text("\n".join(lines))
    (root / "pytest.ini").write_text("[pytest]\n")


class Watch:
    """``dbtproof watch`` on *root*, its output lines timed as they are read."""

    def __init__(self, root: Path, extra: list[str] | None = None, echo: str = "") -> None:
        self.echo = echo
        command = Path(sys.executable).with_name("dbtproof")
        self.process = subprocess.Popen(
            [str(command), "watch", "-q", "-p", "no:cacheprovider", *(extra or [])]
            + ["pytests", "dbt_project.yml"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self.ready = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if self.echo and line.startswith(self.echo):
                print(line.rstrip("\n"), flush=True)
            with self.ready:
                self.lines.append((time.perf_counter(), line.rstrip("\n")))
                self.ready.notify_all()

    def wait_for(self, text: str, after: int, timeout: float = 600) -> tuple[float, int]:
        """The time of the first line from index *after* containing *text*, and its index."""
        deadline = time.monotonic() + timeout
        with self.ready:
            while True:
                for index in range(after, len(self.lines)):
                    if text in self.lines[index][1]:
                        return self.lines[index][0], index + 1
                if time.monotonic() > deadline:
                    raise TimeoutError("\n".join(line for _, line in self.lines[-30:]))
                self.ready.wait(timeout=1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=120)


def main() -> None:
    """Generate the project, time each save, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument(
        "--pytest-arg",
        action="append",
        default=[],
        help="one more argument for the watched pytest (e.g. -p a_timing_plugin); repeatable",
    )
    parser.add_argument(
        "--show",
        default="",
        metavar="PREFIX",
        help="print the watched process's lines that start with PREFIX (e.g. round:)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dbtproof-watch-bench-"))
    try:
        write_project(root, args.models)
        write_tests(root, args.models)
        watch = Watch(root, args.pytest_arg, args.show)
        _, seen = watch.wait_for("dbtproof watch: watching", 0)
        rounds, dbt_cli = [], []
        for save in range(args.saves):
            model = root / "models" / f"m_{args.models - 1 - save % 10}.sql"
            time.sleep(0.3)  # a new mtime tick
            saved = time.perf_counter()
            model.write_text(model.read_text() + f"-- save {save}\n")
            done, seen = watch.wait_for(" in ", watch.wait_for("dbtproof watch: changed", seen)[1])
            rounds.append(done - saved)
            summary = watch.lines[seen - 1][1]
            print(f"save {save}: {rounds[-1]:.2f} s  ({summary.strip()})", flush=True)
        watch.stop()
        dbt = [str(Path(sys.executable).with_name("dbt")), "build", "--profiles-dir", "."]
        timed([*dbt, "--quiet"], root)  # everything built once, as a developer's dev target is
        for save in range(min(args.saves, 3)):
            model = root / "models" / f"m_{args.models - 1 - save % 10}.sql"
            model.write_text(model.read_text() + f"-- dbt save {save}\n")
            dbt_cli.append(timed([*dbt, "--select", f"{model.stem}+", "--quiet"], root))
        print(
            f"\n{args.models} models: dbtproof watch, save -> verdicts: median "
            f"{statistics.median(rounds):.2f} s (min {min(rounds):.2f}, max {max(rounds):.2f}, "
            f"{len(rounds)} saves); dbt build --select <model>+ after a save: median "
            f"{statistics.median(dbt_cli):.2f} s ({len(dbt_cli)} runs)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
