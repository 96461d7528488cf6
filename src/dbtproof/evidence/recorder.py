"""What one pytest process saw, for the evidence file: :class:`EvidenceRecorder`.

With an evidence file, every process records the dbt invocations it ran (and moves the
``run_results.json`` and ``manifest.json`` each wrote into the evidence folder, one
folder per invocation id); every process records the facts of its dbt session. The
process that writes the file (the only one, or xdist's controller) also records every
test from its reports, takes the workers' records (:meth:`EvidenceRecorder.take`) and
writes the chain, the step summary and the report at the end
(:meth:`EvidenceRecorder.write`). Everything recorded passes through the run's secret
registry (*scrub*, *scrub_file*) before it is hashed or written.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dbtproof.evidence import facts, merge
from dbtproof.evidence.chain import write_chain
from dbtproof.evidence.dag import project_dag
from dbtproof.evidence.files import project_files
from dbtproof.evidence.records import (
    artifacts_folder,
    failure_message,
    file_sha256,
    outcome_of,
    scrubbed,
)
from dbtproof.evidence.report import render
from dbtproof.evidence.summary import markdown

#: The artifacts of each invocation that are kept.
ARTIFACTS = ("run_results.json", "manifest.json")
#: Where the recorder's records travel in an xdist worker's ``workeroutput``.
WORKEROUTPUT_KEY = "dbtproof_evidence"
#: What tells the warehouse's view of who the run is, by adapter type.
IDENTITY_SQL = MappingProxyType(
    {
        "postgres": "select current_user as current_user, session_user as session_user",
        "redshift": "select current_user as current_user, session_user as session_user",
        "snowflake": "select current_user() as current_user, current_role() as current_role",
        "bigquery": "select session_user() as session_user",
    }
)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class EvidenceRecorder:
    """The evidence one pytest process gathers (see the module's doc)."""

    #: The evidence file (written at the end by the controller, or the only process);
    #: None: no file, only the summary or the report below.
    path: Path | None
    run_id: str
    worker_id: str | None
    project_dir: Path
    scrub: Callable[[str], str] = field(repr=False)
    scrub_file: Callable[[Path], object] = field(repr=False)
    #: ``--dbt-report``: the HTML report; and the Markdown summary (GitHub's
    #: ``$GITHUB_STEP_SUMMARY``, appended to).
    report_path: Path | None = None
    summary_path: Path | None = None
    started_at: float = field(default_factory=time.time)
    #: The project's DAG (:func:`dbtproof.evidence.dag.project_dag`), for the report.
    dag: dict[str, Any] = field(default_factory=dict, repr=False)
    invocations: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    #: The reports of each test seen so far, by node id and phase.
    _phases: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    #: ``run_end`` as written (None until :meth:`write`).
    written: dict[str, Any] | None = None

    # -- what a process sees -----------------------------------------------------------

    def on_invocation(self, invocation: Any) -> None:
        """Record one dbt invocation (a :class:`dbtproof.session.runner.Invocation`) and keep the
        artifacts it wrote."""
        kept = []
        if self.path is not None and invocation.command not in ("parse", "ls", "list"):
            for name in ARTIFACTS:
                source = Path(invocation.target_path) / name
                if source.is_file():
                    destination = artifacts_folder(self.path) / invocation.invocation_id / name
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(source), destination)
                    kept.append(destination.relative_to(self.path.parent).as_posix())
        self.invocations.append(
            {
                "type": "invocation",
                "worker": self.worker_id,
                "worker_seq": len(self.invocations),
                "invocation_id": invocation.invocation_id,
                "command": invocation.command,
                "args": list(invocation.args),
                "success": invocation.success,
                "started_at": _iso(invocation.started_at),
                "duration": round(invocation.ended_at - invocation.started_at, 3),
                "nodes": [
                    {
                        "unique_id": node.unique_id,
                        "status": node.status,
                        **({"failures": node.failures} if node.failures else {}),
                        **({"message": str(node.message)[:2000]} if node.failed else {}),
                    }
                    for node in invocation.nodes
                ],
                "artifacts": [{"path": path, "sha256": None} for path in kept],
            }
        )

    def on_session(self, session: Any) -> None:
        """Record the facts of this process's started dbt session (and its DAG)."""
        if self.report_path is not None:
            self.dag = project_dag(session.manifest)
        target = session.profile_target
        config = session.runtime_config
        credentials = getattr(config, "credentials", None)
        credentials_set = session.settings.credentials
        self.sessions.append(
            {
                "worker": self.worker_id,
                "namespace": session.schema,
                "project": session.project.name,
                "profile": target.profile_name,
                "target": target.target_name,
                "adapter": target.adapter_type,
                "profiles_path": str(target.profiles_path),
                "profiles_sha256": target.profiles_sha256,
                "host": getattr(credentials, "host", None),
                "database": session.database,
                "warehouse_identity": self._identity(session),
                "credentials": credentials_set.descriptions() if credentials_set else [],
                "project_files": project_files(
                    session.manifest, session.project.root, session.project.name
                ),
            }
        )

    @staticmethod
    def _identity(session: Any) -> dict[str, Any] | None:
        sql = IDENTITY_SQL.get(session.adapter_type)
        if sql is None:
            return None
        try:
            rows = session.connections.query(sql)
        except Exception as exc:  # noqa: BLE001 - evidence says what it could not learn
            return {"error": " ".join(str(exc).split())[:500]}
        return {key: None if value is None else str(value) for key, value in rows[0].items()}

    def on_report(self, report: Any) -> None:
        """Record a test once its teardown report is in (the writing process only)."""
        phases = self._phases.setdefault(report.nodeid, {})
        phases[report.when] = report
        if report.when != "teardown":
            return
        del self._phases[report.nodeid]
        properties = dict(getattr(phases.get("call") or report, "user_properties", ()) or ())
        properties.update(dict(getattr(report, "user_properties", ()) or ()))
        duration = sum(float(getattr(r, "duration", 0.0) or 0.0) for r in phases.values())
        self.tests.append(
            {
                "type": "test",
                "nodeid": report.nodeid,
                "unique_id": properties.get("dbt_unique_id"),
                "worker": getattr(report, "worker_id", None) or self.worker_id,
                "outcome": outcome_of(phases),
                "duration": round(duration, 3),
                "message": failure_message(phases),
            }
        )

    # -- handing over, and writing -----------------------------------------------------

    def _finish_artifacts(self) -> None:
        """Scrub each kept artifact and record its sha256 (once every secret is known)."""
        if self.path is None:
            return
        for record in self.invocations:
            for artifact in record["artifacts"]:
                path = self.path.parent / artifact["path"]
                self.scrub_file(path)
                artifact["sha256"] = file_sha256(path) if path.is_file() else None

    def handover(self) -> dict[str, Any]:
        """This worker's records, for ``workeroutput`` (artifacts scrubbed and hashed)."""
        self._finish_artifacts()
        return {
            "invocations": scrubbed(self.invocations, self.scrub),
            "sessions": scrubbed(self.sessions, self.scrub),
            "dag": self.dag,
        }

    def take(self, output: Mapping[str, Any]) -> None:
        """Take a worker's :meth:`handover`."""
        self.invocations.extend(output.get("invocations", ()))
        self.sessions.extend(output.get("sessions", ()))
        if not self.dag:
            self.dag = dict(output.get("dag") or {})

    def write(self, exit_status: int) -> dict[str, Any]:
        """Write the evidence file, then the summary and the report; return ``run_end``
        as written (its ``digest`` is the final digest; none without an evidence file)."""
        self._finish_artifacts()
        sessions = sorted(self.sessions, key=lambda s: merge.worker_key(s.get("worker")))
        first = sessions[0] if sessions else {}
        common = ("project", "profile", "target", "adapter", "profiles_path", "profiles_sha256",
                  "host", "database", "credentials", "project_files")  # fmt: skip
        run_start = {
            "type": "run_start",
            "run_id": self.run_id,
            "time": _iso(self.started_at),
            "ci": facts.ci_facts(),
            "git": facts.git_facts(self.project_dir),
            "versions": facts.versions(first.get("adapter")),
            "project_dir": str(self.project_dir),
            **{key: first.get(key) for key in common},
            "namespaces": [s["namespace"] for s in sessions],
            "warehouse_identity": {s["namespace"]: s.get("warehouse_identity") for s in sessions},
        }
        counts: dict[str, int] = {}
        for test in self.tests:
            counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
        ended = time.time()
        run_end = {
            "type": "run_end",
            "time": _iso(ended),
            "duration": round(ended - self.started_at, 3),
            "exit_status": int(exit_status),
            "counts": dict(sorted(counts.items())),
            "tests": len(self.tests),
            "invocations": len(self.invocations),
            "artifacts": merge.artifact_list(self.invocations),
        }
        records = [
            scrubbed(r, self.scrub)
            for r in merge.ordered(run_start, self.invocations, self.tests, run_end)
        ]
        if self.path is not None:
            records[-1] = write_chain(self.path, records)
        self.written = records[-1]
        evidence = str(self.path) if self.path is not None else None
        if self.summary_path is not None:
            with self.summary_path.open("a", encoding="utf-8") as summary:
                summary.write(self.scrub(markdown(records, evidence)))
        if self.report_path is not None:
            self.report_path.parent.mkdir(parents=True, exist_ok=True)
            page = render(records, scrubbed(self.dag, self.scrub), evidence)
            self.report_path.write_text(self.scrub(page), encoding="utf-8")
        return self.written
