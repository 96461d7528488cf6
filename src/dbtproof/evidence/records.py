"""The evidence file's records: their schema, canonical JSON, and the hashes that chain them.

A file is JSON Lines, one record per line, each a JSON object with:

- ``schema``: :data:`SCHEMA` (the version of this layout);
- ``seq``: its place in the file, from 0;
- ``type``: ``run_start``, ``invocation``, ``test`` or ``run_end``;
- ``prev``: the sha256 of the previous line's bytes (:data:`GENESIS` for the first).

``run_end`` also carries ``artifacts`` (each kept file with its sha256) and ``digest``:
the sha256 of its own canonical JSON without ``digest``, so the digest covers the whole
chain (through ``prev``), every artifact, and the record itself. That digest is the
run's final digest, published outside the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: The version of the record layout.
SCHEMA = "dbtproof.evidence/1"
#: ``prev`` of the first record.
GENESIS = "0" * 64
#: The types of record, in the order a file holds them.
TYPES = ("run_start", "invocation", "test", "run_end")


def canonical(record: Mapping[str, Any]) -> str:
    """*record* as one line of canonical JSON (sorted keys, no spaces, UTF-8 as is)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def line_hash(line: str) -> str:
    """The sha256 of one line of the file (without its newline)."""
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def final_digest(run_end: Mapping[str, Any]) -> str:
    """The run's final digest: sha256 of ``run_end``'s canonical JSON without ``digest``."""
    body = {key: value for key, value in run_end.items() if key != "digest"}
    return line_hash(canonical(body))


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    """*value* (JSON-like) with every string in it (keys too) passed through *scrub*."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {scrub(str(k)): scrubbed(v, scrub) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrubbed(item, scrub) for item in value]
    return value


def outcome_of(phases: Mapping[str, Any]) -> str:
    """A test's outcome from its reports by phase (``setup``, ``call``, ``teardown``):
    ``passed``, ``failed``, ``error``, ``skipped``, ``xfailed``, ``xpassed``, or
    ``warned`` (passed with a warning: a dbt test with ``severity: warn``)."""
    setup, call, teardown = (phases.get(w) for w in ("setup", "call", "teardown"))
    for report in (setup, teardown):
        if report is not None and report.failed:
            return "error"
    for report in (setup, call):
        if report is not None and hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
    if (setup is not None and setup.skipped) or (call is not None and call.skipped):
        return "skipped"
    if call is not None and call.failed:
        return "failed"
    if any(name == "dbtproof_warned" for name, _ in getattr(call, "user_properties", ())):
        return "warned"
    return "passed"


def failure_message(phases: Mapping[str, Any], limit: int = 2000) -> str | None:
    """The short message of a failing or erroring test: the crash line (pytest's
    ``-r`` summary line), or the report's last lines."""
    for when in ("setup", "call", "teardown"):
        report = phases.get(when)
        if report is None or not report.failed:
            continue
        crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
        text = getattr(crash, "message", None) or str(getattr(report, "longreprtext", "") or "")
        lines = text.strip().splitlines()
        if lines and re.match(r"\[gw\d+\] ", lines[0]):  # xdist's line on the worker
            lines = lines[1:]
        return "\n".join(lines).strip()[:limit] or None
    return None


def artifacts_folder(path: Path) -> Path:
    """The folder the artifacts of the evidence file *path* are kept in:
    ``<stem>-artifacts/<invocation id>/`` beside it."""
    return path.with_name(f"{path.stem}-artifacts")
