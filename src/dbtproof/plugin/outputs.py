"""The run's evidence (``--dbt-evidence``, ``--dbt-report``, GitHub's step summary) opened
and finished, and the terminal display of what dbt is doing (:mod:`dbtproof.session.progress`):
what the run's state owns as ``state.evidence`` and ``state.progress``, made here."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dbtproof.plugin.options import is_xdist_worker
from dbtproof.session.progress import Progress

if TYPE_CHECKING:
    from dbtproof.evidence.recorder import EvidenceRecorder
    from dbtproof.safety.redaction import SecretRegistry


def open_evidence(
    config: pytest.Config,
    run_id: str,
    worker_id: str | None,
    project_dir: Path,
    secrets: SecretRegistry,
) -> EvidenceRecorder | None:
    """The run's evidence recorder: recording when ``--dbt-evidence`` (else
    ``dbt_evidence``) names a file (``{run_id}`` in it becomes the run id),
    ``--dbt-report`` an HTML page, or the run is a GitHub Actions job (its step
    summary); None: no evidence. The evidence file must not exist: evidence is never
    overwritten. Raises :class:`~dbtproof.errors.EvidenceError`."""
    from dbtproof.errors import EvidenceError
    from dbtproof.evidence.recorder import EvidenceRecorder
    from dbtproof.evidence.records import artifacts_folder

    value = config.getoption("dbt_evidence")
    base = config.invocation_params.dir
    if not value:
        value, base = config.getini("dbt_evidence") or None, config.rootpath
    path = _path(base, value, run_id)
    report = _path(config.invocation_params.dir, config.getoption("dbt_report"), run_id)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if os.environ.get("GITHUB_ACTIONS") != "true" or is_xdist_worker(config):
        summary = None
    if path is None and report is None and not summary:
        return None
    if path is not None and not is_xdist_worker(config):
        for existing in (path, artifacts_folder(path)):
            if existing.exists():
                raise EvidenceError(
                    f"dbtproof: --dbt-evidence: {existing} exists, and evidence is never "
                    f"overwritten. Pass a new path (`{{run_id}}` in it is replaced by the "
                    f"run id, e.g. --dbt-evidence 'evidence/{{run_id}}.jsonl')."
                )
    return EvidenceRecorder(
        path=path,
        run_id=run_id,
        worker_id=worker_id,
        project_dir=project_dir,
        scrub=secrets.scrub,
        scrub_file=secrets.scrub_file,
        report_path=report,
        summary_path=Path(summary) if summary else None,
    )


def _path(base: Path, value: str | None, run_id: str) -> Path | None:
    """*value* (``{run_id}`` replaced, ``~`` expanded) as an absolute path from *base*."""
    if not value:
        return None
    return (base / os.path.expanduser(str(value).replace("{run_id}", run_id))).resolve()


def finish_evidence(
    evidence: EvidenceRecorder | None, config: pytest.Config, exit_status: int
) -> dict[str, Any] | None:
    """Hand this worker's evidence to the controller, or write the evidence file;
    returns ``run_end`` as written (None on a worker, or without evidence)."""
    if evidence is None:
        return None
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        from dbtproof.evidence.recorder import WORKEROUTPUT_KEY

        workeroutput[WORKEROUTPUT_KEY] = evidence.handover()
        return None
    return evidence.write(exit_status)


def open_progress(config: pytest.Config, secrets: SecretRegistry) -> Progress | None:
    """When stdout is a terminal (not with ``-q``, not on an xdist worker, whose output
    is not a terminal): the display of what dbt is doing (:mod:`dbtproof.session.progress`),
    written by a pytest terminal writer of its own on the terminal (a copy of stdout's
    descriptor, taken now, while pytest captures nothing), its lines scrubbed."""
    from _pytest.config import create_terminal_writer

    quiet = config.pluginmanager.is_blocked("terminal") or config.option.verbose < 0
    if quiet or is_xdist_worker(config):
        return None
    try:
        descriptor = sys.stdout.fileno()
        if not os.isatty(descriptor):
            return None
        stream = os.fdopen(os.dup(descriptor), "w", encoding="utf-8", errors="replace")
    except (AttributeError, OSError, ValueError):  # no real stdout (a test's capture)
        return None
    config.add_cleanup(stream.close)
    writer = create_terminal_writer(config, stream)
    secrets.scrub_writes(writer)
    return Progress(writer, lambda: _current_width(config))


def _current_width(config: pytest.Config) -> int:
    """How much of its current line pytest's terminal has written (0 without a terminal)."""
    if config.pluginmanager.get_plugin("terminalreporter") is None:
        return 0
    return config.get_terminal_writer().width_of_current_line
