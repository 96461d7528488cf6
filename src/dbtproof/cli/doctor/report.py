"""What ``dbtproof doctor`` found: findings by section, and their text and JSON forms.

Every finding is ``ok``, ``info``, ``warning`` or ``error``; the report is good (exit
code 0) when there is no error, that is when tests could run. Nothing a finding holds is
a secret value; the report is also scrubbed of every secret it was told about before it
is printed (:meth:`Report.scrubbed`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from dbtproof.safety.redaction import SecretRegistry

#: The report's sections, in order.
SECTIONS = ("project", "profiles", "target", "environment", "credentials", "connection")
_MARKS = MappingProxyType(
    {"ok": "ok     ", "info": "       ", "warning": "WARNING", "error": "ERROR  "}
)


@dataclass(frozen=True)
class Finding:
    """One thing doctor found: its status, a line for people, and facts for machines."""

    section: str
    status: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Every finding of one ``dbtproof doctor`` run."""

    findings: list[Finding] = field(default_factory=list)
    #: Values that must not appear in the output (minted tokens, secret variables' values).
    #: What the report must never show: secret variables read, tokens minted.
    secrets: SecretRegistry = field(default_factory=SecretRegistry, repr=False)

    def add(self, section: str, status: str, message: str, **data: Any) -> Finding:
        """Record a finding and return it."""
        finding = Finding(section, status, message, data)
        self.findings.append(finding)
        return finding

    @property
    def ok(self) -> bool:
        """True when nothing stops tests from running (warnings allowed)."""
        return not any(finding.status == "error" for finding in self.findings)

    def errors(self) -> list[Finding]:
        """The findings that stop tests from running."""
        return [finding for finding in self.findings if finding.status == "error"]

    def text(self) -> str:
        """The report for people: one block per section, then the verdict."""
        lines = ["dbtproof doctor"]
        for section in SECTIONS:
            found = [f for f in self.findings if f.section == section]
            if not found:
                continue
            lines.append(f"\n{section}:")
            lines += [f"  {_MARKS.get(f.status, f.status)} {f.message}" for f in found]
        warnings = sum(1 for f in self.findings if f.status == "warning")
        if self.ok:
            verdict = "tests can run" + (f" ({warnings} warning(s) above)" if warnings else "")
        else:
            verdict = f"tests cannot run: {len(self.errors())} error(s) above"
        lines.append(f"\ndbtproof doctor: {verdict}.")
        return self.scrubbed("\n".join(lines))

    def json(self) -> str:
        """The report for machines: ``{"ok": ..., "sections": {name: [finding, ...]}}``."""
        document = {
            "ok": self.ok,
            "sections": {
                section: [
                    {"status": f.status, "message": f.message, **f.data}
                    for f in self.findings
                    if f.section == section
                ]
                for section in SECTIONS
            },
        }
        return self.scrubbed(json.dumps(document, indent=2, default=str))

    def scrubbed(self, text: str) -> str:
        """*text* with every known secret value (and its printed forms) replaced."""
        return self.secrets.scrub(text)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (dbt's are multi-line), at most 400 characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines)[:400] or type(exc).__name__
