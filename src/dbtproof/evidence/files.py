"""The project's own files a run tested: every model, macro, YAML, seed, snapshot and test
file of the root package that dbt's manifest names, with its sha256 (the attestation's
subjects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbtproof.evidence.records import file_sha256


def _paths_of(entity: Any, package: str) -> list[str]:
    if getattr(entity, "package_name", None) != package:
        return []
    paths = [getattr(entity, "original_file_path", None)]
    patch = getattr(entity, "patch_path", None)
    if patch:
        paths.append(str(patch).split("://", 1)[-1])
    return [str(p) for p in paths if p]


def project_files(manifest: Any, root: Path, package: str) -> list[dict[str, str]]:
    """``{path, sha256}`` of each file of package *package* (the root project, at *root*)
    that *manifest* holds a node, source, macro, unit test or exposure from, by path."""
    paths: set[str] = set()
    for collection in ("nodes", "sources", "macros", "unit_tests", "exposures"):
        for entity in (getattr(manifest, collection, None) or {}).values():
            paths.update(_paths_of(entity, package))
    found = []
    for relative in sorted(paths):
        path = root / relative
        if path.is_file():
            found.append({"path": relative, "sha256": file_sha256(path)})
    return found
