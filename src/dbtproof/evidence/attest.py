"""``dbtproof evidence attest``: the run as an in-toto Statement with the test-result
predicate, ready for ``cosign attest-blob`` or GitHub's ``actions/attest``.

Subjects: the git commit (``gitCommit``) and every model, macro, YAML ... file of the
project the run tested (``sha256``, named by its path in the project). Predicate
(https://in-toto.io/attestation/test-result/v0.1): ``result`` (``PASSED``, ``WARNED`` or
``FAILED``), ``configuration`` (resource descriptors of the evidence file and of the
profiles.yml used), ``url`` (the CI run), ``passedTests``, ``warnedTests``,
``failedTests`` (pytest node ids).
"""

from __future__ import annotations

from typing import Any

from dbtproof.evidence.records import file_sha256
from dbtproof.evidence.summary import verdict as verdict_of

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
#: Test outcomes, by the predicate's list they go to (skips and xfails go to none).
PASSED, WARNED, FAILED = ("passed", "xpassed"), ("warned",), ("failed", "error")


def statement(verdict: Any) -> dict[str, Any]:
    """The in-toto Statement of a verified evidence file (a
    :class:`dbtproof.evidence.verify.Verdict` that is OK)."""
    records = verdict.records
    start, end = records[0], records[-1]
    tests = [r for r in records if r.get("type") == "test"]
    passed = [t["nodeid"] for t in tests if t["outcome"] in PASSED]
    warned = [t["nodeid"] for t in tests if t["outcome"] in WARNED]
    failed = [t["nodeid"] for t in tests if t["outcome"] in FAILED]
    result = verdict_of(records)
    subjects: list[dict[str, Any]] = []
    commit = (start.get("git") or {}).get("commit")
    if commit:
        subjects.append({"name": f"git+commit:{commit}", "digest": {"gitCommit": commit}})
    for file in start.get("project_files") or ():
        subjects.append({"name": file["path"], "digest": {"sha256": file["sha256"]}})
    configuration = [
        {
            "name": verdict.path.name,
            "digest": {"sha256": file_sha256(verdict.path)},
            "annotations": {"dbtproofFinalDigest": f"sha256:{end.get('digest')}"},
        }
    ]
    if start.get("profiles_sha256"):
        configuration.append(
            {"name": "profiles.yml", "digest": {"sha256": start["profiles_sha256"]}}
        )
    predicate: dict[str, Any] = {
        "result": result,
        "configuration": configuration,
        "passedTests": passed,
        "warnedTests": warned,
        "failedTests": failed,
    }
    url = (start.get("ci") or {}).get("url")
    if url:
        predicate["url"] = url
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
