"""One suite split across CI jobs with pytest-split (``--splits N --group G``), as a
GitHub Actions matrix runs it: each job its own namespace and dbt batches, its own
evidence file; ``dbtproof evidence merge`` makes one run of them.

The example suite runs as 3 concurrent jobs against the real PostgreSQL server: every
test runs exactly once across the jobs, nothing is left in the warehouse, and the merged
evidence verifies and names every test once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLE_ACCESS_TESTS, copy_shop, pg_schemas

DBTPROOF = str(Path(sys.executable).parent / "dbtproof")
JOBS = 3


def _collected(shop: Path) -> list[str]:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q"],
        cwd=shop, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return [line for line in run.stdout.splitlines() if "::" in line]


def _tests_of(evidence: Path) -> dict[str, str]:
    """The tests a job's evidence file records, each with its outcome."""
    records = [json.loads(line) for line in evidence.read_text().splitlines()]
    return {r["nodeid"]: r["outcome"] for r in records if r["type"] == "test"}


def _cli(shop: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DBTPROOF, *args], cwd=shop, capture_output=True, text=True, timeout=300)


def test_the_example_suite_split_in_three_jobs_runs_each_test_once(
    shop: Path, shop_pg: str
) -> None:
    copy_shop(shop, with_example_tests=True)
    (shop / "pytests" / EXAMPLE_ACCESS_TESTS).unlink()  # needs a role the server lacks
    everything = _collected(shop)
    assert len(everything) > 40
    jobs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "--splits",
                str(JOBS),
                "--group",
                str(group),
                f"--dbt-evidence=evidence/job{group}.jsonl",
            ],
            cwd=shop,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for group in range(1, JOBS + 1)
    ]
    outputs = [job.communicate(timeout=600)[0] for job in jobs]
    for job, output in zip(jobs, outputs, strict=True):
        assert job.returncode == 0, output[-4000:]
    ran = [_tests_of(shop / "evidence" / f"job{g}.jsonl") for g in range(1, JOBS + 1)]
    names = [name for job in ran for name in job]
    assert sorted(names) == sorted(everything), "every test ran, and in one job only"
    assert all(0 < len(job) < len(everything) for job in ran), "each job ran a part"
    outcomes = {outcome for job in ran for outcome in job.values()}
    assert outcomes <= {"passed", "skipped"}, ran
    assert pg_schemas(shop_pg) == [], "no job left anything in the warehouse"
    cleaned = _cli(shop, "clean", "--target", "postgres", "--prefix", shop_pg, "--older-than", "0m")
    assert cleaned.returncode == 0 and "no namespace older than" in cleaned.stdout, cleaned.stdout

    starts = [
        json.loads((shop / "evidence" / f"job{g}.jsonl").read_text().splitlines()[0])
        for g in range(1, JOBS + 1)
    ]
    namespaces = [ns for start in starts for ns in start["namespaces"]]
    assert len(set(namespaces)) == JOBS, f"a namespace per job: {namespaces}"

    files = [f"evidence/job{g}.jsonl" for g in range(1, JOBS + 1)]
    merged = _cli(shop, "evidence", "merge", *files, "-o", "evidence/run.jsonl")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert merged.stdout.startswith("OK: "), merged.stdout
    verified = _cli(shop, "evidence", "verify", "evidence/run.jsonl")
    assert verified.returncode == 0, verified.stdout
    records = [
        json.loads(line) for line in (shop / "evidence" / "run.jsonl").read_text().splitlines()
    ]
    tests = [r["nodeid"] for r in records if r["type"] == "test"]
    assert sorted(tests) == sorted(everything)
    assert [p["namespaces"] for p in records[0]["parts"]] == [s["namespaces"] for s in starts]
    counts: dict[str, int] = {}
    for outcome in (o for job in ran for o in job.values()):
        counts[outcome] = counts.get(outcome, 0) + 1
    assert records[-1]["counts"] == counts

    twice = _cli(shop, "evidence", "merge", files[0], files[0], "-o", "evidence/twice.jsonl")
    assert twice.returncode == 2 and "ran in" in twice.stderr, twice.stdout + twice.stderr
    assert not (shop / "evidence" / "twice.jsonl").exists()
    changed = shop / "evidence" / "job2.jsonl"
    changed.write_text(changed.read_text().replace('"passed"', '"failed"', 1))
    refused = _cli(shop, "evidence", "merge", *files, "-o", "evidence/again.jsonl")
    assert refused.returncode == 1 and "not merged: FAILED" in refused.stderr, refused.stderr
