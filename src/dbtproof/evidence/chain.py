"""Writing the hash chain: each record carries the sha256 of the line before it.

:func:`write_chain` writes a whole run's records into a new file (never over an existing
one), each line flushed as it is written; the last, ``run_end``, gets the run's final
digest (:func:`dbtproof.evidence.records.final_digest`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dbtproof.evidence.records import GENESIS, SCHEMA, canonical, final_digest, line_hash


class ChainWriter:
    """Appends records to a new evidence file, chaining each to the one before."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seq = 0
        self.prev = GENESIS
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": an evidence file is never overwritten; newline="": "\n" as written, on
        # every OS (verify checks the exact bytes)
        self._handle = path.open("x", encoding="utf-8", newline="")

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write *record* (with ``schema``, ``seq`` and ``prev`` set); return it as written.

        A ``run_end`` record gets its ``digest``.
        """
        full = {**record, "schema": SCHEMA, "seq": self.seq, "prev": self.prev}
        full.pop("digest", None)
        if full.get("type") == "run_end":
            full["digest"] = final_digest(full)
        line = canonical(full)
        self._handle.write(line + "\n")
        self._handle.flush()
        self.prev = line_hash(line)
        self.seq += 1
        return full

    def close(self) -> None:
        """Close the file, synced to disk."""
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()


def write_chain(path: Path, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Write *records* (the last a ``run_end``) as a new chained file; return the last
    record as written (its ``digest`` is the run's final digest)."""
    writer = ChainWriter(path)
    last: dict[str, Any] = {}
    try:
        for record in records:
            last = writer.append(record)
    finally:
        writer.close()
    return last
