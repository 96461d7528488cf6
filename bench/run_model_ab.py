"""A/B of the marginal cost of one more ``run_model`` test: two dbtproof source trees.

Runs ``pytest`` on the N=200 and N=1000 projects ``run_model_bench.py --workdir DIR``
generated (``DIR/n200_dbtproof``, ``DIR/n1000_dbtproof``), the two trees interleaved
round by round, and prints each run's wall and CPU time (user + system, children
included) with the load average, then each tree's marginal per test,
(T(1000) - T(200)) / 800, from the fastest runs and from the medians. No dbt CLI: its
figures come from ``run_model_bench.py`` in the same session.

    python bench/run_model_ab.py --workdir DIR --before /tmp/base/src --after src --rounds 5
"""

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (children included) of *command*."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    """Time both trees, interleaved, and print the marginals."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    pytest = str(Path(sys.executable).parent / "pytest")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for n in (200, 1000):
            for label, src in trees.items():
                project = args.workdir / f"n{n}_dbtproof"
                command = [pytest, "-q", "-p", "no:cacheprovider", "pytests"]
                wall, cpu = timed(command, project, {**env, "PYTHONPATH": str(src)})
                runs.setdefault((label, n), []).append((wall, cpu))
                load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
                print(f"{label} N={n} wall {wall:.2f} s CPU {cpu:.2f} s load {load}", flush=True)
    for label in trees:
        low = sorted(c for _, c in runs[(label, 200)])
        high = sorted(c for _, c in runs[(label, 1000)])
        low_wall = min(w for w, _ in runs[(label, 200)])
        high_wall = min(w for w, _ in runs[(label, 1000)])
        middle = len(low) // 2
        print(
            f"{label}: marginal CPU per test {(high[0] - low[0]) / 0.8:.2f} ms (fastest runs), "
            f"{(high[middle] - low[middle]) / 0.8:.2f} ms (medians); wall "
            f"{(high_wall - low_wall) / 0.8:.2f} ms (fastest runs)"
        )


if __name__ == "__main__":
    main()
