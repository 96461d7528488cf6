"""Benchmark: one ``dbt.run_model`` call on a 200,000-row fixture, next to ``dbt seed``.

Generates a dbt project with a source ``raw.events`` (columns declared with their
types), a source ``raw.loose`` (nothing declared: the fixture's values type it), a model
that aggregates each, and a seed ``events.csv`` holding the same rows. Then, in one run,
for the target given:

* ``run_model``: a fresh process starts a dbtproof session, builds the fixture (a list
  of N dicts: an integer, a string, a decimal, a timestamp and a boolean per row; not
  timed), runs the model once on its first 1,000 rows (a first call's one-time costs),
  then times one ``session.run_model("event_totals", given={source: rows})`` (wall and
  CPU time of the process, every thread: less sensitive to a loaded machine)
  (``--shape undeclared``: ``loose_totals`` on ``raw.loose``; ``--shape null-column``: the
  same with a sixth column of NULLs only, which nothing types) and reads the process's
  peak resident memory during that call (Linux: the high-water mark is reset just before
  it, ``/proc/self/clear_refs``) and over the whole process;
* ``dbt seed``: the dbt CLI loading the same rows from the CSV file: wall time of the
  command and its peak resident memory.

Usage (from the repository root, in the dev virtualenv)::

    python bench/large_fixture_bench.py --target duckdb
    python bench/large_fixture_bench.py --target postgres   # BENCH_PG_* env vars
    python bench/large_fixture_bench.py --target duckdb --rows 200000 --rounds 3
    python bench/large_fixture_bench.py --target duckdb --shape undeclared --no-seed

Each figure is the median of ``--rounds`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run_model_bench import pg_connect, profiles  # bench/ (the script's folder) is on sys.path

SOURCE_YML = """
version: 2
sources:
  - name: raw
    schema: "{{ target.schema }}"
    tables:
      - name: events
        columns:
          - {name: event_id, data_type: integer}
          - {name: kind, data_type: varchar}
          - {name: amount, data_type: "numeric(12, 2)"}
          - {name: happened_at, data_type: timestamp}
          - {name: is_test, data_type: boolean}
      - name: loose
"""

MODEL_SQL = """
select kind, count(*) as events, sum(amount) as amount, max(happened_at) as last_at
from {{ source('raw', 'events') }}
where not is_test
group by kind
"""
LOOSE_SQL = MODEL_SQL.replace("'events'", "'loose'")

SEEDS_YML = """
version: 2
seeds:
  - name: events
    config:
      column_types: {event_id: integer, kind: varchar, amount: "numeric(12, 2)",
                     happened_at: timestamp, is_test: boolean}
"""

CHILD = """
import json, os, sys, time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from dbtproof import source
from dbtproof.safety.namespace import new_run_id
from dbtproof.session.session import DbtSession, SessionSettings


def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


project, rows, shape = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
settings = SessionSettings(project_dir=project, profiles_dir=project,
                           workdir=project / "work", run_id=new_run_id("benchlf_"))
session = DbtSession(settings).start()
start = datetime(2024, 1, 1)
fixture = [
    {"event_id": i, "kind": f"kind_{i % 7}", "amount": Decimal(i % 10000) / 100,
     "happened_at": start + timedelta(seconds=i), "is_test": i % 11 == 0}
    for i in range(rows)
]
if shape == "null-column":
    fixture = [{**row, "note": None} for row in fixture]
model, key = ("event_totals", "events") if shape == "declared" else ("loose_totals", "loose")
# Warm: a first call pays one-time costs (the engine's dialect, importing numpy).
session.run_model(model, given={source("raw", key): fixture[:1000]})
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")
began, cpu = time.perf_counter(), time.process_time()
out = session.run_model(model, given={source("raw", key): fixture})
seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
peak = status("VmHWM")
assert sum(row["events"] for row in out) == rows - len(range(0, rows, 11)), list(out)
session.teardown()
print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_before_mb": before, "peak_mb": peak}))
"""


def generate(root: Path, target: str, rows: int, schema: str) -> None:
    """Write the project (source, model, seed of *rows* rows) into *root*."""
    shutil.rmtree(root, ignore_errors=True)
    for folder in ("models", "seeds"):
        (root / folder).mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        'name: bench\nversion: "1.0.0"\nconfig-version: 2\nprofile: bench\n'
    )
    (root / "profiles.yml").write_text(profiles(target, root, schema))
    (root / "models" / "sources.yml").write_text(SOURCE_YML)
    (root / "models" / "event_totals.sql").write_text(MODEL_SQL)
    (root / "models" / "loose_totals.sql").write_text(LOOSE_SQL)
    (root / "seeds" / "seeds.yml").write_text(SEEDS_YML)
    lines = ["event_id,kind,amount,happened_at,is_test"]
    for i in range(rows):
        second = i
        stamp = f"2024-01-{1 + second // 86400:02d} {second % 86400 // 3600:02d}:"
        stamp += f"{second % 3600 // 60:02d}:{second % 60:02d}"
        lines.append(f"{i},kind_{i % 7},{i % 10000 / 100:.2f},{stamp},{str(i % 11 == 0).lower()}")
    (root / "seeds" / "events.csv").write_text("\n".join(lines) + "\n")


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--shape", choices=["declared", "undeclared", "null-column"], default="declared"
    )
    parser.add_argument("--no-seed", action="store_true", help="skip timing dbt seed")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    root = Path(tempfile.mkdtemp(prefix="dbtproof_large_"))
    schema = f"bench_large_{os.getpid()}"
    try:
        generate(root, args.target, args.rows, schema)
        engine = []
        for _ in range(args.rounds):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(root), str(args.rows), args.shape],
                cwd=root, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"run_model failed:\n{done.stdout}\n{done.stderr}")
            engine.append(json.loads(done.stdout.strip().splitlines()[-1]))
        seeds = []
        for _ in range(0 if args.no_seed else args.rounds):
            command = [str(bin_dir / "dbt"), "seed", "--project-dir", str(root),
                       "--profiles-dir", str(root), "--full-refresh"]  # fmt: skip
            seeds.append(_child_run(command, root))
        median = statistics.median
        print(
            f"target {args.target}, {args.rows} rows, {args.shape} source, median of "
            f"{args.rounds} rounds"
        )
        print(
            f"  run_model: {median(r['seconds'] for r in engine):.2f} s, peak "
            f"{median(r['peak_mb'] for r in engine):.0f} MB resident during the call "
            f"(process at {median(r['rss_before_mb'] for r in engine):.0f} MB before it)"
        )
        print("  rounds, run_model: " + ", ".join(f"{r['seconds']:.2f} s" for r in engine))
        print("  rounds, CPU time:  " + ", ".join(f"{r['cpu']:.2f} s" for r in engine))
        print("  rounds, peak:      " + ", ".join(f"{r['peak_mb']:.0f} MB" for r in engine))
        if seeds:
            print(
                f"  dbt seed:  {median(s[0] for s in seeds):.2f} s (whole command), peak "
                f"{median(s[1] for s in seeds):.0f} MB resident"
            )
            print("  rounds, dbt seed:  " + ", ".join(f"{s[0]:.2f} s" for s in seeds))
    finally:
        if args.target == "postgres":
            _drop_pg_schema(schema)
        shutil.rmtree(root, ignore_errors=True)


def _child_run(command: list[str], cwd: Path) -> tuple[float, float]:
    """(seconds, peak resident MB) of *command*, measured on that child alone."""
    began = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024


def _drop_pg_schema(schema: str) -> None:
    """Drop the schema ``dbt seed`` loaded into."""
    connection = pg_connect()
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'drop schema if exists "{schema}" cascade')
    connection.close()


if __name__ == "__main__":
    main()
