"""The last warm parse kept whole: a run of an unchanged project loads it, dbt is not asked.

dbt's partial parse of an unchanged project still costs a dbt invocation: the project and
the profile loaded and validated, the adapter registered, the partial-parse file read
back node by node (on a 200-model project about 1.2 s of a 3.4 s start, where loading the
same manifest pickled takes 0.15 s). So after each warm parse the session keeps, in the
parse cache's folder, the manifest and its runtime config as they came out of dbt
(``compat.save_parse``: the placeholder schema still in them, no credentials) beside a
*fingerprint* of everything that parse read beyond what the cache's key already names
(profile, target, adapter, vars, dbt version):

* every file under the resource paths (models, macros, seeds, tests, snapshots,
  analyses, docs, assets, functions) of the project and of each package dbt resolved in
  its packages' install path, by content, with each project's own files at its root
  (``dbt_project.yml``, ``packages.yml``, ``dependencies.yml``, ``selectors.yml``,
  ``package-lock.yml``, ``.dbtignore``) and the names of the installed packages. Each
  package is read once by its real path: a package symlinked back to a folder that holds
  the project (a package's ``integration_tests/`` layout, ``dbt_packages/<pkg> -> ../..``)
  is not followed round the loop, no folder is walked twice, a symlinked folder inside a
  resource path is not followed (dbt does not follow it either), and no project's
  target, log or packages' install path is walked (the run's own ``target/`` changes
  every run);
* the parse profile's text;
* the value of every env var dbt recorded as read by a file, the project or the profile
  (secret ones left out: dbt never lets them into a parse's SQL);
* the installed versions of dbt's packages and the adapter's, dbtproof's and Python's.

That is a superset of what dbt's own check compares, so when the fingerprint is the
stored one dbt would find nothing to parse again. Any difference, a missing or unreadable
snapshot, or a file modified while dbt was parsing it (within :data:`MTIME_MARGIN_NS` of
the parse's start: file systems keep coarse times) leaves the decision to dbt's own
partial parse, as without a snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dbtproof.safety.redaction import SECRET_ENV_PREFIX

#: The format of the fingerprint file; another value is not read.
FORMAT = 2
#: The snapshot (pickled manifest and runtime config) in the cache folder.
SNAPSHOT_FILE = "parse.pickle"
#: Its fingerprint, next to it.
FINGERPRINT_FILE = "parse.fingerprint.json"
#: The project's files at its root that dbt reads.
ROOT_FILES = (
    "dbt_project.yml",
    "packages.yml",
    "dependencies.yml",
    "selectors.yml",
    "package-lock.yml",
    ".dbtignore",
)
#: A file modified this close to (or after) a parse's start may not be what dbt read.
MTIME_MARGIN_NS = 2_000_000_000
#: Env vars whose values never enter the fingerprint (dbt's secrets, dbtproof's own).
SECRET_PREFIXES = (SECRET_ENV_PREFIX, "DBTPROOF_SECRET_")
#: Distributions whose versions the fingerprint names.
_DISTRIBUTIONS = ("dbt-core", "dbt-adapters", "dbt-common", "dbtproof")


@dataclass(frozen=True)
class ProjectInputs:
    """One project a parse read: its folder (relative to the root project, as dbt names
    it: ``.`` for the root, ``dbt_packages/<name>`` for a package), its resource folders
    and the folders dbt does not read in it (target, log, packages' install path), both
    relative to its folder."""

    path: str
    folders: tuple[str, ...]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParseInputs:
    """What a parse read besides the cache's key: the projects (the root first), the root
    project's packages' install path (relative to it) and env var names."""

    projects: tuple[ProjectInputs, ...]
    env_names: tuple[str, ...]
    packages_path: str = "dbt_packages"

    def to_json(self) -> dict[str, object]:
        """The inputs as the fingerprint file stores them."""
        return {
            "projects": [
                {"path": p.path, "folders": list(p.folders), "skipped": list(p.skipped)}
                for p in self.projects
            ],
            "packages_path": self.packages_path,
            "env_names": list(self.env_names),
        }

    @classmethod
    def from_json(cls, stored: dict[str, object]) -> ParseInputs:
        """The inputs :meth:`to_json` stored (KeyError/TypeError when malformed)."""
        projects = stored["projects"]
        env_names = stored["env_names"]
        if not isinstance(projects, list) or not isinstance(env_names, list):
            raise TypeError("malformed parse inputs")
        return cls(
            tuple(
                ProjectInputs(
                    str(p["path"]), tuple(map(str, p["folders"])), tuple(map(str, p["skipped"]))
                )
                for p in projects
            ),
            tuple(map(str, env_names)),
            str(stored["packages_path"]),
        )


def snapshot_file(folder: Path) -> Path:
    """The snapshot in the cache folder *folder*."""
    return folder / SNAPSHOT_FILE


def fingerprint_file(folder: Path) -> Path:
    """The snapshot's fingerprint in the cache folder *folder*."""
    return folder / FINGERPRINT_FILE


def versions(adapter_type: str) -> list[str]:
    """The installed versions the fingerprint names (a missing distribution as ``-``)."""
    from importlib.metadata import PackageNotFoundError, version

    found = [sys.version]
    for name in (*_DISTRIBUTIONS, f"dbt-{adapter_type}"):
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            found.append(f"{name}=-")
    return found


def _inside(path: str, folders: Iterable[str]) -> bool:
    """Whether the real path *path* is one of *folders* (real paths) or under one."""
    return any(
        path == folder or path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders
    )


def _files(root: Path, projects: Iterable[ProjectInputs]) -> Iterator[tuple[str, str]]:
    """``(name, path)`` of every file dbt may read, in a fixed order: each project's files
    at its root, then every file under its resource folders. Each folder is walked once by
    its real path, symlinked folders inside it are not followed (as dbt's own walk), and
    no project's skipped folders are entered."""
    projects = tuple(projects)
    skipped = {
        os.path.realpath(root / project.path / folder)
        for project in projects
        for folder in project.skipped
    }
    walked: set[str] = set()
    for project in projects:
        base = root / project.path
        for name in ROOT_FILES:
            if (base / name).is_file():
                yield f"{project.path}/{name}", str(base / name)
        for folder in sorted(set(project.folders)):
            top = os.path.realpath(base / folder)
            # a package's folder may lie in the root's packages path: only its walk skips
            if _inside(top, walked) or top in skipped or not os.path.isdir(top):
                continue
            walked.add(top)
            for directory, subfolders, names in os.walk(top):
                subfolders[:] = sorted(
                    name
                    for name in subfolders
                    if os.path.join(directory, name) not in skipped
                    and os.path.join(directory, name) not in walked
                )
                inner = os.path.relpath(directory, top)
                for name in sorted(names):
                    yield (
                        f"{project.path}/{folder}/{inner}/{name}",
                        os.path.join(directory, name),
                    )


def _packages(root: Path, packages_path: str) -> list[str]:
    """The packages dbt resolves: the folders in the root project's packages' install
    path (not those starting ``__``), by name."""
    folder = root / packages_path
    if not folder.is_dir():
        return []
    return sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith("__")
    )


def digest(
    root: Path,
    profile_file: Path,
    inputs: ParseInputs,
    installed: list[str],
    changed_after_ns: int | None = None,
) -> str | None:
    """The fingerprint's digest of the project now.

    ``None`` when a file cannot be read, or (with *changed_after_ns*) one was modified
    after that time less :data:`MTIME_MARGIN_NS`: it may not be what dbt read.
    """
    hasher = hashlib.sha256()

    def add(*parts: str) -> None:
        for part in parts:
            hasher.update(part.encode("utf-8", "surrogateescape") + b"\0")

    add(f"dbtproof-parse-snapshot/{FORMAT}", str(root.resolve()), *installed)
    try:
        add("profile", profile_file.read_text(encoding="utf-8"))
        add("packages", *_packages(root, inputs.packages_path))
        for name, path in _files(root, inputs.projects):
            stat = os.stat(path)
            if changed_after_ns is not None and stat.st_mtime_ns >= (
                changed_after_ns - MTIME_MARGIN_NS
            ):
                return None
            with open(path, "rb") as stream:
                add("file", name, hashlib.sha256(stream.read()).hexdigest())
    except OSError:
        return None
    for name in inputs.env_names:
        if not name.startswith(SECRET_PREFIXES):
            value = os.environ.get(name)
            add("env", name, "\x01unset" if value is None else value)
    return hasher.hexdigest()


def current(folder: Path, root: Path, profile_file: Path, installed: list[str]) -> Path | None:
    """The snapshot in *folder* when its fingerprint is the project's now, else ``None``."""
    try:
        stored = json.loads(fingerprint_file(folder).read_text(encoding="utf-8"))
        if stored.get("format") != FORMAT:
            return None
        inputs = ParseInputs.from_json(stored)
        expected = str(stored["digest"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    snapshot = snapshot_file(folder)
    if not snapshot.is_file() or digest(root, profile_file, inputs, installed) != expected:
        return None
    return snapshot


def forget(folder: Path) -> None:
    """Remove the snapshot and its fingerprint (the fingerprint first: a snapshot without
    one is never read)."""
    fingerprint_file(folder).unlink(missing_ok=True)
    snapshot_file(folder).unlink(missing_ok=True)


def record(
    folder: Path,
    root: Path,
    profile_file: Path,
    inputs: ParseInputs,
    installed: list[str],
    parse_started_ns: int,
) -> bool:
    """Write the fingerprint of the snapshot just written to *folder*, for a parse that
    started at *parse_started_ns* (``time.time_ns()``); False (and the snapshot
    forgotten) when a file changed while dbt parsed or could not be read."""
    found = digest(root, profile_file, inputs, installed, changed_after_ns=parse_started_ns)
    if found is None:
        forget(folder)
        return False
    text = json.dumps(
        {"format": FORMAT, **inputs.to_json(), "digest": found},
        indent=1,
    )
    partial = fingerprint_file(folder).with_suffix(f".{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(fingerprint_file(folder))
    return True
