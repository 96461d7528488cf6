"""What a reviewer reads without opening logs: the run in Markdown, for GitHub's job
summary (``$GITHUB_STEP_SUMMARY``), from the run's records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: How many lines of a failure's message the summary shows (its first failing rows).
MESSAGE_LINES = 14
#: How many failing tests the summary lists.
FAILURES_SHOWN = 50


def short_message(message: str | None, lines: int = MESSAGE_LINES) -> str:
    """A failure's message up to its compiled SQL, at most *lines* lines."""
    text = (message or "").split("--- compiled SQL ---", 1)[0].rstrip()
    kept = text.splitlines()[:lines]
    return "\n".join(kept) + ("\n..." if len(text.splitlines()) > lines else "")


def verdict(records: Sequence[Mapping[str, Any]]) -> str:
    """``PASSED``, ``WARNED`` or ``FAILED``, as the attestation's ``result``."""
    end = records[-1]
    outcomes = {r["outcome"] for r in records if r.get("type") == "test"}
    if outcomes & {"failed", "error"} or end.get("exit_status") not in (0, None):
        return "FAILED"
    return "WARNED" if "warned" in outcomes else "PASSED"


def _cell(text: Any) -> str:
    return str(text if text is not None else "-").replace("|", "\\|").replace("\n", "<br>")


def markdown(records: Sequence[Mapping[str, Any]], evidence: str | None) -> str:
    """The run's Markdown summary: result, counts by outcome, the namespace, the commit,
    the evidence file and its final digest, and each failing test with its message."""
    start, end = records[0], records[-1]
    commit = (start.get("git") or {}).get("commit")
    lines = [
        f"## dbtproof: {start.get('project') or 'dbt project'} on target "
        f"`{start.get('target')}`: {verdict(records)}",
        "",
        "| outcome | tests |",
        "|---|---:|",
        *(f"| {outcome} | {count} |" for outcome, count in (end.get("counts") or {}).items()),
        "",
        "| | |",
        "|---|---|",
        f"| run | `{start.get('run_id')}` |",
        f"| namespace | {', '.join(f'`{n}`' for n in start.get('namespaces') or []) or '-'} |",
        f"| commit | `{commit or 'unknown'}` |",
    ]
    if evidence:
        lines += [
            f"| evidence | `{evidence}` |",
            f"| final digest | `sha256:{end.get('digest')}` |",
        ]
    failing = [r for r in records if r.get("outcome") in ("failed", "error")]
    if failing:
        lines += ["", f"### Failing tests ({len(failing)})", ""]
        for test in failing[:FAILURES_SHOWN]:
            node = f" (`{test['unique_id']}`)" if test.get("unique_id") else ""
            lines += [
                f"<details><summary><code>{_cell(test['nodeid'])}</code>{node}: "
                f"{test['outcome']}</summary>",
                "",
                "```",
                short_message(test.get("message")).replace("```", "'''"),
                "```",
                "</details>",
                "",
            ]
        if len(failing) > FAILURES_SHOWN:
            lines.append(f"... and {len(failing) - FAILURES_SHOWN} more (see the evidence file)")
    return "\n".join(lines) + "\n"
