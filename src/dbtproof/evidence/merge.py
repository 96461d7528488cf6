"""Every process's records in one order that does not depend on timing.

Under xdist each worker sends the controller its invocations (with the artifacts it
kept) and its dbt session's facts; the controller saw every test's reports. The file
holds ``run_start``, then the invocations by worker (``gw0`` before ``gw1``, ``gw2``
before ``gw10``; in a merged run by job first) in the order each worker ran them, then the
tests by node id, then ``run_end``.

:func:`merge_runs` makes one run of the evidence files of the CI jobs a suite was split
into (``dbtproof evidence merge``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dbtproof.errors import EvidenceError
from dbtproof.evidence.records import artifacts_folder


def worker_key(worker: str | None) -> tuple[int, str]:
    """Sort key of a worker id: the controller (None) first, then ``gw<N>`` by N."""
    if worker is None:
        return (-1, "")
    match = re.fullmatch(r"gw(\d+)", worker)
    return (int(match.group(1)), "") if match else (1 << 30, worker)


def ordered(
    run_start: Mapping[str, Any],
    invocations: Iterable[Mapping[str, Any]],
    tests: Iterable[Mapping[str, Any]],
    run_end: Mapping[str, Any],
) -> list[Mapping[str, Any]]:
    """The file's records in order (see the module's doc)."""
    by_worker = sorted(
        invocations,
        key=lambda r: (
            int(r.get("part", 0)),  # a merged run: the jobs' files in the order given
            worker_key(r.get("worker")),
            int(r.get("worker_seq", 0)),
        ),
    )
    by_node = sorted(tests, key=lambda r: str(r.get("nodeid")))
    return [run_start, *by_worker, *by_node, run_end]


def artifact_list(invocations: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Every artifact the invocations kept, ``{path, sha256}``, sorted by path."""
    found = {
        artifact["path"]: artifact["sha256"]
        for record in invocations
        for artifact in record.get("artifacts", ())
    }
    return [{"path": path, "sha256": found[path]} for path in sorted(found)]


# -- one run from the evidence files of its CI jobs ---------------------------------------


def merge_runs(parts: Sequence[tuple[Path, Sequence[Mapping[str, Any]]]], out: Path) -> list[dict]:
    """The records of one run made of *parts* (each an evidence file that verified, with
    its records), for the new evidence file *out*; each part's artifacts copied beside it.

    A suite split across CI jobs (``pytest --splits N --group G``) gives one file per job.
    Together they are one run when they ran the same commit of the same project on the
    same target, and no test ran in two of them. The merged ``run_start`` lists the parts
    (file, run id, final digest, namespaces); invocations and tests keep their records,
    each with the ``part`` it came from; ``run_end`` counts them all.

    :raises EvidenceError: when the files are not parts of one run, naming why.
    """
    if len(parts) < 2:
        raise EvidenceError("dbtproof evidence merge: give two or more evidence files to merge.")
    starts = [records[0] for _, records in parts]
    for key, what in (("project", "project"), ("target", "target"), ("adapter", "adapter")):
        _same(parts, [start.get(key) for start in starts], what)
    _same(parts, [(start.get("git") or {}).get("commit") for start in starts], "git commit")
    seen: dict[str, Path] = {}
    tests: list[dict[str, Any]] = []
    for index, (path, records) in enumerate(parts):
        for record in records[1:-1]:
            if record.get("type") != "test":
                continue
            nodeid = str(record.get("nodeid"))
            if nodeid in seen:
                raise EvidenceError(
                    f"dbtproof evidence merge: {nodeid} ran in {seen[nodeid]} and in {path}; "
                    f"the jobs of one run each run a part of its tests (pytest --splits N "
                    f"--group G, the same N in every job)."
                )
            seen[nodeid] = path
            tests.append({**_unchained(record), "part": index})
    folder = artifacts_folder(out)
    invocations = [
        _moved(path, record, index, out.parent, folder)
        for index, (path, records) in enumerate(parts)
        for record in records[1:-1]
        if record.get("type") == "invocation"
    ]
    run_start = {
        **_unchained(starts[0]),
        "run_id": "+".join(str(start.get("run_id")) for start in starts),
        "namespaces": [ns for start in starts for ns in start.get("namespaces", ())],
        "warehouse_identity": {
            k: v for start in starts for k, v in (start.get("warehouse_identity") or {}).items()
        },
        "parts": [
            {
                "file": path.name,
                "run_id": records[0].get("run_id"),
                "digest": records[-1].get("digest"),
                "namespaces": records[0].get("namespaces", []),
            }
            for path, records in parts
        ],
    }
    ends = [records[-1] for _, records in parts]
    counts: dict[str, int] = {}
    for test in tests:
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    run_end = {
        "type": "run_end",
        "time": max(str(end.get("time")) for end in ends),
        "duration": max(float(end.get("duration") or 0) for end in ends),
        "exit_status": max(int(end.get("exit_status") or 0) for end in ends),
        "counts": dict(sorted(counts.items())),
        "tests": len(tests),
        "invocations": len(invocations),
        "artifacts": artifact_list(invocations),
    }
    return [dict(r) for r in ordered(run_start, invocations, tests, run_end)]


def _same(parts: Sequence[tuple[Path, Any]], values: list[Any], what: str) -> None:
    if len(set(map(str, values))) > 1:
        listed = ", ".join(
            f"{path.name}: {value}" for (path, _), value in zip(parts, values, strict=True)
        )
        raise EvidenceError(
            f"dbtproof evidence merge: the files are not one run: their {what} differs "
            f"({listed}). Merge the evidence files of the jobs of one CI run only."
        )


def _unchained(record: Mapping[str, Any]) -> dict[str, Any]:
    """*record* without its place in its own file's chain (the merged file chains anew)."""
    return {k: v for k, v in record.items() if k not in ("schema", "seq", "prev", "digest")}


def _moved(
    path: Path, record: Mapping[str, Any], part: int, into: Path, folder: Path
) -> dict[str, Any]:
    """An invocation of the part *path*, its artifacts copied into the merged file's
    artifact *folder* (``<invocation id>/...``, unique across jobs) and named from there."""
    source_folder = artifacts_folder(path)
    artifacts = []
    for artifact in record.get("artifacts", ()):
        source = path.parent / artifact["path"]
        relative = source.relative_to(source_folder)
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        artifacts.append(
            {"path": target.relative_to(into).as_posix(), "sha256": artifact["sha256"]}
        )
    return {**_unchained(record), "part": part, "artifacts": artifacts}
