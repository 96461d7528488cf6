"""What ``dbtproof mcp`` was started with: one value, read by the server and its start."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbtproof.agents.pii import PiiRule


@dataclass(frozen=True)
class McpSettings:
    """What ``dbtproof mcp`` was started with."""

    project_dir: Path
    profiles_dir: Path
    target: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    #: The evidence file (None: ``<target-path>/dbtproof-mcp/<run id>.jsonl``).
    evidence: Path | None = None
    #: The sample's record folder (None: the workspace's default).
    sample_dir: Path | None = None
    #: How a PII column is marked.
    pii: PiiRule = field(default_factory=PiiRule)
    #: ``--dbt-credentials``: the providers minting in the server.
    credential_specs: tuple[str, ...] = ()
    #: ``--dbt-allow-untrusted-credentials``.
    allow_untrusted_credentials: bool = False
