"""Running ``git``: the one place dbtproof asks it something (``--dbt-changed``, the
evidence's commit and branch)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(folder: Path, *args: str, timeout: float = 60) -> str | None:
    """The output of ``git <args>`` run in *folder*; None when git is missing, fails or
    takes longer than *timeout* seconds."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, check=False, timeout=timeout
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
