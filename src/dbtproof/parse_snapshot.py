"""The last warm parse kept whole: a run of an unchanged project loads it, dbt is not asked.

dbt's partial parse of an unchanged project still costs a dbt invocation: the project and
the profile loaded and validated, the adapter registered, the partial-parse file read
back node by node (on a 200-model project about 1.2 s of a 3.4 s start, where loading the
same manifest pickled takes 0.15 s). So after each warm parse the session keeps, in the
parse cache's folder, the manifest and its runtime config as they came out of dbt
(``compat.save_parse``: the placeholder schema still in them, no credentials) beside a
*fingerprint* of everything that parse read beyond what the cache's key already names
(profile, target, adapter, vars, dbt version):

* every file under the project's resource paths (models, macros, seeds, tests,
  snapshots, analyses, docs, assets, functions) and its packages' folder, by content,
  and the project's own YAML files at its root (``dbt_project.yml``, ``packages.yml``,
  ``dependencies.yml``, ``selectors.yml``, ``package-lock.yml``);
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

from dbtproof.redaction import SECRET_ENV_PREFIX

#: The format of the fingerprint file; another value is not read.
FORMAT = 1
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
)
#: A file modified this close to (or after) a parse's start may not be what dbt read.
MTIME_MARGIN_NS = 2_000_000_000
#: Env vars whose values never enter the fingerprint (dbt's secrets, dbtproof's own).
SECRET_PREFIXES = (SECRET_ENV_PREFIX, "DBTPROOF_SECRET_")
#: Distributions whose versions the fingerprint names.
_DISTRIBUTIONS = ("dbt-core", "dbt-adapters", "dbt-common", "dbtproof")


@dataclass(frozen=True)
class ParseInputs:
    """What a parse read besides the cache's key: folders (relative to the project) and
    env var names."""

    folders: tuple[str, ...]
    env_names: tuple[str, ...]


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


def _files(root: Path, folders: Iterable[str]) -> Iterator[Path]:
    """The root's YAML files, then every file under each folder, in a fixed order."""
    for name in ROOT_FILES:
        if (root / name).is_file():
            yield root / name
    seen: set[Path] = set()
    for folder in sorted(set(folders)):
        top = (root / folder).resolve()
        if top in seen or not top.is_dir():
            continue
        seen.add(top)
        for directory, subfolders, names in os.walk(top, followlinks=True):
            subfolders.sort()
            for name in sorted(names):
                yield Path(directory) / name


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
        for path in _files(root, inputs.folders):
            stat = path.stat()
            if changed_after_ns is not None and stat.st_mtime_ns >= (
                changed_after_ns - MTIME_MARGIN_NS
            ):
                return None
            add("file", os.path.relpath(path, root), hashlib.sha256(path.read_bytes()).hexdigest())
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
        inputs = ParseInputs(tuple(stored["folders"]), tuple(stored["env_names"]))
        expected = str(stored["digest"])
    except (OSError, ValueError, KeyError, TypeError):
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
        {
            "format": FORMAT,
            "folders": list(inputs.folders),
            "env_names": list(inputs.env_names),
            "digest": found,
        },
        indent=1,
    )
    partial = fingerprint_file(folder).with_suffix(f".{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(fingerprint_file(folder))
    return True
