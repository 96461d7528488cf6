"""The warm parse: dbt's partial parsing kept valid from one pytest run to the next.

Every run writes into a namespace of its own, and dbt throws its partial parse away
when the target schema (or the DuckDB file) changes, so parsing with the run's profile
is a cold parse every time. Instead the session's parse uses a *parse profile*: the
run's derived profile with a placeholder schema (:data:`PARSE_SCHEMA`) and, on DuckDB,
placeholder files in the cache folder (named as the run's file, so ``database`` is the
same) — identical from run to run, so dbt's own check (dbt version, command-line vars,
profile and target name, the profile's connection settings, ``dbt_project.yml`` and the
env vars it reads, each file's checksum and env vars) decides what to parse again.
:func:`dbtproof.safety.relocation.from_parse_schema` then puts the namespace where the
placeholder is. dbt opens no connection to parse.

The cache lives in ``<project>/<target-path>/dbtproof-parse/<key>/`` (``target/`` for
dbt's ``partial_parse.msgpack``, ``profile/`` for the parse profile), one folder per
profile, target, adapter, vars and dbt version (so alternating between them does not
throw each other's cache away), guarded by a file lock: two pytest runs or xdist
workers never parse into one folder at once. dbt itself falls back to a full parse
when the cache is stale or unreadable; a cache that cannot be used at all (no room to
write, the lock held too long, dbt failing on it) gives a cold parse in the run's own
folder, with a note.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbtproof.session import parse_snapshot

try:  # POSIX only; elsewhere the warm parse is not used
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: The placeholder ``target.schema`` of the warm parse: a name no project writes.
PARSE_SCHEMA = "dbtproof_parse"
#: The cache's folder under the project's target path.
CACHE_FOLDER = "dbtproof-parse"
#: dbt's partial-parse file, in the cache folder's ``target/``.
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
_LOCK_FILE = ".lock"
#: How long a run waits for another run's parse into the same cache before parsing cold.
LOCK_TIMEOUT = 120.0
_POLL = 0.05


@dataclass(frozen=True)
class ParseCache:
    """One warm-parse cache folder."""

    folder: Path

    @property
    def target_path(self) -> Path:
        """dbt's ``--target-path`` for the parse (holds ``partial_parse.msgpack``)."""
        return self.folder / "target"

    @property
    def profile_folder(self) -> Path:
        """Where the parse profile is written."""
        return self.folder / "profile"

    @property
    def partial_parse_file(self) -> Path:
        """dbt's partial-parse file."""
        return self.target_path / PARTIAL_PARSE_FILE

    def stamp(self) -> int | None:
        """The partial-parse file's modification time (ns), None when there is none."""
        try:
            return self.partial_parse_file.stat().st_mtime_ns
        except OSError:
            return None

    def discard(self) -> None:
        """Remove dbt's partial-parse file and the kept parse (the next parse is a full one)."""
        parse_snapshot.forget(self.folder)
        self.partial_parse_file.unlink(missing_ok=True)


def project_target_path(root: Path) -> Path:
    """The project's target path: ``target-path`` of ``dbt_project.yml`` when it is a
    plain value, else ``target``, under the project's folder."""
    import yaml

    try:
        data = yaml.safe_load((root / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        data = {}
    value = data.get("target-path") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value or "{" in value:
        value = "target"
    return root / value


def cache_for(
    project_root: Path,
    profile: str,
    target: str,
    adapter_type: str,
    vars: dict[str, Any],
    dbt_version: str,
) -> ParseCache:
    """The cache folder of one profile, target, adapter, set of vars and dbt version."""
    key = json.dumps(
        [profile, target, adapter_type, vars, dbt_version], sort_keys=True, default=str
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return ParseCache(project_target_path(project_root) / CACHE_FOLDER / digest)


@contextmanager
def locked(cache: ParseCache, timeout: float = LOCK_TIMEOUT) -> Iterator[bool]:
    """Hold the cache's file lock while the block runs; yields False (and holds nothing)
    when the folder cannot be made or the lock is not had within *timeout* seconds."""
    if fcntl is None:  # pragma: no cover
        yield False
        return
    try:
        cache.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(cache.folder / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield False
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(_POLL)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@dataclass
class StartTimings:
    """Where a session's start went: ``(step, seconds)`` in order, and notes on the parse."""

    steps: list[tuple[str, float]] = field(default_factory=list)
    #: How the session's manifest was had (warm parse, cache updated, cold and why).
    parse: str = ""

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as step *name*."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.steps.append((name, time.perf_counter() - started))

    def lines(self) -> list[str]:
        """A few lines for the run's header (``--dbt-timings``)."""
        total = sum(seconds for _, seconds in self.steps)
        parts = [f"{name} {seconds:.2f} s" for name, seconds in self.steps]
        lines = [f"start {total:.2f} s: " + ", ".join(parts)]
        if self.parse:
            lines.append(f"parse: {self.parse}")
        return lines
