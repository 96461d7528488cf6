"""Evidence of every run (``--dbt-evidence``): the hash-chained file, ``dbtproof evidence
verify`` and ``attest``, the JUnit properties, and the warehouse-side trail.

Each run is the example project run the way users run it (pytester, a subprocess), on
DuckDB and on the PostgreSQL server with two xdist workers; tampering is done on a real
run's file and artifacts, one change at a time.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_ROLE

#: The project's pytest tests in every run: a build, a query, one failure on purpose.
PYTESTS = """
def test_builds_customers(dbt):
    dbt.build(select="+customers")
    assert dbt.table("customers")


def test_fails_on_purpose(dbt):
    assert dbt.query("select 1 as x") == [{"x": 2}]
"""


#: A dbt test that fails: every customer is "too big", so the customers node is marked failed.
FAILING_DBT_TEST = "select * from {{ ref('customers') }} where customer_id > 0\n"

#: The variables of a GitHub Actions job (ids and URLs only).
GITHUB = {
    "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "4242", "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_SERVER_URL": "https://github.example", "GITHUB_ACTOR": "auditor-alice",
}  # fmt: skip


def git_repo(folder: Path) -> str:
    """Make *folder* a git work tree with one commit; return the commit."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
            cwd=folder, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "the change under test")
    return git("rev-parse", "HEAD")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``dbtproof ...`` in a subprocess, as an auditor runs it."""
    return subprocess.run(
        [sys.executable, "-m", "dbtproof.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def records_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def printed_digest(output: str) -> str:
    match = re.search(r"final digest (sha256:[0-9a-f]{64})", output)
    assert match, output[-3000:]
    return match.group(1)


def test_a_duckdb_run_on_two_workers_leaves_evidence_that_verifies_and_attests(
    pytester: pytest.Pytester, shop: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (shop / "pytests" / "test_shop.py").write_text(
        PYTESTS.replace(
            'dbt.build(select="+customers")', 'dbt.seed()\n    dbt.run(select="+customers")'
        )
    )
    (shop / "tests" / "assert_no_big_customers.sql").write_text(FAILING_DBT_TEST)
    commit = git_repo(shop)
    for name, value in GITHUB.items():
        monkeypatch.setenv(name, value)
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    evidence = shop / "evidence" / "run.jsonl"
    junit = shop / "junit.xml"
    report = tmp_path / "report" / "run.html"
    # --dist loadfile: the project's dbt items on one worker, the pytest file on the other
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile", f"--dbt-evidence={evidence}",
        f"--junitxml={junit}", f"--dbt-report={report}", "pytests", "dbt_project.yml",
    )  # fmt: skip
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 2 and outcomes["passed"] >= 30, result.stdout.str()[-3000:]
    digest = printed_digest(result.stdout.str())

    # the auditor's check: OK against the digest published in the run's summary
    checked = cli("evidence", "verify", str(evidence), "--digest", digest)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("OK: ") and digest in checked.stdout
    other = cli("evidence", "verify", str(evidence), "--digest", "sha256:" + "0" * 64)
    assert other.returncode == 1 and "the whole file was rewritten" in other.stdout

    records = records_of(evidence)
    start, end = records[0], records[-1]
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert start["type"] == "run_start" and end["type"] == "run_end"
    run_id = start["run_id"]
    assert start["namespaces"] == [f"{run_id}_gw0", f"{run_id}_gw1"]
    assert start["git"] == {"commit": commit, "branch": start["git"]["branch"], "dirty": False}
    assert start["target"] == "dev" and start["adapter"] == "duckdb"
    assert (
        start["profiles_sha256"] == hashlib.sha256((shop / "profiles.yml").read_bytes()).hexdigest()
    )
    assert start["versions"]["dbt-core"] and start["versions"]["dbt-duckdb"]
    url = "https://github.example/acme/shop/actions/runs/4242"
    assert {k: start["ci"][k] for k in ("provider", "run_id", "url", "actor")} == {
        "provider": "github-actions", "run_id": "4242", "url": url, "actor": "auditor-alice"
    }  # fmt: skip

    # merged in a fixed order: invocations by worker, then tests by node id
    invocations = [r for r in records if r["type"] == "invocation"]
    tests = [r for r in records if r["type"] == "test"]
    assert records == [start, *invocations, *tests, end]
    order = [(r["worker"] or "", r["worker_seq"]) for r in invocations]
    assert order == sorted(order) and {"gw0", "gw1"} <= {w for w, _ in order}
    assert {t["worker"] for t in records if t["type"] == "test"} == {"gw0", "gw1"}
    assert [t["nodeid"] for t in tests] == sorted(t["nodeid"] for t in tests)

    # every test, with the dbt node's unique id where there is one
    by_id = {t["nodeid"]: t for t in tests}
    failed = by_id["pytests/test_shop.py::test_fails_on_purpose"]
    assert failed["outcome"] == "failed" and "Rows differ" in failed["message"]
    assert by_id["dbt_project.yml::customers::build"]["unique_id"] == "model.shop.customers"
    dbt_failure = by_id["dbt_project.yml::customers::assert_no_big_customers"]
    assert dbt_failure["unique_id"] == "test.shop.assert_no_big_customers"
    assert dbt_failure["outcome"] == "failed" and "failing row(s)" in dbt_failure["message"]
    assert end["counts"] == {"failed": 2, "passed": outcomes["passed"]}
    assert end["exit_status"] == 1 and end["tests"] == len(tests)

    # each invocation kept its own run_results.json and manifest.json
    built = [r for r in invocations if r["command"] in ("build", "run", "seed")]
    assert {r["command"] for r in built} == {"build", "run", "seed"}
    kept = {a["path"] for r in invocations for a in r["artifacts"]}
    for record in built:
        paths = {Path(a["path"]).name: a["path"] for a in record["artifacts"]}
        assert sorted(paths) == ["manifest.json", "run_results.json"]
        results = json.loads((evidence.parent / paths["run_results.json"]).read_text())
        assert results["metadata"]["invocation_id"] == record["invocation_id"]
    assert {a["path"] for a in end["artifacts"]} == kept

    # JUnit: every testcase carries the run's properties
    cases = ET.parse(junit).getroot().iter("testcase")
    for case in cases:
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert properties["dbtproof_run_id"] == run_id, properties
        assert properties["git_commit"] == commit
        assert properties["dbt_target"] == "dev"
        assert re.fullmatch(rf"{run_id}_gw[01]", properties["dbtproof_namespace"])
        if case.get("classname", "").startswith("dbt_project.yml"):
            assert properties["dbt_unique_id"].split(".")[0] in {
                "model", "seed", "test", "unit_test"
            }  # fmt: skip

    # the attestation: an in-toto Statement with the test-result predicate
    attested = cli("evidence", "attest", str(evidence))
    assert attested.returncode == 0, attested.stderr
    statement = json.loads(attested.stdout)
    check_test_result_statement(statement)
    predicate = statement["predicate"]
    assert predicate["result"] == "FAILED" and predicate["url"] == url
    assert predicate["failedTests"] == [
        "dbt_project.yml::customers::assert_no_big_customers",
        "pytests/test_shop.py::test_fails_on_purpose",
    ]
    assert len(predicate["passedTests"]) == outcomes["passed"]
    configuration = {c["name"]: c["digest"]["sha256"] for c in predicate["configuration"]}
    assert configuration == {
        "run.jsonl": hashlib.sha256(evidence.read_bytes()).hexdigest(),
        "profiles.yml": start["profiles_sha256"],
    }
    subjects = {s["name"]: s["digest"] for s in statement["subject"]}
    assert subjects.pop(f"git+commit:{commit}") == {"gitCommit": commit}
    project_files = [
        path.relative_to(shop).as_posix()
        for folder in ("models", "macros", "seeds", "tests")
        for path in (shop / folder).rglob("*")
        if path.is_file() and path.suffix in {".sql", ".yml", ".csv"}
    ]
    assert subjects == {
        name: {"sha256": hashlib.sha256((shop / name).read_bytes()).hexdigest()}
        for name in project_files
    }

    # the reviewer's views: GitHub's step summary, and the HTML report in a real browser
    summary = step_summary.read_text()
    assert summary.startswith("earlier step\n## dbtproof: shop on target `dev`: FAILED")
    assert f"| failed | 2 |\n| passed | {outcomes['passed']} |" in summary
    assert f"`{run_id}_gw0`, `{run_id}_gw1`" in summary and f"`{commit}`" in summary
    assert f"| final digest | `{digest}` |" in summary
    assert "<code>dbt_project.yml::customers::assert_no_big_customers</code>" in summary
    assert "First 10 failing row(s):" in summary
    page = report.read_text()
    assert 'data-unique-id="model.shop.customers"' not in page, "the page draws the DAG itself"
    drawn = re.findall(r'<g class="node (\w+)" data-unique-id="([^"]+)"', dom(report, tmp_path))
    nodes = {unique_id: status for status, unique_id in drawn}
    assert nodes["model.shop.customers"] == "failed"
    assert nodes["model.shop.orders"] == "passed"
    assert nodes["source.shop.shop.raw_orders"] == "untested"
    assert [uid for uid, status in nodes.items() if status == "failed"] == ["model.shop.customers"]


def dom(page: Path, tmp_path: Path) -> str:
    """The DOM of *page* once headless Chromium (Debian's package) has loaded it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Chromium is missing: `apt-get install chromium` (scripts/test does)"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "<svg" in done.stdout, done.stderr[-2000:]
    return done.stdout


def check_test_result_statement(statement: dict[str, Any]) -> None:
    """The in-toto Statement v1 and test-result predicate v0.1, field by field."""
    assert set(statement) == {"_type", "subject", "predicateType", "predicate"}
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
    assert statement["subject"], "a Statement needs at least one subject"
    for subject in statement["subject"]:
        assert isinstance(subject["name"], str) and subject["name"]
        assert subject["digest"] and all(
            isinstance(k, str) and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", v)
            for k, v in subject["digest"].items()
        ), subject
    predicate = statement["predicate"]
    allowed = {"result", "configuration", "url", "passedTests", "warnedTests", "failedTests"}
    assert set(predicate) <= allowed and {"result", "configuration"} <= set(predicate)
    assert predicate["result"] in {"PASSED", "WARNED", "FAILED"}
    for descriptor in predicate["configuration"]:
        assert descriptor["name"] and descriptor["digest"]["sha256"]
    for key in ("passedTests", "warnedTests", "failedTests"):
        assert all(isinstance(name, str) for name in predicate.get(key, []))


# -- tampering ---------------------------------------------------------------------------


def tampered(folder: Path, original: Path, lines: list[str]) -> Path:
    """*lines* written as a new evidence file in *folder*, beside the original's artifacts."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / original.name
    path.write_text("".join(line + "\n" for line in lines))
    artifacts = folder / f"{original.stem}-artifacts"
    if not artifacts.exists():
        artifacts.symlink_to(original.with_name(artifacts.name))
    return path


def edited(line: str) -> str:
    record = json.loads(line)
    record["time" if "time" in record else "duration"] = "2001-01-01T00:00:00"
    if record["type"] == "test":
        record["outcome"] = "passed" if record["outcome"] != "passed" else "failed"
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def test_any_change_to_a_record_or_an_artifact_is_named(
    pytester: pytest.Pytester, shop: Path, tmp_path: Path
) -> None:
    from dbtproof.evidence.records import line_hash
    from dbtproof.evidence.verify import verify

    (shop / "pytests" / "test_shop.py").write_text(PYTESTS)
    evidence = shop / "evidence.jsonl"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--dbt-evidence={evidence}", "pytests"
    )
    result.assert_outcomes(passed=1, failed=1)
    assert verify(evidence).ok
    lines = evidence.read_text().splitlines()
    n = len(lines)
    assert n >= 6
    folder = tmp_path / "tampered"

    through_cli: set[str] = set()

    def problem(kind: str, changed: list[str]) -> str:
        verdict = verify(tampered(folder, evidence, changed))
        assert not verdict.ok, (kind, changed)
        if kind not in through_cli:  # once per kind of change, as the auditor runs it
            through_cli.add(kind)
            checked = cli("evidence", "verify", str(folder / evidence.name))
            assert checked.returncode == 1 and checked.stdout.startswith("FAILED: ")
            assert verdict.problem in checked.stdout
        return str(verdict.problem)

    assert verify(tampered(folder, evidence, lines)).ok, "an exact copy verifies"
    for i in range(n):
        line = i + 1
        # edited
        message = problem("edit", [*lines[:i], edited(lines[i]), *lines[i + 1 :]])
        assert message.startswith(f"line {line} (") and "was changed" in message, message
        # deleted
        message = problem("delete", [*lines[:i], *lines[i + 1 :]])
        if i < n - 1:
            assert f"record(s) {i}..{i} were removed before line {line} " in message, message
        else:
            assert "without its run_end record: records were removed at the end" in message
        # inserted before it: a forged record that chains to the line before
        forged = json.loads(edited(lines[i]))
        forged["prev"] = line_hash(lines[i - 1]) if i else "0" * 64
        forged_line = json.dumps(forged, sort_keys=True, separators=(",", ":"))
        message = problem("insert", [*lines[:i], forged_line, *lines[i:]])
        assert message.startswith(f"line {line} (") and "was inserted" in message, message
        # reordered with the next one
        if i < n - 1:
            message = problem("reorder", [*lines[:i], lines[i + 1], lines[i], *lines[i + 2 :]])
            assert f"records were reordered: line {line} holds record {i + 1}" in message
    appended = json.loads(edited(lines[-2]))
    appended.update(seq=n, prev=line_hash(lines[-1]))
    message = problem(
        "append", [*lines, json.dumps(appended, sort_keys=True, separators=(",", ":"))]
    )
    assert f"line {n + 1} (" in message and "after the run_end record" in message

    # artifacts: each changed, each removed, one added
    artifacts = [a["path"] for a in json.loads(lines[-1])["artifacts"]]
    assert len(artifacts) >= 2
    for relative in artifacts:
        path = shop / relative
        data = path.read_bytes()
        path.write_bytes(data.replace(b"{", b"{ ", 1))
        assert verify(evidence).problem.startswith(f"artifact {relative} (of line ")
        assert verify(evidence).problem.endswith("was changed")
        path.unlink()
        assert verify(evidence).problem.endswith("was removed")
        path.write_bytes(data)
    assert verify(evidence).ok
    extra = shop / Path(artifacts[0]).parent / "extra.json"
    extra.write_text("{}")
    relative = extra.relative_to(shop).as_posix()
    assert verify(evidence).problem == f"artifact {relative} was inserted: no record names it"


# -- bad input ---------------------------------------------------------------------------


def test_an_existing_evidence_file_is_never_overwritten(
    pytester: pytest.Pytester, shop: Path
) -> None:
    (shop / "pytests" / "test_one.py").write_text("def test_one():\n    pass\n")
    evidence = shop / "evidence.jsonl"
    evidence.write_text("kept\n")
    result = pytester.runpytest_subprocess(f"--dbt-evidence={evidence}", "pytests")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"dbtproof: --dbt-evidence: {evidence} exists, and evidence is never overwritten" in (
        result.stderr.str()
    )
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert evidence.read_text() == "kept\n"


def test_verify_names_a_missing_or_foreign_file(tmp_path: Path) -> None:
    missing = cli("evidence", "verify", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"dbtproof evidence: no file {tmp_path / 'nope.jsonl'}. Pass the path given to "
        f"--dbt-evidence."
    )
    foreign = tmp_path / "other.jsonl"
    foreign.write_text('{"hello": 1}\n')
    checked = cli("evidence", "verify", str(foreign))
    assert checked.returncode == 1
    assert "line 1 is not a dbtproof.evidence/1 record" in checked.stdout
    refused = cli("evidence", "attest", str(foreign))
    assert refused.returncode == 1 and "not attested" in refused.stderr
    assert "Traceback" not in missing.stderr + checked.stderr + refused.stderr


def test_verify_checks_the_exact_bytes_written(tmp_path: Path) -> None:
    """CRLF line endings, a trailing space or a missing final newline are changes to the
    file: verify names them (with --digest too), though every record still parses."""
    from dbtproof.evidence.chain import write_chain
    from dbtproof.evidence.verify import verify

    original = tmp_path / "run" / "evidence.jsonl"
    last = write_chain(
        original,
        [
            {"type": "run_start", "run_id": "r1", "time": "2026-01-01T00:00:00"},
            {"type": "test", "nodeid": "t.py::test_one", "outcome": "passed"},
            {"type": "run_end", "run_id": "r1", "artifacts": []},
        ],
    )
    data = original.read_bytes()
    assert data.endswith(b"}\n") and b"\r" not in data, "the writer writes LF, whatever the OS"
    digest = f"sha256:{last['digest']}"
    assert verify(original, digest).ok

    respaced = data.replace(b'"outcome":"passed"', b'"outcome": "passed"')
    variants = {
        "crlf": (data.replace(b"\n", b"\r\n"), "line 1 ends in a carriage return"),
        "trailing space": (
            data[:-1] + b" \n",
            "line 3 (run_end r1) has whitespace around its record",
        ),
        "no final newline": (data[:-1], "the file does not end with a newline after line 3"),
        "blank line": (data + b"\n", "line 4 is empty"),
        "respaced": (respaced, "line 2 (test t.py::test_one) was changed"),
    }
    for name, (changed, expected) in variants.items():
        path = tmp_path / name / "evidence.jsonl"
        path.parent.mkdir()
        path.write_bytes(changed)
        verdict = verify(path, digest)
        assert not verdict.ok, name
        assert verdict.problem is not None and verdict.problem.startswith(expected), (
            name,
            verdict.problem,
        )
        checked = cli("evidence", "verify", str(path), "--digest", digest)
        assert checked.returncode == 1, (name, checked.stdout)
        assert checked.stdout.startswith("FAILED: ") and "Traceback" not in checked.stderr


# -- PostgreSQL ----------------------------------------------------------------------------

#: A model that shows the query text and application name dbt's connection ran it with.
PROBE_MODEL = """
{{ config(materialized='table') }}
select current_query() as q, current_setting('application_name') as app
"""

PG_PYTESTS = """
import json
import threading

import psycopg2


def test_the_warehouse_sees_the_run(dbt, request):
    run_id = dbt.schema.rsplit("_gw", 1)[0]
    dbt.run(select="probe_query")
    probe = dbt.table("probe_query")[0]
    assert probe["app"] == f"dbtproof {dbt.schema}"
    comment = json.loads(probe["q"].split("*/", 1)[0].removeprefix("/*"))
    assert comment["dbtproof_run_id"] == run_id and comment["node_id"] == "model.shop.probe_query"
    direct = dbt.query("select current_query() as q")[0]["q"]
    assert f'"dbtproof_run_id": "{run_id}"' in direct

    # what pg_stat_activity shows while a query of the run is running
    seen = []
    marker = f"slept_{dbt.schema.rsplit('_', 1)[-1]}"
    ready, finished = threading.Event(), threading.Event()

    def watch():
        # no `with connection`: psycopg2 2.9 opens a transaction there, and a transaction
        # reads pg_stat_activity once
        connection = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres")
        connection.autocommit = True
        try:
            cursor = connection.cursor()
            ready.set()
            while not seen:
                last = finished.is_set()
                cursor.execute(
                    "select application_name, query from pg_stat_activity "
                    "where state = 'active' and query like %s and pid <> pg_backend_pid()",
                    (f"%pg_sleep(1.5) as {marker}%",),
                )
                seen.extend(cursor.fetchall())
                if last:
                    return
                threading.Event().wait(0.02)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert ready.wait(30)
    dbt.query(f"select pg_sleep(1.5) as {marker}")
    finished.set()
    watcher.join()
    assert seen, "pg_stat_activity never showed the query"
    application, query = seen[0]
    assert application == f"dbtproof {dbt.schema}"
    assert f'"dbtproof_run_id": "{run_id}"' in query
    with open(f"probe_{dbt.schema}.json", "w") as out:
        json.dump({"comment": comment, "query": query}, out)
"""


def test_a_postgres_run_on_two_workers_leaves_evidence_and_a_trail_in_the_warehouse(
    pytester: pytest.Pytester, shop: Path, shop_pg: str
) -> None:
    (shop / "models" / "probe_query.sql").write_text(PROBE_MODEL)
    (shop / "pytests" / "test_trail.py").write_text(PG_PYTESTS)
    (shop / "pytests" / "test_trail_again.py").write_text(
        PG_PYTESTS.replace("test_the_warehouse_sees_the_run", "test_again")
    )
    evidence = shop / "evidence" / "{run_id}.jsonl"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile", f"--dbt-evidence={evidence}",
        "-rA", "pytests",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    [path] = (shop / "evidence").glob("*.jsonl")
    digest = printed_digest(result.stdout.str())
    checked = cli("evidence", "verify", str(path), "--digest", digest)
    assert checked.returncode == 0, checked.stdout
    records = records_of(path)
    start = records[0]
    run_id = start["run_id"]
    assert path.name == f"{run_id}.jsonl"
    assert start["adapter"] == "postgres" and start["database"] == "test"
    assert start["host"] == "127.0.0.1"
    assert start["namespaces"] == [f"{run_id}_gw0", f"{run_id}_gw1"]
    assert start["warehouse_identity"] == {
        namespace: {"current_user": PG_ROLE, "session_user": PG_ROLE}
        for namespace in start["namespaces"]
    }

    # the warehouse's side joins the evidence: each worker's `dbt run` by its invocation id
    invocations = {r["invocation_id"]: r for r in records if r["type"] == "invocation"}
    probes = sorted(shop.glob("probe_*.json"))
    assert probes
    for probe in probes:
        seen = json.loads(probe.read_text())
        invocation = invocations[seen["comment"]["dbt_invocation_id"]]
        assert invocation["command"] == "run"
        assert invocation["nodes"] == [{"unique_id": "model.shop.probe_query", "status": "success"}]
        assert f"{invocation['worker']}.json" in probe.name
