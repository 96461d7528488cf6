"""DuckDB: the folders a run's SQL may read and write files in, and nothing else.

DuckDB's SQL reaches the file system directly: ``ATTACH 'other.duckdb'``, ``COPY ... TO
'/anywhere'``, ``read_csv``. The guard lists only what is attached when it looks, so an
``ATTACH``, ``CREATE TABLE``, ``DETACH`` between two looks, or a ``COPY ... TO``, would
pass unseen. So the run's DuckDB database is opened with ``allowed_directories`` /
``allowed_paths`` and ``enable_external_access = false`` (DuckDB refuses to turn
either back while the database is open; ``_dbt_compat/duckdb_lockdown.py`` applies
them): its SQL may touch the run's folder (its database, ``external`` models' files),
the run-level build's folder, the folders of the project's seeds and of the sources'
``external_location`` files (read), and the files the profile attaches; everything
else fails with DuckDB's "Permission Error".

Where dbtproof cannot tell what the project needs (a remote or computed location, a
profile that sets these settings itself or registers file systems, MotherDuck), the
database is left open and the header says so (:attr:`FileAccess.unlimited`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbtproof.project.nodes import resource_type

#: The dbt-duckdb plugin that limits the run's file access, and its alias in the profile.
LOCKDOWN_MODULE = "dbtproof._dbt_compat.duckdb_lockdown"
LOCKDOWN_ALIAS = "dbtproof_file_access"
#: The DuckDB settings a profile's own ``settings:`` may not set for the limit to apply
#: (dbt-duckdb sets them on every new cursor, which DuckDB refuses once limited).
_OWN_SETTINGS = ("enable_external_access", "allowed_directories", "allowed_paths", "temp_directory")
_QUOTED = re.compile(r"'([^']*)'")


@dataclass
class FileAccess:
    """What a run's DuckDB SQL may touch: folders (and their files) and single files."""

    directories: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    #: Why nothing is limited ("" when it is).
    unlimited: str = ""

    def settings(self) -> dict[str, Any]:
        """The lockdown plugin's config: the folders and files the run may touch."""
        return {"directories": list(self.directories), "paths": list(self.paths)}

    def plugins(self, output: Mapping[str, Any]) -> list[Any]:
        """The profile *output*'s dbt-duckdb ``plugins:``, the lockdown plugin added."""
        lockdown = {"module": LOCKDOWN_MODULE, "alias": LOCKDOWN_ALIAS, "config": self.settings()}
        return [*(output.get("plugins") or []), lockdown]

    def allow_directory(self, path: Path) -> None:
        """Allow *path* (a folder) and everything under it."""
        text = str(path.resolve()).rstrip("/") + "/"
        if text not in self.directories:
            self.directories.append(text)


def _local(location: str) -> str | None:
    """The local file path in an ``external_location`` (a path, or a reader call naming
    one in quotes), up to its first ``{placeholder}``; None when remote or unreadable."""
    quoted = _QUOTED.search(location)
    path = quoted.group(1) if "(" in location and quoted else location
    if "://" in path or path.startswith("md:") or not path.strip():
        return None
    return path.split("{", 1)[0]


def duckdb_file_access(
    output: Mapping[str, Any],
    project_root: Path,
    run_folders: Iterable[Path],
    seeds: Iterable[Path],
    locations: Iterable[str],
    render: Any,
) -> FileAccess:
    """The :class:`FileAccess` of a run: *output* is the user's target, *run_folders*
    the run's own folders, *seeds* the project's seed files, *locations* the sources'
    ``external_location`` texts, *render* renders a profile value."""
    access = FileAccess()
    settings = output.get("settings") or {}
    own = [name for name in _OWN_SETTINGS if name in settings]
    if own:
        access.unlimited = f"the profile's settings set {', '.join(own)}"
    elif output.get("filesystems"):
        access.unlimited = "the profile registers file systems"
    elif str(output.get("path", "")).startswith("md:"):
        access.unlimited = "MotherDuck"
    for folder in run_folders:
        access.allow_directory(folder)
    for seed in seeds:
        access.allow_directory(seed.parent)
    for location in locations:
        local = _local(location)
        if local is None:
            access.unlimited = access.unlimited or f"a source reads {location!r}"
            continue
        path = Path(local) if Path(local).is_absolute() else project_root / local
        access.allow_directory(path if local.endswith("/") else path.parent)
    for attachment in output.get("attach") or []:
        raw = attachment.get("path") if isinstance(attachment, dict) else None
        path = str(render(raw)) if isinstance(raw, str) else ""
        if "://" in path or path.startswith("md:") or not path:
            continue  # remote, or nothing DuckDB opens from a local file
        full = Path(path) if Path(path).is_absolute() else project_root / path
        # The file, its write-ahead log, and the log DuckDB 2 checkpoints it through.
        for suffix in ("", ".wal", ".wal.checkpoint"):
            access.paths.append(str(full.resolve()) + suffix)
    return access


def project_file_access(
    manifest: Any,
    output: Mapping[str, Any],
    root: Path,
    folders: Iterable[Path],
    render: Callable[[str], Any],
) -> FileAccess:
    """What the run of *manifest*'s project (at *root*, its profile *output*) may touch:
    *folders* (the run's own), the seeds' files, the sources' ``external_location``
    files as dbt-duckdb reads them (:func:`duckdb_file_access`)."""
    seeds = [
        Path(str(node.root_path)) / str(node.original_file_path)
        for node in manifest.nodes.values()
        if resource_type(node) == "seed"
    ]
    locations = []
    for source in manifest.sources.values():
        meta = {  # as dbt-duckdb reads it: the source's meta, then the table's
            **(getattr(source, "source_meta", None) or {}),
            **(getattr(source.config, "meta", None) or {}),
            **(source.meta or {}),
        }
        if meta.get("external_location"):
            locations.append(str(meta["external_location"]))
    return duckdb_file_access(output, root, list(folders), seeds, locations, render)
