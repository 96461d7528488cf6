"""Every process's records in one order that does not depend on timing.

Under xdist each worker sends the controller its invocations (with the artifacts it
kept) and its dbt session's facts; the controller saw every test's reports. The file
holds ``run_start``, then the invocations by worker (``gw0`` before ``gw1``, ``gw2``
before ``gw10``) in the order each worker ran them, then the tests by node id, then
``run_end``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any


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
        invocations, key=lambda r: (worker_key(r.get("worker")), int(r.get("worker_seq", 0)))
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
