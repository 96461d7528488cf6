"""The evidence of an agent's session: one hash-chained record per tool call.

A ``dbtproof mcp`` server writes an evidence file (the chain of :mod:`dbtproof.evidence`,
checked by ``dbtproof evidence verify``): ``run_start`` when it starts, a ``tool_call``
record for every call (the tool, the sha256 of its arguments' canonical JSON, the
outcome, how long it took — never a result, a row or a credential), and ``run_end`` when
it stops. Every string goes through the server's secret scrubbing before it is written.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dbtproof.evidence import facts
from dbtproof.evidence.chain import ChainWriter
from dbtproof.evidence.records import canonical, scrubbed

#: The outcomes a tool call is recorded with.
OUTCOMES = ("ok", "refused", "declined", "error")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def argument_digest(arguments: Mapping[str, Any]) -> str:
    """The sha256 of the arguments' canonical JSON (what the record holds of them)."""
    return "sha256:" + hashlib.sha256(canonical(dict(arguments)).encode("utf-8")).hexdigest()


@dataclass
class ToolAudit:
    """The evidence file of one server: opened by :meth:`start`, closed by :meth:`finish`."""

    path: Path
    scrub: Callable[[str], str] = field(repr=False)
    started_at: float = field(default_factory=time.time)
    counts: dict[str, int] = field(default_factory=dict)
    _writer: ChainWriter | None = field(default=None, repr=False)

    def start(self, run_id: str, project_dir: Path, target: Mapping[str, Any]) -> None:
        """Write ``run_start``: the server, the project, the target (names, no setting)."""
        self._writer = ChainWriter(self.path)
        self._append(
            {
                "type": "run_start",
                "run_id": run_id,
                "kind": "mcp",
                "time": _iso(self.started_at),
                "ci": facts.ci_facts(),
                "git": facts.git_facts(project_dir),
                "versions": facts.versions(target.get("adapter")),
                "project_dir": str(project_dir),
                **dict(target),
            }
        )

    def record(self, tool: str, arguments: Mapping[str, Any], outcome: str, started: float) -> None:
        """Write one ``tool_call`` record (*outcome* one of :data:`OUTCOMES`)."""
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self._append(
            {
                "type": "tool_call",
                "tool": tool,
                "arguments": argument_digest(arguments),
                "outcome": outcome,
                "time": _iso(started),
                "duration": round(time.time() - started, 3),
            }
        )

    def finish(self, exit_status: int) -> str | None:
        """Write ``run_end`` and close the file; return the final digest."""
        if self._writer is None:
            return None
        ended = time.time()
        last = self._append(
            {
                "type": "run_end",
                "time": _iso(ended),
                "duration": round(ended - self.started_at, 3),
                "exit_status": int(exit_status),
                "counts": dict(sorted(self.counts.items())),
                "tool_calls": sum(self.counts.values()),
                "artifacts": [],
            }
        )
        self._writer.close()
        self._writer = None
        return f"sha256:{last['digest']}"

    def _append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        assert self._writer is not None, "ToolAudit.start was not called"
        return self._writer.append(scrubbed(dict(record), self.scrub))
