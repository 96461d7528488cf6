"""``dbtproof evidence verify``: recompute the chain and the artifacts' hashes.

The answer is OK, or the first place where the file differs from what was written:
a record changed, removed, inserted or moved, a kept artifact changed, removed or added,
or (``--digest``) a final digest other than the one published when the run ended. The
bytes are checked as written: LF line endings, no whitespace around a record, each record
its canonical JSON, a newline after the last.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbtproof.errors import EvidenceError
from dbtproof.evidence.records import (
    GENESIS,
    SCHEMA,
    artifacts_folder,
    canonical,
    file_sha256,
    final_digest,
    line_hash,
)


@dataclass
class Verdict:
    """What :func:`verify` found: ``problem`` is None when the file is intact."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    digest: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the file and its artifacts are as written."""
        return self.problem is None

    def describe(self) -> str:
        """One line for people: OK with the digest, or the first problem."""
        if self.ok:
            return (
                f"OK: {self.path}: {len(self.records)} records, chain and artifacts intact; "
                f"final digest sha256:{self.digest}"
            )
        return f"FAILED: {self.path}: {self.problem}"


def _read(path: Path) -> str:
    """The file's exact text: bytes decoded as UTF-8, line endings untouched."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EvidenceError(
            f"dbtproof evidence: no file {path}. Pass the path given to --dbt-evidence."
        ) from None
    except OSError as exc:
        raise EvidenceError(f"dbtproof evidence: cannot read {path}: {exc}.") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EvidenceError(f"dbtproof evidence: cannot read {path}: {exc}.") from None


def _where(record: dict[str, Any]) -> str:
    kind = record.get("type", "?")
    name = record.get("nodeid") or record.get("invocation_id") or record.get("run_id")
    return f"{kind} {name}" if name else str(kind)


def verify(path: Path, digest: str | None = None) -> Verdict:
    """Check the evidence file *path* and its artifacts (and its final digest against
    *digest*, as published elsewhere). Raises :class:`EvidenceError` if it cannot be read."""
    verdict = Verdict(path=path)
    text = _read(path)
    lines = text.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        verdict.problem = _line_problem(number, line)
        if verdict.problem is not None:
            return verdict
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            verdict.problem = f"line {number} is not a JSON record: it was changed"
            return verdict
        if not isinstance(record, dict) or record.get("schema") != SCHEMA:
            verdict.problem = f"line {number} is not a {SCHEMA} record: it was changed"
            return verdict
        if line != line.strip():
            verdict.problem = (
                f"line {number} ({_where(record)}) has whitespace around its record: it was changed"
            )
            return verdict
        records.append(record)
    verdict.records = records
    if not records:
        verdict.problem = "the file holds no record: every record was removed"
        return verdict
    if not ends_with_newline:
        verdict.problem = (
            f"the file does not end with a newline after line {len(lines)}: it was changed "
            f"(each record is written as one line ending in a newline)"
        )
        return verdict
    verdict.problem = (
        _chain_problem(lines, records)
        or _form_problem(lines, records)
        or _artifact_problem(path, records)
    )
    if verdict.problem is None:
        verdict.digest = records[-1].get("digest")
        if digest is not None and digest.removeprefix("sha256:") != verdict.digest:
            verdict.problem = (
                f"the file's final digest is sha256:{verdict.digest}, not the published "
                f"{digest}: the whole file was rewritten (or this is another run's file)"
            )
    return verdict


def _line_problem(number: int, line: str) -> str | None:
    """What is wrong with line *number* before its record is read: a carriage return (CRLF
    line endings) or an empty line."""
    if line.endswith("\r"):
        return (
            f"line {number} ends in a carriage return (CRLF line endings): the file was "
            f"rewritten (an evidence file is written with LF line endings only)"
        )
    if not line:
        return f"line {number} is empty: it was inserted"
    return None


def _form_problem(lines: list[str], records: list[dict[str, Any]]) -> str | None:
    """The first line that is not its record's canonical JSON (as the writer wrote it)."""
    for number, (line, record) in enumerate(zip(lines, records, strict=True), 1):
        if canonical(record) != line:
            return (
                f"line {number} ({_where(record)}) was changed: it is not its record's "
                f"canonical JSON"
            )
    return None


def _chain_problem(lines: list[str], records: list[dict[str, Any]]) -> str | None:
    hashes = [line_hash(line) for line in lines]
    seqs = [record.get("seq") for record in records]
    for index, record in enumerate(records):
        number, seq = index + 1, record.get("seq")
        expected_prev = GENESIS if index == 0 else hashes[index - 1]
        if record.get("prev") == expected_prev and seq == index:
            continue
        if index >= 1 and record.get("prev") == (GENESIS if index == 1 else hashes[index - 2]):
            return (
                f"line {index} ({_where(records[index - 1])}) was inserted: line {number} "
                f"chains to the line before it"
            )
        if isinstance(seq, int) and seq < index and seq in seqs[:index]:
            return f"line {number} ({_where(record)}) was inserted: record {seq} is repeated"
        if isinstance(seq, int) and seq != index:
            if index in seqs[index + 1 :]:
                moved = seqs.index(index, index + 1) + 1
                return (
                    f"records were reordered: line {number} holds record {seq} "
                    f"({_where(record)}), record {index} is at line {moved}"
                )
            if seq > index:
                return (
                    f"record(s) {index}..{seq - 1} were removed before line {number} "
                    f"({_where(record)})"
                )
            return f"line {number} ({_where(record)}) was inserted: record {seq} is repeated"
        changed = index - 1
        following_ok = index + 1 >= len(records) or records[index + 1].get("prev") == hashes[index]
        if index > 0 and following_ok:
            return f"line {changed + 1} ({_where(records[changed])}) was changed"
        return f"line {number} ({_where(record)}) was changed"
    ends = [i for i, r in enumerate(records) if r.get("type") == "run_end"]
    if ends and ends[0] < len(records) - 1:
        after = ends[0] + 1
        return (
            f"line {after + 1} ({_where(records[after])}) was inserted after the run_end "
            f"record (line {after})"
        )
    last = records[-1]
    if last.get("type") != "run_end":
        return (
            f"the file ends at line {len(records)} ({_where(last)}) without its run_end "
            f"record: records were removed at the end (or the run did not finish)"
        )
    if final_digest(last) != last.get("digest"):
        return f"line {len(records)} (run_end) was changed: its digest does not match it"
    return None


def _artifact_problem(path: Path, records: list[dict[str, Any]]) -> str | None:
    folder = path.parent
    named: dict[str, str] = {}
    for number, record in enumerate(records, 1):
        for artifact in record.get("artifacts", ()) if record.get("type") == "invocation" else ():
            named[artifact["path"]] = artifact["sha256"]
            file = folder / artifact["path"]
            if not file.is_file():
                return f"artifact {artifact['path']} (of line {number}) was removed"
            if file_sha256(file) != artifact["sha256"]:
                return f"artifact {artifact['path']} (of line {number}) was changed"
    listed = {a["path"]: a["sha256"] for a in records[-1].get("artifacts", ())}
    if listed != named:
        return f"line {len(records)} (run_end) lists other artifacts than the invocations keep"
    kept = artifacts_folder(path)
    if kept.is_dir():
        for file in sorted(kept.rglob("*")):
            relative = file.relative_to(folder).as_posix()
            if file.is_file() and relative not in named:
                return f"artifact {relative} was inserted: no record names it"
    return None
